"""BatchResultsOperator's declarations: templated fields, the Asset/AssetAlias outlet, the asset event it
records, and its OpenLineage datasets. Running it for real is in tests/e2e/test_results_e2e.py."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest
from airflow.sdk import Asset, AssetAlias, ObjectStoragePath
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_batches.operators import BatchResultsOperator
from airflow_batches.results import Manifest

MANIFEST: Manifest = {
    "batch_ids": ["msgbatch_a"],
    "destination": "s3://bucket/claude/2026-01-01",
    "files": [
        {
            "batch_id": "msgbatch_a",
            "uri": "s3://bucket/claude/2026-01-01/msgbatch_a.jsonl",
            "result_type": None,
            "lines": 3,
            "bytes": 300,
            "sha256": "0" * 64,
        }
    ],
    "counts": {"succeeded": 2, "errored": 1, "canceled": 0, "expired": 0},
    "lines": 3,
    "bytes": 300,
    "usage": {
        "input_tokens": 1,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    },
    "duration_seconds": 0.5,
}


def test_batch_id_and_destination_are_templated() -> None:
    assert set(BatchResultsOperator.template_fields) == {"batch_id", "destination"}


def test_a_plain_destination_is_a_static_asset_without_the_conn_id() -> None:
    op = BatchResultsOperator(task_id="t", batch_id="msgbatch_a", destination="s3://aws_prod@bucket/claude/")
    assert op.outlets == [Asset(uri="s3://bucket/claude")]


def test_an_object_storage_path_is_a_static_asset() -> None:
    op = BatchResultsOperator(
        task_id="t", batch_id="msgbatch_a", destination=ObjectStoragePath("file:///data/claude/")
    )
    assert op.outlets == [Asset(uri="file:///data/claude")]


def test_a_templated_destination_is_an_asset_alias() -> None:
    default = BatchResultsOperator(task_id="t", batch_id="x", destination="s3://bucket/claude/{{ ds }}/")
    named = BatchResultsOperator(
        task_id="u", batch_id="x", destination="s3://b/{{ ds }}/", asset_alias="claude"
    )
    assert default.outlets == [AssetAlias(name="airflow-batches-results:s3://bucket/claude/{{ ds }}/")]
    assert named.outlets == [AssetAlias(name="claude")]


def test_no_outlet_when_asked_and_user_outlets_are_kept() -> None:
    none = BatchResultsOperator(task_id="t", batch_id="x", destination="s3://b/p/", emit_asset=False)
    own = BatchResultsOperator(
        task_id="u", batch_id="x", destination="s3://b/p/", outlets=[Asset(uri="s3://b/x")]
    )
    assert none.outlets == []
    assert own.outlets == [Asset(uri="s3://b/x")]


def test_the_static_asset_event_carries_a_manifest_summary() -> None:
    op = BatchResultsOperator(task_id="t", batch_id="x", destination="s3://bucket/claude/2026-01-01/")
    events = OutletEventAccessors()

    op._record_asset_event({"outlet_events": events}, MANIFEST)  # type: ignore[typeddict-item]

    assert events[Asset(uri="s3://bucket/claude/2026-01-01")].extra == {
        "destination": "s3://bucket/claude/2026-01-01",
        "batch_ids": ["msgbatch_a"],
        "files": ["s3://bucket/claude/2026-01-01/msgbatch_a.jsonl"],
        "counts": {"succeeded": 2, "errored": 1, "canceled": 0, "expired": 0},
        "lines": 3,
        "bytes": 300,
    }


def test_the_alias_gets_an_asset_of_the_rendered_destination() -> None:
    op = BatchResultsOperator(task_id="t", batch_id="x", destination="s3://bucket/claude/{{ ds }}/")
    events = OutletEventAccessors()

    op._record_asset_event({"outlet_events": events}, MANIFEST)  # type: ignore[typeddict-item]

    (event,) = events[op.outlets[0]].asset_alias_events
    assert event.dest_asset_key.uri == "s3://bucket/claude/2026-01-01"
    assert event.extra["files"] == ["s3://bucket/claude/2026-01-01/msgbatch_a.jsonl"]


def test_openlineage_is_none_without_the_provider() -> None:
    with pytest.raises(ImportError):
        import airflow.providers.openlineage.extractors  # noqa: F401
    op = BatchResultsOperator(task_id="t", batch_id="x", destination="s3://b/p/")
    assert op.get_openlineage_facets_on_complete(None) is None


def test_openlineage_datasets_name_batches_and_landed_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # The provider is not installed here: stand-ins with the two names the method imports check our mapping.
    @dataclass
    class Dataset:
        namespace: str
        name: str

    @dataclass
    class OperatorLineage:
        inputs: list[Any] = field(default_factory=list)
        outputs: list[Any] = field(default_factory=list)

    extractors = types.ModuleType("airflow.providers.openlineage.extractors")
    extractors.OperatorLineage = OperatorLineage  # type: ignore[attr-defined]
    event_v2 = types.ModuleType("openlineage.client.event_v2")
    event_v2.Dataset = Dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", extractors)
    monkeypatch.setitem(sys.modules, "openlineage.client.event_v2", event_v2)
    op = BatchResultsOperator(task_id="t", batch_id="x", destination="s3://b/p/")
    op._manifest = MANIFEST | {
        "files": [*MANIFEST["files"], {**MANIFEST["files"][0], "uri": "file:///data/out/msgbatch_a.jsonl"}]
    }  # type: ignore[assignment]

    lineage = op.get_openlineage_facets_on_complete(None)

    assert lineage.inputs == [Dataset("anthropic", "message_batches/msgbatch_a")]
    assert lineage.outputs == [
        Dataset("s3://bucket", "claude/2026-01-01/msgbatch_a.jsonl"),
        Dataset("file", "/data/out/msgbatch_a.jsonl"),
    ]
