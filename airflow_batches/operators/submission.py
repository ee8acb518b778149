"""Creating one round's batches under its create ledger: reuse what an earlier try made, create the rest.

Each part's send time is recorded before ``create`` and its id right after, so a retry after any crash finds
the batch instead of paying for it twice (``airflow_batches.reattach``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_batches.api.errors import AmbiguousCreateError, NotFoundError
from airflow_batches.errors import BatchCreateAmbiguousError

if TYPE_CHECKING:
    from airflow_batches.api.spool import SpooledBatch
    from airflow_batches.hooks.batch import BatchHook
    from airflow_batches.reattach import CreateLedger
    from airflow_batches.waiting import TaskLogger

__all__ = ["create_parts"]


def create_parts(
    hook: BatchHook, ledger: CreateLedger, spooled: list[SpooledBatch], log: TaskLogger
) -> list[str]:
    """The batch id of every spooled part, in order: the ledger's where still usable, else a new batch."""
    return [_create_part(hook, ledger, index, part, log) for index, part in enumerate(spooled)]


def _create_part(
    hook: BatchHook, ledger: CreateLedger, index: int, part: SpooledBatch, log: TaskLogger
) -> str:
    known = ledger.batch_id(index)
    if known and _reusable(hook, known, log):
        return known
    ledger.mark_started(index)
    try:
        batch = hook.create(part)
    except AmbiguousCreateError as exc:
        raise BatchCreateAmbiguousError(
            f"{exc}\nBatch {index + 1} of {len(ledger.parts)} ({part.request_count} requests, "
            f"custom_ids {part.first_custom_id} .. {part.last_custom_id}) may exist without this task "
            "knowing its id, "
            "so the task fails instead of retrying. Look for it in the batch list; cancel it and clear "
            "this task to submit again (batches already recorded are reused)."
        ) from None
    ledger.record(index, batch.id)
    log.info(
        "Created batch %s (%d of %d, %d requests, %s .. %s).",
        batch.id,
        index + 1,
        len(ledger.parts),
        part.request_count,
        part.first_custom_id,
        part.last_custom_id,
    )
    return batch.id


def _reusable(hook: BatchHook, batch_id: str, log: TaskLogger) -> bool:
    """An earlier try's batch is reattached unless it was cancelled or deleted since.

    A cancelled batch means someone stopped this work on purpose (cancel_on_kill, a user); the task being
    run again after that is a request to do the work, not to collect a cancelled batch.
    """
    try:
        batch = hook.retrieve(batch_id)
    except NotFoundError:
        log.warning("Batch %s of an earlier try no longer exists; creating its part again.", batch_id)
        return False
    if batch.cancel_initiated_at is not None:
        log.warning(
            "Batch %s of an earlier try was cancelled at %s; creating its part again.",
            batch_id,
            batch.cancel_initiated_at.isoformat(),
        )
        return False
    return True
