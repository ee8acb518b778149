"""The trigger event schema: snapshots, aggregate counts, validation and the exception for each reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, AirflowSensorTimeout

from airflow_batches.api.models import MessageBatch, MessageBatchRequestCounts
from airflow_batches.batch_ref import aggregate_counts, batch_snapshot
from airflow_batches.errors import BatchAccessError, BatchWaitError, BatchWaitTimeout, InvalidBatchEventError
from airflow_batches.events import event_exception, make_event, validate_event

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_batch(batch_id: str, status: str = "ended", **counts: int) -> MessageBatch:
    return MessageBatch(
        id=batch_id,
        processing_status=status,  # type: ignore[arg-type]
        request_counts=MessageBatchRequestCounts(**counts),
        created_at=CREATED,
        expires_at=CREATED + timedelta(days=1),
        ended_at=CREATED + timedelta(hours=1) if status == "ended" else None,
        results_url=f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results"
        if status == "ended"
        else None,
        some_new_field="kept by the model, not carried in events",
    )


def test_snapshot_is_json_safe_with_iso_timestamps_and_all_counts() -> None:
    snapshot = batch_snapshot(a_batch("msgbatch_a", succeeded=2, errored=1))
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["created_at"] == "2026-03-01T12:00:00Z"
    assert snapshot["ended_at"] == "2026-03-01T13:00:00Z"
    assert snapshot["cancel_initiated_at"] is None and snapshot["archived_at"] is None
    assert snapshot["request_counts"] == {
        "processing": 0,
        "succeeded": 2,
        "errored": 1,
        "canceled": 0,
        "expired": 0,
    }
    assert set(snapshot) == {
        "id",
        "processing_status",
        "request_counts",
        "created_at",
        "ended_at",
        "expires_at",
        "cancel_initiated_at",
        "archived_at",
        "results_url",
    }


def test_aggregate_counts_sums_models_and_snapshots_alike() -> None:
    first = a_batch("msgbatch_a", succeeded=2, errored=1)
    second = batch_snapshot(a_batch("msgbatch_b", "in_progress", processing=4))
    assert aggregate_counts([first, second]) == {
        "processing": 4,
        "succeeded": 2,
        "errored": 1,
        "canceled": 0,
        "expired": 0,
    }


def success_event() -> dict[str, Any]:
    snapshots = [
        batch_snapshot(a_batch("msgbatch_a", succeeded=1)),
        batch_snapshot(a_batch("msgbatch_b", expired=2)),
    ]
    return dict(make_event("success", "ended", "all ended", ["msgbatch_a", "msgbatch_b"], snapshots))


def test_made_events_validate_and_carry_counts_computed_from_batches() -> None:
    event = validate_event(success_event())
    assert event["counts"]["succeeded"] == 1 and event["counts"]["expired"] == 2
    assert event["batch_ids"] == ["msgbatch_a", "msgbatch_b"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.update(status="done"), "'status'"),
        (lambda e: e.update(reason="deadline"), "'reason'"),
        (lambda e: e.update(message=None), "'message'"),
        (lambda e: e.update(batch_ids=[]), "'batch_ids'"),
        (lambda e: e.update(batch_ids="msgbatch_a"), "'batch_ids'"),
        (lambda e: e.update(batches={}), "'batches'"),
        (
            lambda e: e["batches"][1]["request_counts"].update(errored=-1),
            "'batches'[1].request_counts.errored",
        ),
        (lambda e: e["batches"][0].update(ended_at=5), "'batches'[0].ended_at"),
        (lambda e: e["batches"][0].update(id="msgbatch_zzz"), "not in batch_ids"),
        (lambda e: e["batches"][0].update(processing_status="in_progress"), "have not ended"),
        (lambda e: e.pop("counts"), "'counts'"),
    ],
)
def test_malformed_events_are_rejected_naming_the_field(change: Any, field: str) -> None:
    event = success_event()
    change(event)
    with pytest.raises(InvalidBatchEventError) as info:
        validate_event(event)
    assert field in str(info.value)
    assert "malformed BatchTrigger event" in str(info.value)


def test_non_mapping_event_is_rejected() -> None:
    with pytest.raises(InvalidBatchEventError, match="must be a mapping"):
        validate_event(None)


def test_timeout_and_error_events_may_lack_snapshots_of_unread_batches() -> None:
    event = validate_event(dict(make_event("error", "errors_exhausted", "api down", ["msgbatch_a"], [])))
    assert event["batches"] == [] and event["counts"]["processing"] == 0


@pytest.mark.parametrize(
    ("status", "reason", "kind", "retryable"),
    [
        ("timeout", "deadline", BatchWaitTimeout, False),
        ("error", "errors_exhausted", BatchWaitError, True),
        ("error", "auth", BatchAccessError, False),
        ("error", "permission", BatchAccessError, False),
        ("error", "not_found", BatchAccessError, False),
        ("error", "invalid_request", BatchAccessError, False),
    ],
)
def test_each_reason_maps_to_an_exception_naming_batches_and_counts(
    status: Any, reason: Any, kind: type[Exception], retryable: bool
) -> None:
    snapshot = batch_snapshot(a_batch("msgbatch_a", "in_progress", processing=3))
    exc = event_exception(
        validate_event(dict(make_event(status, reason, "what happened", ["msgbatch_a"], [snapshot])))
    )
    assert type(exc) is kind and isinstance(exc, AirflowException)
    # AirflowFailException and AirflowSensorTimeout end the task without using up its retries.
    assert isinstance(exc, AirflowFailException | AirflowSensorTimeout) is not retryable
    assert "what happened" in str(exc) and "msgbatch_a" in str(exc) and "processing=3" in str(exc)


def test_event_exception_refuses_success() -> None:
    with pytest.raises(ValueError, match="not 'success'"):
        event_exception(validate_event(success_event()))
