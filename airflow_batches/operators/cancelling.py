"""Cancel the batches of a group that are still running (on kill, on timeout, or on request)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_batches.api.models import MessageBatch

if TYPE_CHECKING:
    from airflow_batches.hooks.batch import BatchHook

__all__ = ["cancel_unfinished"]

log = logging.getLogger(__name__)


def cancel_unfinished(hook: BatchHook, batch_ids: Sequence[str]) -> list[MessageBatch]:
    """Cancel every batch still ``in_progress``; ended or already canceling ones are left as they are.

    Reading the state first avoids the API's error for cancelling an ended batch. Returns the latest state of
    every batch.
    """
    states = []
    for batch_id in batch_ids:
        batch = hook.retrieve(batch_id)
        if batch.processing_status == "in_progress":
            batch = hook.cancel(batch_id)
            log.info("Cancel requested for batch %s (now %s).", batch_id, batch.processing_status)
        else:
            log.info("Batch %s is %s; nothing to cancel.", batch_id, batch.processing_status)
        states.append(batch)
    return states
