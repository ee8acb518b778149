"""The batch group: the create operator's XCom value, and how it follows the batches' state.

Shape (shared contract)::

    {"batch_ids": [...], "request_counts": [n per batch], "total_requests": N, "fingerprint": "<sha256>",
     "processing_status": "in_progress" | "canceling" | "ended", "counts": {processing, succeeded, ...}}

``processing_status`` of the group is ``ended`` only when every batch has ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_batches.api.models import MessageBatch
from airflow_batches.outcome import COUNT_KEYS
from airflow_batches.triggers.events import aggregate_counts

__all__ = ["group_status", "new_group", "with_state"]


def new_group(batch_ids: Sequence[str], request_counts: Sequence[int], fingerprint: str) -> dict[str, Any]:
    total = sum(request_counts)
    return {
        "batch_ids": list(batch_ids),
        "request_counts": list(request_counts),
        "total_requests": total,
        "fingerprint": fingerprint,
        "processing_status": "in_progress",
        "counts": {key: (total if key == "processing" else 0) for key in COUNT_KEYS},
    }


def group_status(statuses: Iterable[str]) -> str:
    """``ended`` when every batch ended, else ``in_progress`` while any still runs, else ``canceling``."""
    seen = set(statuses)
    if seen <= {"ended"}:
        return "ended"
    return "in_progress" if "in_progress" in seen else "canceling"


def with_state(group: Mapping[str, Any], batches: Sequence[MessageBatch]) -> dict[str, Any]:
    """The group with the latest known status and counts of its batches."""
    return {
        **group,
        "processing_status": group_status(b.processing_status for b in batches),
        "counts": dict(aggregate_counts(batches)),
    }
