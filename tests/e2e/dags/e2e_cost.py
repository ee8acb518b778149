"""The cost features in real Airflow: a dry run, a budget that stops a submission, one that lets it through,
and the landed cost (connection ``anthropic_default`` = the emulator)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG

from airflow_batches.operators import BatchCreateOperator, BatchResultsOperator


def requests(prefix: str, max_tokens: int = 64) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"{prefix}-{n}",
            "params": {
                "model": "claude-haiku-4-5",
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": f"echo number {n} " + "z" * (n * 11)}],
            },
        }
        for n in range(6)
    ]


with DAG("e2e_cost", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    BatchCreateOperator(task_id="plan", requests=requests("plan"), dry_run=True)
    # 6 x 100,000 max_tokens at $2.50 per million output tokens: up to $1.50, over a $0.10 budget.
    BatchCreateOperator(
        task_id="over_budget", requests=requests("big", max_tokens=100_000), max_cost_usd=0.10
    )
    create = BatchCreateOperator(
        task_id="create", requests=requests("ok"), max_cost_usd=0.10, deferrable=True, poll_interval=0.5
    )
    BatchResultsOperator(
        task_id="land", batch_id=create.output, destination="{{ var.value.e2e_output }}/cost/"
    )
