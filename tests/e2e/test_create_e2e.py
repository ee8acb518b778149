"""BatchCreateOperator in real Airflow (dag.test: metadata DB, task runner, deferral through Airflow's trigger
machinery) against the real emulator over loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.e2e


def landed_lines(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()
    ]


def run_example(run_dag: Any, dag_id: str, emulator: Any, base: Path) -> Any:
    """An example DAG as shipped, with its data under ``base`` and a fast poll."""
    return run_dag(dag_id, emulator, AIRFLOW_BATCHES_BASE=base.as_uri(), AIRFLOW_BATCHES_POLL_INTERVAL="0.5")


def test_quickstart_example_runs_deferred_and_lands_results(
    run_dag: Any, emulator: Any, tmp_path: Path
) -> None:
    result = run_example(run_dag, "example_batches_quickstart", emulator, tmp_path)
    assert result.state == "success", result.tasks
    group = result.xcom["create_batch"]
    assert group["processing_status"] == "ended" and group["counts"]["succeeded"] == 3
    (run_folder,) = (tmp_path / "quickstart").iterdir()
    lines = landed_lines(run_folder)
    assert sorted(line["custom_id"] for line in lines) == ["capital-france", "haiku-airflow", "sum-2-3"]
    assert emulator.stats()["batches_created"] == 1


def test_a_large_input_is_split_into_a_group_that_lands_as_one(
    run_dag: Any, emulator: Any, tmp_path: Path
) -> None:
    result = run_dag("e2e_split_group", emulator)
    assert result.state == "success", result.tasks
    group = result.xcom["create"]
    assert group["request_counts"] == [3, 3, 3, 1] and len(group["batch_ids"]) == 4
    assert group["counts"]["succeeded"] == 10
    manifest = result.xcom["land"]
    assert manifest["batch_ids"] == group["batch_ids"] and manifest["lines"] == 10
    assert sorted(line["custom_id"] for line in landed_lines(tmp_path / "split")) == sorted(
        f"req-{n}" for n in range(10)
    )
    assert emulator.stats()["batches_created"] == 4


def test_partial_failure_follows_max_failure_ratio(run_dag: Any, emulator: Any) -> None:
    result = run_dag("e2e_partial_failure", emulator)
    assert result.tasks["tolerant"][0] == "success"
    assert result.xcom["tolerant"]["counts"] == {
        "processing": 0,
        "succeeded": 3,
        "errored": 2,
        "canceled": 0,
        "expired": 0,
    }
    assert result.tasks["strict"][0] == "failed"
    assert result.state == "failed"


def test_blocking_path_waits_in_the_worker(run_dag: Any, emulator: Any, tmp_path: Path) -> None:
    result = run_dag("e2e_blocking", emulator)
    assert result.state == "success", result.tasks
    assert result.xcom["create"]["counts"]["succeeded"] == 4
    assert len(landed_lines(tmp_path / "blocking")) == 4


def test_retry_after_the_task_timed_out_reattaches(run_dag: Any, slow_emulator: Any) -> None:
    result = run_dag("e2e_retry_after_timeout", slow_emulator)
    assert result.tasks["create"] == ("success", 2), result.tasks
    assert result.xcom["create"]["counts"]["succeeded"] == 3
    assert slow_emulator.stats()["batches_created"] == 1


@pytest.mark.parametrize("crash_at", ["defer", "resume"])
def test_deferrable_retry_after_a_crash_reattaches(run_dag: Any, slow_emulator: Any, crash_at: str) -> None:
    result = run_dag(f"e2e_retry_deferrable_crash_at_{crash_at}", slow_emulator)
    assert result.tasks["create"] == ("success", 2), result.tasks
    group = result.xcom["create"]
    assert group["request_counts"] == [4, 2] and group["counts"]["succeeded"] == 6
    assert slow_emulator.stats()["batches_created"] == 2


def test_cancel_on_kill_cancels_the_batch_when_the_task_is_killed(run_dag: Any) -> None:
    from airflow_batches.emulator.testing import run_emulator

    with run_emulator(processing_seconds=600) as emulator:
        result = run_dag("e2e_cancel_on_kill", emulator)
        assert result.tasks["create"][0] == "failed"
        (batch,) = _get_response(emulator, "/v1/messages/batches?limit=10").json()["data"]
        assert batch["cancel_initiated_at"] is not None
        assert batch["processing_status"] in ("canceling", "ended")


def test_scheduled_etl_example_end_to_end(run_dag: Any, slow_emulator: Any, tmp_path: Path) -> None:
    """Records in object storage -> structured requests -> batches (deferred, with resubmit rounds) -> results
    and a table joined to the records, one row per record -> summary with the cost; the emulator fails some
    requests on their first submission (set at run time)."""
    from datetime import UTC, datetime

    from airflow_batches.emulator.transient import draw

    failing = [n for n in range(7) if draw(3, f"rec-{n}") < 0.3]
    assert failing, "the draw must fail at least one request"
    slow_emulator.set_faults(transient_errored_rate=0.3, transient_seed=3)

    day = datetime.now(UTC).date().isoformat()
    records = tmp_path / "input" / day / "records.jsonl"
    records.parent.mkdir(parents=True)
    records.write_text("".join(json.dumps({"id": n, "text": f"note {n}"}) + "\n" for n in range(7)))
    result = run_example(run_dag, "example_batches_etl", slow_emulator, tmp_path)
    assert result.state == "success", result.tasks
    out = tmp_path / "results" / day
    summary = json.loads((out / "summary.json").read_text())
    assert summary["result_types"] == {"succeeded": 7}
    tokens = summary["tokens_by_model"]["claude-haiku-4-5"]
    assert tokens["input_tokens"] > 0 and tokens["output_tokens"] > 0
    # claude-haiku-4-5: $1 input / $5 output per million tokens, half of it in a batch.
    expected = (tokens["input_tokens"] * 1.0 + tokens["output_tokens"] * 5.0) / 1_000_000 * 0.5
    assert summary["cost_usd"] == pytest.approx(expected, abs=1e-6) and summary["unpriced_models"] == []
    assert (summary["valid_answers"], summary["invalid_answers"]) == (7, 0)
    rows = pq.read_table(out / "table.parquet").to_pylist()
    assert [(row["custom_id"], row["record_id"]) for row in rows] == [(f"rec-{n}", str(n)) for n in range(7)]
    assert rows[3]["result_type"] == "succeeded" and rows[3]["valid"] is True
    assert rows[3]["summary"] == rows[3]["topic"] == "note 3", "the emulator answers with the prompt's text"
    assert sum(row["output_tokens"] for row in rows) == tokens["output_tokens"]
    assert slow_emulator.stats()["batches_created"] == 2, "round 1, then one follow-up for the failures"
    group = result.xcom["create_batches"]
    assert group["rounds"][1]["resubmitted"] == len(failing)
    # The day's results folder and table reach downstream DAGs through the fixed alias.
    from airflow.models.asset import AssetAliasModel
    from airflow.utils.session import create_session

    with create_session() as session:
        alias = session.query(AssetAliasModel).filter_by(name="example_batches_etl_results").one()
        uris = {asset.uri for asset in alias.assets}
    assert {out.as_uri(), (out / "table.parquet").as_uri()} <= uris


def test_cancel_and_delete_a_running_group(run_dag: Any, slow_emulator: Any) -> None:
    result = run_dag("e2e_cancel_then_delete", slow_emulator)
    assert result.state == "success", result.tasks
    first, second = result.xcom["create"]["batch_ids"]
    assert result.xcom["cancel"]["batch_ids"] == [first]
    assert result.xcom["cancel"]["processing_status"] == "ended"
    assert result.xcom["cancel"]["counts"]["canceled"] == 2
    assert result.xcom["delete"] == {"deleted": [first, second], "missing": []}
    for batch_id in (first, second):
        response = _get_response(slow_emulator, f"/v1/messages/batches/{batch_id}")
        assert response.status_code == 404


def _get_response(emulator: Any, path: str) -> Any:
    import httpx

    return httpx.get(emulator.base_url + path, headers=emulator.headers)
