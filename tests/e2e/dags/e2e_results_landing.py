"""DAGs of the results landing end-to-end tests (emulator connection ``anthropic_default``; outputs under the
Airflow Variable ``e2e_output``)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, AssetAlias, task

from airflow_batches.operators import BatchCreateOperator, BatchResultsOperator

with DAG("e2e_results_landing", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    create = BatchCreateOperator(
        task_id="create",
        requests=[
            {
                "custom_id": f"land-{n}",
                "params": {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": f"echo {n}"}],
                    **({"metadata": {"emulator": "error"}} if n < 2 else {}),
                },
            }
            for n in range(6)
        ],
        max_failure_ratio=0.5,
        deferrable=True,
        poll_interval=0.5,
    )
    land = BatchResultsOperator(
        task_id="land",
        batch_id=create.output,
        destination="{{ var.value.e2e_output }}/results/{{ ds }}/",
        split_by_type=True,
        compression="gzip",
        asset_alias="e2e-results",
    )

    @task(inlets=[AssetAlias("e2e-results")])
    def consume(manifest: dict, **context: object) -> dict:  # type: ignore[type-arg]
        """Downstream reads only the manifest from XCom, never the results themselves."""
        return {"files": len(manifest["files"]), "lines": manifest["lines"]}

    consume(land.output)
