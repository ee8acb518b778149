"""One read of every batch of a group, what a failed read means, and when to read again.

Shared by every way of waiting (:mod:`airflow_batches.waiting`) and by the shared list sweep
(:mod:`airflow_batches.sweep`), so a failed read means the same everywhere: throttling (429) backs off
without counting; transient failures (no response, timeouts, 408/409, 5xx, 529, a garbled body) back off and
count; an answer that will not change (401, 403, 404, 400, a malformed id) is fatal.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from airflow_batches.api import (
    APIStatusError,
    AuthenticationError,
    BatchServiceAsync,
    BillingError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    is_transient,
)
from airflow_batches.api.retry import exponential_backoff
from airflow_batches.batch_ref import BatchSnapshot, batch_snapshot

__all__ = ["PollFailure", "classify_poll_error", "poll_delay", "retrieve_each"]

_JITTER = 0.1
# Backoff after failures grows from poll_interval up to this (or poll_interval, if larger).
_MAX_BACKOFF_SECONDS = 600.0
# Enough parallel reads to poll a large group quickly without a burst that invites throttling.
_MAX_CONCURRENT_RETRIEVES = 8


def poll_delay(poll_interval: float, streak: int) -> float:
    """Seconds until the next read after ``streak`` failed (or throttled) polls in a row, jittered +-10%."""
    cap = max(poll_interval, _MAX_BACKOFF_SECONDS)
    base = exponential_backoff(poll_interval, max(streak - 1, 0), cap)
    return base * random.uniform(1 - _JITTER, 1 + _JITTER)


# --- one read of every batch --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PollFailure:
    """A failed read of one batch: ``kind`` says how to react, ``reason`` is the event reason when fatal."""

    batch_id: str
    kind: Literal["fatal", "throttled", "transient"]
    reason: Literal["not_found", "auth", "permission", "invalid_request"] | None
    message: str


def classify_poll_error(batch_id: str, exc: Exception) -> PollFailure:
    """Decide whether waiting can go on after ``exc`` was raised reading ``batch_id``."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, RateLimitError):
        return PollFailure(batch_id, "throttled", None, text)
    if isinstance(exc, AuthenticationError):
        return PollFailure(
            batch_id, "fatal", "auth", f"the API key was rejected reading batch {batch_id}: {exc}"
        )
    if isinstance(exc, PermissionDeniedError | BillingError):
        return PollFailure(batch_id, "fatal", "permission", f"no permission to read batch {batch_id}: {exc}")
    if isinstance(exc, NotFoundError):
        return PollFailure(
            batch_id,
            "fatal",
            "not_found",
            f"batch {batch_id} does not exist for this API key (deleted, or in another workspace): {exc}",
        )
    if isinstance(exc, InvalidInputError):
        return PollFailure(batch_id, "fatal", "invalid_request", f"cannot read batch {batch_id!r}: {exc}")
    if isinstance(exc, APIStatusError) and not is_transient(exc):
        return PollFailure(
            batch_id, "fatal", "invalid_request", f"the API refused to read batch {batch_id}: {exc}"
        )
    # No response, a timeout, a 5xx/529, a body that is not a batch: the next poll may well succeed.
    return PollFailure(batch_id, "transient", None, text)


async def retrieve_each(
    service: BatchServiceAsync, batch_ids: Sequence[str], *, concurrency: int = _MAX_CONCURRENT_RETRIEVES
) -> list[BatchSnapshot | PollFailure]:
    """Retrieve every batch (``concurrency`` at a time); each slot holds the batch's snapshot or why it
    could not be read."""
    limit = asyncio.Semaphore(concurrency)

    async def one(batch_id: str) -> BatchSnapshot | PollFailure:
        async with limit:
            try:
                return batch_snapshot(await service.retrieve(batch_id))
            except Exception as exc:  # classified, never swallowed: every failure is reported to the caller
                return classify_poll_error(batch_id, exc)

    return list(await asyncio.gather(*(one(batch_id) for batch_id in batch_ids)))
