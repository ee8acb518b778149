"""The README's records section, run as written in real Airflow against the emulator and a moto S3 server:
the template block, the results table block and the decorator block make one DAG whose records files are in
S3, with the credentials only in the ``aws_default`` connection; the error block is what the same template
says about a bad ``records.csv``."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from readme import dag_source, snippet
from s3 import aws_connection, moto_s3, no_aws_environment, s3_client  # noqa: F401 - fixture

from airflow_batches.api import RequestValidationError, spool_batches
from airflow_batches.operators.request_source import iter_request_items

pytestmark = pytest.mark.e2e

BLOCKS = ("records-template", "records-table", "records-decorator")
RECORDS = [{"id": str(n), "text": f"the printer on floor {n} is jammed"} for n in range(1, 7)]
GOOD_DAY = datetime(2026, 11, 27, tzinfo=UTC)
BAD_DAY = datetime(2026, 11, 28, tzinfo=UTC)
# Line 3 has no text, line 4 an id that makes a bad custom_id: the README's error block.
BAD_CSV = b"id,text\n1,the printer is jammed\n2\na b,no wifi on floor 3\n"


@pytest.fixture
def s3(moto_s3: str, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    from airflow.sdk.io import store

    no_aws_environment(monkeypatch)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(moto_s3))
    store._STORE_CACHE.clear()
    client = s3_client(moto_s3)
    client.create_bucket(Bucket="bucket")
    yield client
    store._STORE_CACHE.clear()


def _put_records(s3: Any) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["id", "text"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(RECORDS)
    s3.put_object(Bucket="bucket", Key="tickets/2026-11-27/records.csv", Body=text.getvalue().encode())
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(RECORDS), parquet)
    s3.put_object(Bucket="bucket", Key="tickets/2026-11-27/records.parquet", Body=parquet.getvalue())
    s3.put_object(Bucket="bucket", Key="tickets/2026-11-28/records.csv", Body=BAD_CSV)


def _read(s3: Any, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket="bucket", Key=key)["Body"].read()
    return body


def test_records_blocks_run_as_one_dag(run_dag: Any, emulator: Any, dags_folder: Path, s3: Any) -> None:
    _put_records(s3)
    (dags_folder / "readme_records.py").write_text(dag_source("readme_records", *BLOCKS))

    result = run_dag("readme_records", emulator, logical_date=GOOD_DAY)

    assert result.state == "success", result.tasks
    assert set(result.tasks) == {"create_batches", "land_results", "tickets", "land_tickets"}
    parquet = pq.read_table(io.BytesIO(_read(s3, "tickets/2026-11-27/results/table.parquet")))
    assert ",".join(parquet.column_names) + "\n" == snippet("records-table-columns").code
    parquet_rows = parquet.to_pylist()
    csv_text = _read(s3, "tickets/2026-11-27/pq/table.csv").decode()
    # The decorator's table has no join: the README's header line without the record_* columns.
    assert csv_text.splitlines()[0] == snippet("records-table-columns").code.split(",record_id")[0]
    csv_rows = list(csv.DictReader(io.StringIO(csv_text)))
    # The joined table follows the records; the decorator's (no join) is in custom_id order.
    assert [row["record_id"] for row in parquet_rows] == [r["id"] for r in RECORDS]
    assert [row["record_text"] for row in parquet_rows] == [r["text"] for r in RECORDS]
    for rows, prefix in ((parquet_rows, "ticket"), (csv_rows, "t")):
        assert [row["custom_id"] for row in rows] == [f"{prefix}-{r['id']}" for r in RECORDS]
        assert {row["result_type"] for row in rows} == {"succeeded"}
        assert {str(row["valid"]).lower() for row in rows} == {"true"}
    # Label's fields are the table's columns, typed from the schema.
    assert all(isinstance(row["priority"], int) and isinstance(row["team"], str) for row in parquet_rows)
    (batch_id,) = result.xcom["create_batches"]["batch_ids"]
    raw = _read(s3, f"tickets/2026-11-27/results/{batch_id}.jsonl").splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in raw) == [f"ticket-{r['id']}" for r in RECORDS]
    assert emulator.stats()["batches_created"] == 2

    # A bad records.csv: the create task fails on its first try and nothing is sent.
    result = run_dag("readme_records", emulator, logical_date=BAD_DAY)
    assert result.tasks["create_batches"] == ("failed", 1), result.tasks
    assert emulator.stats()["batches_created"] == 2


def test_records_error_output_is_what_the_template_says(s3: Any) -> None:
    """The README's error block is the validation of the template block's requests from a bad records.csv
    in S3 (the path rendered by Airflow for the run's date, as the create task does)."""
    from airflow.sdk import DAG

    s3.put_object(Bucket="bucket", Key="tickets/2026-11-28/records.csv", Body=BAD_CSV)
    namespace: dict[str, Any] = {}
    with DAG("readme_records_error", schedule=None):
        exec(snippet("records-template").code, namespace)
    create = namespace["create"]
    create.render_template_fields({"ds": "2026-11-28"})
    assert create.requests.records == "s3://bucket/tickets/2026-11-28/records.csv"

    with pytest.raises(RequestValidationError) as info:
        spool_batches(
            iter_request_items(create.requests, create.requests_conn_id), max_requests=10, max_bytes=10**6
        )
    assert str(info.value) + "\n" == snippet("records-error-output").code
