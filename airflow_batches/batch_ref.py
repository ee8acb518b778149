"""Which batches, and their state as one group: the batch reference and the batch group, defined once.

A *batch reference* (:data:`BatchRef`) is what every ``batch_id`` argument accepts: a plain id, a list of
ids, or a *batch group* (:class:`BatchGroup`, the dict ``BatchCreateOperator``, ``BatchCancelOperator`` and
``BatchSensor`` return). :func:`normalize_batch_ids` turns any of them into a list of ids. Groups are built
only here (:func:`new_group`, :func:`group_of`), so every operator returns the same shape::

    {"batch_ids": [...], "processing_status": "in_progress" | "canceling" | "ended",
     "counts": {"processing", "succeeded", "errored", "canceled", "expired"},   # summed over the batches
     # the create operator adds:
     "request_counts": [n per batch], "total_requests": N, "fingerprint": "<sha256>",
     "cost": CostReport | None,   # after waiting, with report_cost
     # ... and with resubmit_rounds > 0 (batch_ids and request_counts then cover every round, counts
     # count each original request once by its final result):
     "rounds": [{"batch_ids", "request_counts", "resubmitted", "replaces", "counts"}, ...],
     # the sensor adds:
     "batches": [BatchSnapshot, ...]}

The group's ``processing_status`` is ``ended`` only when every batch has ended.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from airflow_batches.api.models import COUNT_KEYS, MessageBatch
from airflow_batches.cost.usage_cost import CostReport
from airflow_batches.errors import BatchRefError

__all__ = [
    "BatchGroup",
    "BatchRef",
    "BatchSnapshot",
    "ReplacedCounts",
    "RequestCounts",
    "ResultCounts",
    "RoundRecord",
    "aggregate_counts",
    "batch_snapshot",
    "final_counts",
    "format_counts",
    "group_in",
    "group_of",
    "group_status",
    "iso_z",
    "new_group",
    "normalize_batch_ids",
]


class ResultCounts(TypedDict):
    """Requests per result type (the manifest's ``counts``)."""

    succeeded: int
    errored: int
    canceled: int
    expired: int


class RequestCounts(ResultCounts):
    """The API's ``request_counts``: per result type, plus those still ``processing``."""

    processing: int


class BatchSnapshot(TypedDict):
    """The JSON-safe state of one batch, as carried in trigger events and XCom."""

    id: str
    processing_status: str
    request_counts: RequestCounts
    created_at: str | None
    ended_at: str | None
    expires_at: str | None
    cancel_initiated_at: str | None
    archived_at: str | None
    results_url: str | None


class ReplacedCounts(TypedDict):
    """What the requests a resubmit round sent again had come back as in the round before."""

    errored: int
    expired: int


class RoundRecord(TypedDict):
    """One round of a create operator with ``resubmit_rounds`` (see ``operators/resubmit.py``)."""

    batch_ids: list[str]
    request_counts: list[int]
    resubmitted: int
    replaces: ReplacedCounts
    counts: RequestCounts


class BatchGroup(TypedDict):
    """The state of a group of batches; see the module docstring for who adds the optional keys."""

    batch_ids: list[str]
    processing_status: str
    counts: RequestCounts
    request_counts: NotRequired[list[int]]
    total_requests: NotRequired[int]
    fingerprint: NotRequired[str]
    batches: NotRequired[list[BatchSnapshot]]
    cost: NotRequired[CostReport | None]
    rounds: NotRequired[list[RoundRecord]]


#: A batch id, a list of ids, a :class:`BatchGroup` (or any mapping with ``batch_ids`` or ``batch_id``),
#: or the JSON text of one of these.
BatchRef = str | Sequence[str] | Mapping[str, Any]


def normalize_batch_ids(value: BatchRef | Any) -> list[str]:
    """Return the batch ids named by ``value``, in order, without duplicates.

    Accepts ``"msgbatch_..."``, ``["msgbatch_a", "msgbatch_b"]``, a mapping with ``batch_ids`` (the create
    operator's XCom value) or ``batch_id``, and the JSON text of any of these (a templated field renders a
    dict to a string when ``render_template_as_native_obj`` is off).
    """
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{", '"'):
            try:
                return normalize_batch_ids(json.loads(text))
            except json.JSONDecodeError as exc:
                raise BatchRefError(f"batch reference looks like JSON but does not parse: {exc}") from None
        ids: list[Any] = [text]
    elif isinstance(value, Mapping):
        if "batch_ids" in value:
            ids = list(value["batch_ids"])
        elif "batch_id" in value:
            ids = [value["batch_id"]]
        else:
            raise BatchRefError(
                f"batch reference mapping has neither 'batch_ids' nor 'batch_id' (keys: {sorted(value)}); "
                "pass the BatchCreateOperator's return value, a batch id, or a list of ids"
            )
    elif isinstance(value, Sequence):
        ids = list(value)
    else:
        raise BatchRefError(
            f"cannot read batch ids from a {type(value).__name__}; pass the BatchCreateOperator's "
            "return value, a batch id, or a list of ids"
        )
    result: list[str] = []
    for item in ids:
        if not isinstance(item, str) or not item.strip():
            raise BatchRefError(f"batch id must be a non-empty string, got {item!r}")
        if item.strip() not in result:
            result.append(item.strip())
    if not result:
        raise BatchRefError("batch reference names no batch (empty list)")
    return result


def group_in(value: BatchRef | Any) -> Mapping[str, Any] | None:
    """The group ``value`` is (a mapping, or its JSON text), or ``None`` for an id or a list of ids."""
    if isinstance(value, str) and value.lstrip()[:1] == "{":
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None  # normalize_batch_ids reports it
    return value if isinstance(value, Mapping) else None


def iso_z(value: datetime | float) -> str:
    """ISO 8601 in UTC with a ``Z``; epoch seconds (a deadline) are shown to the second."""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC).replace(microsecond=0)
    return value.isoformat().replace("+00:00", "Z")


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso_z(value)


def batch_snapshot(batch: MessageBatch) -> BatchSnapshot:
    """The JSON-safe state of one batch."""
    counts = batch.request_counts
    return {
        "id": batch.id,
        "processing_status": batch.processing_status,
        "request_counts": {
            "processing": counts.processing,
            "succeeded": counts.succeeded,
            "errored": counts.errored,
            "canceled": counts.canceled,
            "expired": counts.expired,
        },
        "created_at": _iso_or_none(batch.created_at),
        "ended_at": _iso_or_none(batch.ended_at),
        "expires_at": _iso_or_none(batch.expires_at),
        "cancel_initiated_at": _iso_or_none(batch.cancel_initiated_at),
        "archived_at": _iso_or_none(batch.archived_at),
        "results_url": batch.results_url,
    }


def format_counts(counts: Mapping[str, Any]) -> str:
    """``processing=0 succeeded=3 errored=1 ...``, always all five counts in the API's order."""
    return " ".join(f"{key}={int(counts.get(key, 0))}" for key in COUNT_KEYS)


def aggregate_counts(batches: Iterable[BatchSnapshot | MessageBatch]) -> RequestCounts:
    """Request counts summed over the batches of a group."""
    total: RequestCounts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for batch in batches:
        counts: Mapping[str, Any] = (
            batch.request_counts.model_dump() if isinstance(batch, MessageBatch) else batch["request_counts"]
        )
        for key in COUNT_KEYS:
            total[key] += int(counts[key])  # type: ignore[literal-required]
    return total


def group_status(statuses: Iterable[str]) -> str:
    """``ended`` when every batch ended, else ``in_progress`` while any still runs, else ``canceling``."""
    seen = set(statuses)
    if seen <= {"ended"}:
        return "ended"
    return "in_progress" if "in_progress" in seen else "canceling"


def new_group(batch_ids: Sequence[str], request_counts: Sequence[int], fingerprint: str) -> BatchGroup:
    """The create operator's group right after creating: every request still processing."""
    total = sum(request_counts)
    return {
        "batch_ids": list(batch_ids),
        "request_counts": list(request_counts),
        "total_requests": total,
        "fingerprint": fingerprint,
        "processing_status": "in_progress",
        "counts": {"processing": total, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
    }


def group_of(
    batches: Sequence[BatchSnapshot | MessageBatch],
    base: Mapping[str, Any] | None = None,
    *,
    with_batches: bool = False,
) -> BatchGroup:
    """The group in the latest known state of ``batches``.

    ``base`` (an earlier group, e.g. the create operator's) keeps its ids and other keys; without it the ids
    are the batches'. ``with_batches`` adds each batch's snapshot under ``batches``.
    """
    snapshots = [b if not isinstance(b, MessageBatch) else batch_snapshot(b) for b in batches]
    group: BatchGroup = {
        "batch_ids": [s["id"] for s in snapshots],
        **(base or {}),  # type: ignore[typeddict-item]
        "processing_status": group_status(s["processing_status"] for s in snapshots),
        "counts": aggregate_counts(snapshots),
    }
    if "rounds" in group:
        # Every batch of a round is known: its counts are updated. The group counts each original
        # request once, by its final result (the sensor and the create operator alike).
        by_id = {s["id"]: s for s in snapshots}
        group["rounds"] = [
            {**r, "counts": aggregate_counts([by_id[b] for b in r["batch_ids"]])}
            if all(b in by_id for b in r["batch_ids"])
            else r
            for r in group["rounds"]
        ]
        group["counts"] = final_counts(group["rounds"])
    if with_batches:
        group["batches"] = snapshots
    return group


def final_counts(rounds: Sequence[RoundRecord]) -> RequestCounts:
    """Each original request once, by its latest result: all rounds' counts less what later ones replaced."""
    total: RequestCounts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for record in rounds:
        for key in COUNT_KEYS:
            total[key] += int(record["counts"][key])  # type: ignore[literal-required]
        total["errored"] -= record["replaces"]["errored"]
        total["expired"] -= record["replaces"]["expired"]
    return total
