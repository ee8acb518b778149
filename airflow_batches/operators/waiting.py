"""Waiting for batches from an operator: the deferrable and the blocking path share ``BatchTrigger``.

The blocking path runs the very same trigger on a private event loop in the worker, so both paths poll,
tolerate transient errors, log and honour the deadline identically, and produce the same event that
``execute_complete`` then reads.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow_batches.triggers.batch import BatchTrigger
from airflow_batches.triggers.events import BatchEvent, BatchWaitError, event_exception, validate_event

__all__ = ["absolute_deadline", "raise_for_event", "wait_blocking"]


def absolute_deadline(timeout: float | None) -> float | None:
    """An epoch deadline computed once, so deferrals and triggerer restarts do not reset the clock."""
    return None if timeout is None else time.time() + timeout


def wait_blocking(trigger: BatchTrigger) -> dict[str, Any]:
    """Run ``trigger`` in this worker until its first event and return the event's payload."""

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            payload: dict[str, Any] = event.payload
            return payload
        raise BatchWaitError(f"the batch trigger for {trigger.batch_ids} stopped without an event")

    return asyncio.run(first_event())


def raise_for_event(event: Any) -> BatchEvent:
    """Validate a trigger event and return it when every batch ended; otherwise raise the matching failure."""
    checked = validate_event(event)
    if checked["status"] != "success":
        raise event_exception(checked)
    return checked
