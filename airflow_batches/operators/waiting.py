"""Waiting for batches from an operator: the deferrable and the blocking path share ``BatchTrigger``.

The blocking path runs the very same trigger on a private event loop in the worker, so both paths poll,
tolerate transient errors, log and honour the deadline identically, and produce the same event that
``execute_complete`` then reads.
"""

from __future__ import annotations

import contextlib
import math
import time
from datetime import timedelta
from typing import Any

from airflow_batches.hooks.client_pool import aclose_shared_clients
from airflow_batches.hooks.sync_runner import run_sync
from airflow_batches.triggers.batch import BatchTrigger
from airflow_batches.triggers.events import BatchEvent, BatchWaitError, event_exception, validate_event

__all__ = [
    "BATCH_LIFETIME_SECONDS",
    "absolute_deadline",
    "deferral_timeout",
    "raise_for_event",
    "validate_wait_settings",
    "wait_blocking",
]

# The trigger fires its own timeout event at the deadline; Airflow's deferral timeout is only the backstop
# for a triggerer that is down, so it must not win the race against a poll in flight at the deadline.
_DEFERRAL_GRACE_SECONDS = 300.0
# The API expires whatever a batch has not processed 24 hours after its creation, and the batch then ends.
BATCH_LIFETIME_SECONDS = 24 * 3600.0


def validate_wait_settings(poll_interval: float, timeout: float | None) -> None:
    """Reject a bad ``poll_interval`` or ``timeout`` when the DAG is parsed, before anything is paid for."""
    if not _positive_seconds(poll_interval):
        raise ValueError(f"poll_interval must be a number of seconds > 0, got {poll_interval!r}")
    if timeout is not None and not _positive_seconds(timeout):
        raise ValueError(f"timeout must be a number of seconds > 0 or None (no limit), got {timeout!r}")


def _positive_seconds(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def absolute_deadline(timeout: float | None) -> float | None:
    """An epoch deadline computed once, so deferrals and triggerer restarts do not reset the clock."""
    return None if timeout is None else time.time() + timeout


def deferral_timeout(deadline: float | None, poll_interval: float) -> timedelta:
    """Airflow's own bound on a deferral, so a dead triggerer cannot hold the task deferred for ever: the
    deadline plus a grace or, without a deadline, a batch's whole life (it ends within 24 hours of its
    creation: what is not done by then expires) plus the grace."""
    grace = max(_DEFERRAL_GRACE_SECONDS, 3 * poll_interval)
    if deadline is None:
        return timedelta(seconds=BATCH_LIFETIME_SECONDS + grace)
    return timedelta(seconds=max(0.0, deadline - time.time()) + grace)


def wait_blocking(trigger: BatchTrigger) -> dict[str, Any]:
    """Run ``trigger`` in this worker until its first event and return the event's payload.

    The trigger takes its HTTP client from the loop's shared pool; this loop is private and ends here, so
    its pool is closed here too (sockets released now, not whenever the garbage collector gets to them).
    """

    async def first_event() -> dict[str, Any]:
        try:
            async with contextlib.aclosing(trigger.run()) as events:
                async for event in events:
                    payload: dict[str, Any] = event.payload
                    return payload
        finally:
            await aclose_shared_clients()
        raise BatchWaitError(f"the batch trigger for {trigger.batch_ids} stopped without an event")

    return run_sync(first_event)


def raise_for_event(event: Any) -> BatchEvent:
    """Validate a trigger event and return it when every batch ended; otherwise raise the matching failure."""
    checked = validate_event(event)
    if checked["status"] != "success":
        raise event_exception(checked)
    return checked
