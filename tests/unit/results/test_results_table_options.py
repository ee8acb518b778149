"""BatchResultsOperator(table=...) declarations: the table's Asset (static or through the alias), its event
extra, and the arguments checked when the DAG is parsed."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.execution_time.context import OutletEventAccessors
from test_results_operator import MANIFEST

from airflow_batches.operators import BatchResultsOperator
from airflow_batches.records import RequestTemplate
from airflow_batches.results.table import TableEntry

TABLE: TableEntry = {
    "uri": "s3://bucket/claude/2026-01-01/table.parquet",
    "format": "parquet",
    "rows": 3,
    "bytes": 900,
    "sha256": "1" * 64,
    "result_types": {"succeeded": 2, "errored": 1},
    "valid": 1,
    "invalid": 1,
    "joined_records": 3,
    "missing_results": 0,
    "unmatched_results": 0,
}
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}}


def test_a_static_destination_declares_the_table_asset_and_fills_its_extra() -> None:
    op = BatchResultsOperator(
        task_id="t", batch_id="x", destination="s3://bucket/claude/2026-01-01/", table="parquet"
    )
    table_asset = Asset(uri="s3://bucket/claude/2026-01-01/table.parquet")
    assert op.outlets == [Asset(uri="s3://bucket/claude/2026-01-01"), table_asset]
    events = OutletEventAccessors()
    op._record_asset_event({"outlet_events": events}, {**MANIFEST, "table": TABLE})  # type: ignore[typeddict-item]
    assert events[table_asset].extra == {"table": dict(TABLE)}
    assert events[Asset(uri="s3://bucket/claude/2026-01-01")].extra["lines"] == 3


def test_a_templated_destination_adds_the_table_asset_to_the_alias() -> None:
    op = BatchResultsOperator(
        task_id="t", batch_id="x", destination="s3://bucket/claude/{{ ds }}/", table="csv"
    )
    events = OutletEventAccessors()
    op._record_asset_event({"outlet_events": events}, {**MANIFEST, "table": TABLE})  # type: ignore[typeddict-item]
    uris = [event.dest_asset_key.uri for event in events[op.outlets[0]].asset_alias_events]
    assert uris == ["s3://bucket/claude/2026-01-01", "s3://bucket/claude/2026-01-01/table.parquet"]


def test_the_join_template_is_templated_and_gives_the_schema() -> None:
    tpl = RequestTemplate(
        records="s3://b/{{ ds }}/r.csv", custom_id="{{ record.id }}", params={}, output_schema=SCHEMA
    )
    op = BatchResultsOperator(
        task_id="t", batch_id="x", destination="s3://b/o/", table="jsonl", join_records=tpl
    )
    assert "join_records" in op.template_fields
    assert op.table_spec is not None and op.table_spec.structured is tpl.structured


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "xlsx"}, "not a format"),
        ({"output_schema": SCHEMA}, "set table="),
        (
            {"table": "csv", "output_schema": {"type": "object", "properties": {"text": {}}}},
            "'text' would share",
        ),
    ],
)
def test_bad_table_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchResultsOperator(task_id="t", batch_id="x", destination="s3://b/o/", **kwargs)


def test_a_parquet_table_without_pyarrow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ValueError, match=r"airflow-batches\[parquet\]"):
        BatchResultsOperator(task_id="t", batch_id="x", destination="s3://b/o/", table="parquet")
