"""The event :class:`~airflow_batches.triggers.batch.BatchTrigger` fires, defined once.

Shape (every branch carries the batch ids and the latest known state of each batch)::

    {"status": "success" | "error" | "timeout",
     "reason": "ended" | "deadline" | "not_found" | "auth" | "permission" | "errors_exhausted"
               | "invalid_request",
     "message": str,
     "batch_ids": [...],
     "batches": [{"id", "processing_status", "request_counts": {...}, "created_at", "ended_at", "expires_at",
                  "cancel_initiated_at", "archived_at", "results_url"}],
     "counts": {"processing", "succeeded", "errored", "canceled", "expired"}}   # summed over "batches"

``status == "success"`` means every batch reached ``ended``; whether the task succeeds is then up to
:mod:`airflow_batches.outcome`. Code that resumes from the trigger calls :func:`validate_event` first and
:func:`event_exception` for anything but success.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, TypedDict

from airflow_batches.api.models import COUNT_KEYS
from airflow_batches.batch_ref import BatchSnapshot, RequestCounts, aggregate_counts, format_counts
from airflow_batches.errors import (
    BatchAccessError,
    BatchWaitError,
    BatchWaitTimeout,
    InvalidBatchEventError,
)

__all__ = [
    "BatchEvent",
    "EventReason",
    "EventStatus",
    "event_exception",
    "make_event",
    "validate_event",
]

EventStatus = Literal["success", "error", "timeout"]
EventReason = Literal[
    "ended", "deadline", "not_found", "auth", "permission", "errors_exhausted", "invalid_request"
]

_REASONS_BY_STATUS: dict[str, frozenset[str]] = {
    "success": frozenset({"ended"}),
    "timeout": frozenset({"deadline"}),
    "error": frozenset({"not_found", "auth", "permission", "errors_exhausted", "invalid_request"}),
}
_TIMESTAMP_KEYS = ("created_at", "ended_at", "expires_at", "cancel_initiated_at", "archived_at")


class BatchEvent(TypedDict):
    status: EventStatus
    reason: EventReason
    message: str
    batch_ids: list[str]
    batches: list[BatchSnapshot]
    counts: RequestCounts


def make_event(
    status: EventStatus,
    reason: EventReason,
    message: str,
    batch_ids: list[str],
    batches: Iterable[BatchSnapshot],
) -> BatchEvent:
    """Build an event; ``counts`` is computed from ``batches`` so the two never disagree."""
    snapshots = list(batches)
    return {
        "status": status,
        "reason": reason,
        "message": message,
        "batch_ids": list(batch_ids),
        "batches": snapshots,
        "counts": aggregate_counts(snapshots),
    }


def _fail(field: str, problem: str) -> InvalidBatchEventError:
    return InvalidBatchEventError(
        f"malformed BatchTrigger event: {field} {problem}. Events must come from "
        "airflow_batches.triggers.BatchTrigger (see airflow_batches.events)"
    )


def _check_counts(value: object, field: str) -> RequestCounts:
    if not isinstance(value, Mapping):
        raise _fail(field, f"must be a mapping of the five request counts, got {type(value).__name__}")
    for key in COUNT_KEYS:
        count = value.get(key)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _fail(f"{field}.{key}", f"must be a non-negative integer, got {count!r}")
    return {key: value[key] for key in COUNT_KEYS}  # type: ignore[return-value]


def _check_snapshot(value: object, field: str) -> BatchSnapshot:
    if not isinstance(value, Mapping):
        raise _fail(field, f"must be a mapping, got {type(value).__name__}")
    for key in ("id", "processing_status"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise _fail(f"{field}.{key}", f"must be a non-empty string, got {value.get(key)!r}")
    for key in (*_TIMESTAMP_KEYS, "results_url"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise _fail(f"{field}.{key}", f"must be an ISO timestamp string or null, got {value[key]!r}")
    snapshot = dict(value)
    snapshot["request_counts"] = _check_counts(value.get("request_counts"), f"{field}.request_counts")
    for key in (*_TIMESTAMP_KEYS, "results_url"):
        snapshot.setdefault(key, None)
    return snapshot  # type: ignore[return-value]


def validate_event(event: object) -> BatchEvent:
    """Check an event against the schema and return it typed; :class:`InvalidBatchEventError` names the
    field that is wrong."""
    if not isinstance(event, Mapping):
        raise _fail("the event", f"must be a mapping, got {type(event).__name__}")
    status, reason = event.get("status"), event.get("reason")
    if status not in _REASONS_BY_STATUS:
        raise _fail("'status'", f"must be one of {sorted(_REASONS_BY_STATUS)}, got {status!r}")
    if reason not in _REASONS_BY_STATUS[status]:
        raise _fail(
            "'reason'",
            f"must be one of {sorted(_REASONS_BY_STATUS[status])} when status is {status!r}, got {reason!r}",
        )
    if not isinstance(event.get("message"), str):
        raise _fail("'message'", f"must be a string, got {event.get('message')!r}")
    batch_ids = event.get("batch_ids")
    if (
        not isinstance(batch_ids, list)
        or not batch_ids
        or not all(isinstance(i, str) and i for i in batch_ids)
    ):
        raise _fail("'batch_ids'", f"must be a non-empty list of batch id strings, got {batch_ids!r}")
    raw_batches = event.get("batches")
    if not isinstance(raw_batches, list):
        raise _fail("'batches'", f"must be a list, got {type(raw_batches).__name__}")
    batches = [_check_snapshot(item, f"'batches'[{n}]") for n, item in enumerate(raw_batches)]
    unknown = [b["id"] for b in batches if b["id"] not in batch_ids]
    if unknown:
        raise _fail("'batches'", f"describe batches not in batch_ids: {unknown}")
    counts = _check_counts(event.get("counts"), "'counts'")
    if status == "success":
        ended = {b["id"] for b in batches if b["processing_status"] == "ended"}
        not_ended = [i for i in batch_ids if i not in ended]
        if not_ended:
            raise _fail("'status'", f"is 'success' but these batches have not ended: {not_ended}")
    return {
        "status": status,
        "reason": reason,
        "message": event["message"],
        "batch_ids": list(batch_ids),
        "batches": batches,
        "counts": counts,
    }


def event_exception(event: BatchEvent) -> BatchWaitError | BatchWaitTimeout | BatchAccessError:
    """The exception that ends the task for a non-success event; its message names the batches and counts."""
    if event["status"] == "success":
        raise ValueError("event_exception() is for events whose status is not 'success'")
    text = f"{event['message']} (batch(es) {', '.join(event['batch_ids'])}; {format_counts(event['counts'])})"
    if event["status"] == "timeout":
        return BatchWaitTimeout(text)
    if event["reason"] == "errors_exhausted":
        return BatchWaitError(text)
    return BatchAccessError(text)
