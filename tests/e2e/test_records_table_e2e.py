"""Records in, a table out, in real Airflow (metadata DB, task runner, deferral): a CSV and a Parquet file of
records become requests asking for structured output (one through the operator, one through
@task.anthropic_batch), the emulator answers (a hashed share invalid), and each landing writes a table whose
rows match the records one for one, invalid answers kept and marked."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_batches.emulator.structured_answer import invalid_output_chosen
from airflow_batches.emulator.testing import run_emulator

pytestmark = pytest.mark.e2e

RATE = 0.25
RECORDS = [{"id": f"{n:03d}", "text": f"the printer on floor {n} is jammed"} for n in range(40)]


def write_records(folder: Path) -> None:
    with (folder / "records.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows(RECORDS)
    pq.write_table(pa.Table.from_pylist(RECORDS), folder / "records.parquet", row_group_size=16)


def check_rows(rows: list[dict[str, Any]], prefix: str) -> int:
    assert [r["record_id"] for r in rows] == [r["id"] for r in RECORDS], "one row per record, in order"
    assert [r["record_text"] for r in rows] == [r["text"] for r in RECORDS]
    invalid = 0
    for row in rows:
        custom_id = f"{prefix}-{row['record_id']}"
        assert row["custom_id"] == custom_id and row["result_type"] == "succeeded"
        if invalid_output_chosen(custom_id, RATE):
            invalid += 1
            assert row["valid"] in (False, "false") and "label" in row["invalid_reason"]
        else:
            assert row["valid"] in (True, "true") and not row["invalid_reason"]
            assert row["label"] == f"Ticket {row['record_id']}: {row['record_text']}"
    return invalid


def test_csv_and_parquet_records_land_as_tables_matching_the_records(run_dag: Any, tmp_path: Path) -> None:
    write_records(tmp_path)
    with run_emulator(processing_seconds=1, invalid_output_rate=RATE) as emulator:
        result = run_dag("e2e_records_table", emulator)
    assert result.state == "success", result.tasks
    assert {task: state for task, (state, _) in result.tasks.items()} == dict.fromkeys(
        ["create_csv", "create_parquet", "land_csv", "land_parquet"], "success"
    )

    csv_rows = pq.read_table(tmp_path / "out" / "csv" / "table.parquet").to_pylist()
    invalid_csv = check_rows(csv_rows, "csv")
    with (tmp_path / "out" / "parquet" / "table.csv").open(newline="") as handle:
        invalid_pq = check_rows(list(csv.DictReader(handle)), "pq")
    assert invalid_csv > 0 and invalid_pq > 0, "the emulator broke some answers"

    for task, invalid in (("land_csv", invalid_csv), ("land_parquet", invalid_pq)):
        table = result.xcom[task]["table"]
        assert (table["rows"], table["invalid"], table["valid"]) == (40, invalid, 40 - invalid)
        assert table["joined_records"] == 40 and table["missing_results"] == 0
    group = result.xcom["create_parquet"]
    assert group["total_requests"] == 40 and group["processing_status"] == "ended"
