"""A stored batch and its state machine, computed lazily from the clock (no background tasks).

Timeline of a batch created at ``t0`` with ``processing_seconds = p``::

    in_progress  while now <= end
    ended        once now > end, where end = t0 + p, or t0 + 24 h (expiry) when p >= 24 h or the batch
                 holds an "expire" request
    canceling    from a cancel at tc until tc + cancel_seconds (capped at expiry), then ended

The comparison is strict so a create response always shows ``in_progress``, even with ``p = 0``.
What each request becomes depends on its kind and on how the batch ended (see :func:`outcome`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path

from airflow_batches.api.models import MessageBatch, MessageBatchRequestCounts, ProcessingStatus
from airflow_batches.emulator.create_body import ParsedRequests
from airflow_batches.emulator.request_rules import RequestKind

__all__ = ["ARCHIVE_AFTER", "EXPIRE_AFTER", "Batch", "Ending", "RenderingKey", "Snapshot", "outcome"]

EXPIRE_AFTER = timedelta(hours=24)
ARCHIVE_AFTER = timedelta(days=29)


class Ending(Enum):
    PROCESSED = "processed"
    EXPIRED = "expired"
    CANCELED = "canceled"


_OUTCOMES: dict[Ending, dict[RequestKind, str]] = {
    Ending.PROCESSED: {
        RequestKind.NORMAL: "succeeded",
        RequestKind.ERROR: "errored",
        RequestKind.EXPIRE: "expired",
        RequestKind.UNCANCELABLE: "succeeded",
        RequestKind.INVALID: "errored",
        RequestKind.TRANSIENT_ERROR: "errored",
        # Ends with the batch (not at 24 h) so tests and demos need not move the clock a day.
        RequestKind.TRANSIENT_EXPIRE: "expired",
    },
    Ending.EXPIRED: {
        RequestKind.NORMAL: "expired",
        RequestKind.ERROR: "expired",
        RequestKind.EXPIRE: "expired",
        RequestKind.UNCANCELABLE: "expired",
        RequestKind.INVALID: "errored",
        RequestKind.TRANSIENT_ERROR: "expired",
        RequestKind.TRANSIENT_EXPIRE: "expired",
    },
    Ending.CANCELED: {
        RequestKind.NORMAL: "canceled",
        RequestKind.ERROR: "canceled",
        RequestKind.EXPIRE: "canceled",
        RequestKind.UNCANCELABLE: "succeeded",
        RequestKind.INVALID: "errored",
        RequestKind.TRANSIENT_ERROR: "canceled",
        RequestKind.TRANSIENT_EXPIRE: "canceled",
    },
}


# What a results body's bytes depend on besides the batch: how it ended, results_drop_lines,
# results_duplicate_line and invalid_output_rate (see ``results_files``).
RenderingKey = tuple[Ending, int, bool, float]


def outcome(kind: RequestKind, ending: Ending) -> str:
    """The result type (``succeeded``/``errored``/``canceled``/``expired``) of one request."""
    return _OUTCOMES[ending][kind]


@dataclass(frozen=True)
class Snapshot:
    """A batch as seen at one instant."""

    status: ProcessingStatus
    ending: Ending
    ended_at: datetime | None
    archived_at: datetime | None


@dataclass(eq=False)
class Batch:
    id: str
    seq: int
    created_at: datetime
    processing_seconds: float
    requests: ParsedRequests
    body_path: Path
    cancel_initiated_at: datetime | None = None
    cancel_seconds: float = 0.0
    transient_error_type: str = "overloaded_error"
    kind_counts: Counter[RequestKind] = field(init=False)
    # Results bodies already rendered into files, by what their bytes depend on (see ``results_files``).
    kept_results: dict[RenderingKey, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind_counts = Counter(RequestKind(kind) for kind in self.requests.kinds)

    @property
    def expires_at(self) -> datetime:
        return self.created_at + EXPIRE_AFTER

    def _natural_end(self) -> tuple[datetime, Ending]:
        finish = self.created_at + timedelta(seconds=self.processing_seconds)
        if finish >= self.expires_at:
            return self.expires_at, Ending.EXPIRED
        if self.kind_counts[RequestKind.EXPIRE]:
            return self.expires_at, Ending.PROCESSED
        return finish, Ending.PROCESSED

    def snapshot(self, now: datetime) -> Snapshot:
        if self.cancel_initiated_at is not None:
            end = min(self.cancel_initiated_at + timedelta(seconds=self.cancel_seconds), self.expires_at)
            ending = Ending.CANCELED
        else:
            end, ending = self._natural_end()
        if now <= end:
            return Snapshot("canceling" if self.cancel_initiated_at else "in_progress", ending, None, None)
        archive = self.created_at + ARCHIVE_AFTER
        return Snapshot("ended", ending, end, archive if now > archive else None)

    def request_counts(self, snapshot: Snapshot) -> MessageBatchRequestCounts:
        if snapshot.status != "ended":
            return MessageBatchRequestCounts(processing=len(self.requests))
        counts: Counter[str] = Counter()
        for kind, number in self.kind_counts.items():
            counts[outcome(kind, snapshot.ending)] += number
        return MessageBatchRequestCounts(**counts)

    def to_model(self, now: datetime, *, base_url: str, clear_results_url_on_archive: bool) -> MessageBatch:
        snapshot = self.snapshot(now)
        results_url = None
        if snapshot.ended_at is not None and not (snapshot.archived_at and clear_results_url_on_archive):
            results_url = f"{base_url}/v1/messages/batches/{self.id}/results"
        return MessageBatch(
            id=self.id,
            processing_status=snapshot.status,
            request_counts=self.request_counts(snapshot),
            created_at=self.created_at,
            expires_at=self.expires_at,
            ended_at=snapshot.ended_at,
            cancel_initiated_at=self.cancel_initiated_at,
            archived_at=snapshot.archived_at,
            results_url=results_url,
        )
