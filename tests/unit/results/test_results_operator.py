"""BatchResultsOperator's declarations: templated fields, the Asset/AssetAlias outlet, the asset event it
records, and its OpenLineage datasets (with the real OpenLineage provider). Running it in Airflow is in
tests/e2e/test_results_e2e.py."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.providers.openlineage.extractors.manager import ExtractorManager
from airflow.sdk import DAG, Asset, AssetAlias, ObjectStoragePath
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.utils.state import TaskInstanceState
from openlineage.client.event_v2 import Dataset
from results_helpers import BAD_LANDING_ARGUMENTS, FakeAPI, make_lines

from airflow_batches.hooks import BatchHook
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


def test_batch_id_destination_and_the_join_template_are_templated() -> None:
    assert set(BatchResultsOperator.template_fields) == {"batch_id", "destination", "join_records"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        *BAD_LANDING_ARGUMENTS,
        ({"wait_timeout": float("nan")}, "wait_timeout must be a number of seconds > 0"),
        ({"wait_timeout": True}, "wait_timeout must be a number of seconds > 0"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"destination": "file:///data/out/"} | kwargs
    with pytest.raises(ValueError, match=message):
        BatchResultsOperator(task_id="t", batch_id="msgbatch_a", **arguments)  # type: ignore[arg-type]


def test_a_templated_destination_is_checked_only_once_rendered() -> None:
    op = BatchResultsOperator(task_id="t", batch_id="msgbatch_a", destination="{{ var.value.out }}")
    assert op.destination == "{{ var.value.out }}"


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


def test_openlineage_is_none_without_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as on an install without the provider.
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    op = BatchResultsOperator(task_id="t", batch_id="x", destination="s3://b/p/")
    op._manifest = MANIFEST
    assert op.get_openlineage_facets_on_complete(None) is None


def test_openlineage_datasets_name_batches_and_landed_files() -> None:
    op = BatchResultsOperator(task_id="t", batch_id="x", destination="s3://b/p/")
    op._manifest = MANIFEST | {
        "batch_ids": ["msgbatch_a", "msgbatch_b"],
        "files": [
            *MANIFEST["files"],
            {**MANIFEST["files"][0], "batch_id": "msgbatch_b", "uri": "file:///data/out/msgbatch_b.jsonl"},
        ],
    }  # type: ignore[assignment]

    lineage = op.get_openlineage_facets_on_complete(None)

    assert isinstance(lineage, OperatorLineage)
    assert lineage.inputs == [
        Dataset(namespace="anthropic", name="message_batches/msgbatch_a"),
        Dataset(namespace="anthropic", name="message_batches/msgbatch_b"),
    ]
    assert lineage.outputs == [
        Dataset(namespace="s3://bucket", name="claude/2026-01-01/msgbatch_a.jsonl"),
        Dataset(namespace="file", name="/data/out/msgbatch_b.jsonl"),
    ]


def test_the_openlineage_listener_reports_a_real_landing(
    api: FakeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """execute() lands for real (only the network is the in-process API), then the provider's extractor
    runs as Airflow's OpenLineage listener does when the task succeeds."""
    api.add("msgbatch_one", make_lines("a", 2))
    api.add("msgbatch_two", make_lines("b", 1, "errored"))
    monkeypatch.setattr(BatchHook, "get_service", lambda self: api.get_service())
    with DAG("lineage", schedule=None):
        op = BatchResultsOperator(
            task_id="land", batch_id=["msgbatch_one", "msgbatch_two"], destination=f"file://{tmp_path}/out/"
        )
    op.execute({"outlet_events": OutletEventAccessors()})  # type: ignore[typeddict-item]

    lineage = ExtractorManager().extract_metadata(
        dagrun=SimpleNamespace(run_id="manual__1"),
        task=op,
        task_instance_state=TaskInstanceState.SUCCESS,
        task_instance=SimpleNamespace(),
    )

    assert lineage.inputs == [
        Dataset(namespace="anthropic", name="message_batches/msgbatch_one"),
        Dataset(namespace="anthropic", name="message_batches/msgbatch_two"),
    ]
    assert lineage.outputs == [
        Dataset(namespace="file", name=f"{tmp_path}/out/msgbatch_one.jsonl"),
        Dataset(namespace="file", name=f"{tmp_path}/out/msgbatch_two.jsonl"),
    ]
