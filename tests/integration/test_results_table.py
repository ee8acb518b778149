"""BatchResultsOperator(table=...) against the emulator: one row per request next to the raw results, joined
to the input records, structured answers validated (invalid ones kept and marked), the last round winning."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import results_support
from results_support import ended_batch

from airflow_batches.api.spool import spool_batches
from airflow_batches.emulator.structured_answer import invalid_output_chosen
from airflow_batches.emulator.testing import RunningEmulator
from airflow_batches.errors import DestinationExistsError
from airflow_batches.hooks import BatchHook
from airflow_batches.operators.results import BatchResultsOperator
from airflow_batches.records import RequestTemplate

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["bug", "question"]},
        "score": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["label", "score", "tags"],
    "additionalProperties": False,
}
RATE = 0.3

results_emulator = results_support.results_emulator
hook = results_support.hook


def write_records(path: Path, count: int) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "text"])
        writer.writerows([f"t{i:03d}", f"ticket number {i}"] for i in range(count))
    return path


def template(records: Path, model: str = "claude-haiku-4-5") -> RequestTemplate:
    return RequestTemplate(
        records=records.as_uri(),
        custom_id="{{ record.id }}",
        params={
            "model": model,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "{{ record.text }}"}],
        },
        output_schema=SCHEMA,
    )


def submit(hook: BatchHook, tpl: RequestTemplate) -> str:
    (part,) = spool_batches(tpl.requests())
    with part:
        return hook.create(part).id


def run(op: BatchResultsOperator) -> dict[str, Any]:
    manifest: dict[str, Any] = op.execute({})  # type: ignore[arg-type]
    return manifest


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-3-5-haiku-20241022"])
def test_parquet_table_joined_to_the_records_marks_invalid_answers(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path, model: str
) -> None:
    results_emulator.configure(invalid_output_rate=RATE)
    tpl = template(write_records(tmp_path / "records.csv", 30), model)
    batch_id = submit(hook, tpl)
    out = tmp_path / "out"
    op = BatchResultsOperator(
        task_id="land",
        batch_id=batch_id,
        destination=out.as_uri(),
        table="parquet",
        join_records=tpl,
        emit_asset=False,
    )
    manifest = run(op)
    assert (out / f"{batch_id}.jsonl").exists(), "the raw results are landed as always"
    rows = pq.read_table(out / "table.parquet").to_pylist()
    assert [r["record_id"] for r in rows] == [f"t{i:03d}" for i in range(30)], "one row per record, in order"
    assert all(r["custom_id"] == r["record_id"] and r["result_type"] == "succeeded" for r in rows)
    invalid = {r["custom_id"] for r in rows if r["valid"] is False}
    assert invalid == {f"t{i:03d}" for i in range(30) if invalid_output_chosen(f"t{i:03d}", RATE)}
    assert 0 < len(invalid) < 30
    for row in rows:
        if row["valid"]:
            assert row["label"] == "bug" and isinstance(row["score"], int) and row["invalid_reason"] is None
            assert json.loads(row["tags"]) == [row["record_text"]]
        else:
            assert row["label"] is None, "a value that does not fit its column is null there"
            assert row["invalid_reason"] == "$.label: 12345 is not of type 'string'"
            assert json.loads(row["answer_json"])["label"] == 12345, "the answer itself is kept"
    table = manifest["table"]
    assert table["uri"] == f"{out.as_uri()}/table.parquet"
    assert (table["rows"], table["valid"], table["invalid"]) == (30, 30 - len(invalid), len(invalid))
    assert table["joined_records"] == 30 and table["missing_results"] == table["unmatched_results"] == 0
    assert table["result_types"] == {"succeeded": 30}


def test_csv_and_jsonl_tables_without_a_join_carry_errors(hook: BatchHook, tmp_path: Path) -> None:
    batch_id = ended_batch(hook, "plain", 5, errored=2)
    for fmt in ("csv", "jsonl"):
        out = tmp_path / fmt
        run(
            BatchResultsOperator(
                task_id="l", batch_id=batch_id, destination=str(out.as_uri()), table=fmt, emit_asset=False
            )
        )
        if fmt == "csv":
            with (out / "table.csv").open(newline="") as handle:
                rows: list[dict[str, Any]] = list(csv.DictReader(handle))
        else:
            rows = [json.loads(line) for line in (out / "table.jsonl").read_text().splitlines()]
        assert [r["custom_id"] for r in rows] == [f"plain-{i}" for i in range(5)], "custom_id order"
        errored = [r for r in rows if r["result_type"] == "errored"]
        assert [r["custom_id"] for r in errored] == ["plain-0", "plain-1"]
        assert all(r["error_type"] == "invalid_request_error" and r["error_message"] for r in errored)
        assert rows[4]["text"].startswith("plain 4 ") and int(rows[4]["output_tokens"]) > 0


def test_a_later_round_replaces_the_earlier_result(hook: BatchHook, tmp_path: Path) -> None:
    def request(custom_id: str, **extra: Any) -> dict[str, Any]:
        messages = [{"role": "user", "content": custom_id}]
        return {
            "custom_id": custom_id,
            "params": {"model": "m", "max_tokens": 9, "messages": messages, **extra},
        }

    first = hook.create([request("a", metadata={"emulator": "error"}), request("b")]).id
    second = hook.create([request("a")]).id
    out = tmp_path / "rounds"
    run(
        BatchResultsOperator(
            task_id="l", batch_id=[first, second], destination=out.as_uri(), table="jsonl", emit_asset=False
        )
    )
    rows = [json.loads(line) for line in (out / "table.jsonl").read_text().splitlines()]
    assert [(r["custom_id"], r["result_type"]) for r in rows] == [("a", "succeeded"), ("b", "succeeded")]


def test_overwrite_error_refuses_an_existing_table(hook: BatchHook, tmp_path: Path) -> None:
    batch_id = ended_batch(hook, "ow", 2)
    out = tmp_path / "ow"
    out.mkdir()
    (out / "table.csv").write_text("old\n")
    with pytest.raises(DestinationExistsError):
        run(
            BatchResultsOperator(
                task_id="l",
                batch_id=batch_id,
                destination=out.as_uri(),
                table="csv",
                overwrite="error",
                emit_asset=False,
            )
        )
    assert (out / "table.csv").read_text() == "old\n"
