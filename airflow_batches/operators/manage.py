"""``BatchCancelOperator`` and ``BatchDeleteOperator``: housekeeping on existing batches or batch groups.

Both take ``batch_id`` as a plain id, a list of ids, or ``BatchCreateOperator``'s return value, and wait
(in the triggerer when ``deferrable``) through the same ``BatchTrigger`` as the create operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator, conf

from airflow_batches.api.errors import NotFoundError
from airflow_batches.batch_ref import BatchGroup, BatchRef, group_of, normalize_batch_ids
from airflow_batches.errors import BatchMissingError, BatchRefError, BatchStillRunningError
from airflow_batches.hooks.batch import BatchHook
from airflow_batches.operators.cancelling import cancel_unfinished
from airflow_batches.triggers.batch import BatchTrigger
from airflow_batches.waiting import (
    absolute_deadline,
    deferral_timeout,
    raise_for_event,
    validate_wait_settings,
    wait_blocking,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["BatchCancelOperator", "BatchDeleteOperator"]


class _BatchWaitingOperator(BaseOperator):
    """What both operators share: the batch reference, the connection and how to wait."""

    template_fields: Sequence[str] = ("batch_id",)
    ui_color = "#e8c9b0"

    def __init__(
        self,
        *,
        batch_id: BatchRef,
        conn_id: str = "anthropic_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        validate_wait_settings(poll_interval, timeout)
        self.batch_id = batch_id
        self.conn_id = conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout

    @property
    def hook(self) -> BatchHook:
        return BatchHook(anthropic_conn_id=self.conn_id)

    def _batch_ids(self) -> list[str]:
        try:
            return normalize_batch_ids(self.batch_id)
        except BatchRefError as exc:
            raise AirflowFailException(f"{self.task_id}: batch_id is not usable: {exc}") from None

    def _wait_until_ended(
        self, batch_ids: list[str], method_name: str, kwargs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Wait for ``batch_ids`` to end: defer (resuming in ``method_name`` with ``kwargs``) or block."""
        trigger = BatchTrigger(
            batch_id=batch_ids,
            conn_id=self.conn_id,
            poll_interval=self.poll_interval,
            deadline=absolute_deadline(self.timeout),
        )
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name=method_name,
                kwargs=kwargs,
                timeout=deferral_timeout(trigger.deadline, self.poll_interval),
            )
        return wait_blocking(trigger)


class BatchCancelOperator(_BatchWaitingOperator):
    """Cancel batches that are still running; ended ones are left alone.

    :param batch_id: a batch id, a list of ids, or ``BatchCreateOperator``'s return value.
    :param wait_for_cancel: also wait until every batch has ended (``canceling`` is not the end).
    :param deferrable, poll_interval, timeout: how to wait when ``wait_for_cancel``.

    Returns ``{"batch_ids", "processing_status", "counts"}`` (usable as ``batch_id`` downstream).
    """

    def __init__(self, *, wait_for_cancel: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_for_cancel = wait_for_cancel

    def execute(self, context: Context) -> BatchGroup:
        batch_ids = self._batch_ids()
        try:
            summary = group_of(cancel_unfinished(self.hook, batch_ids))
        except NotFoundError as exc:
            raise BatchMissingError(f"{self.task_id}: cannot cancel, a batch does not exist: {exc}") from None
        if not self.wait_for_cancel or summary["processing_status"] == "ended":
            return summary
        return self.execute_complete(context, self._wait_until_ended(batch_ids, "execute_complete"))

    def execute_complete(self, context: Context, event: Any) -> BatchGroup:
        return group_of(raise_for_event(event)["batches"])


class BatchDeleteOperator(_BatchWaitingOperator):
    """Delete batches (the API deletes only ended batches).

    :param batch_id: a batch id, a list of ids, or ``BatchCreateOperator``'s return value.
    :param cancel_if_running: cancel batches that have not ended, wait until they have, then delete them;
        without it such a batch fails the task before anything is deleted.
    :param missing_ok: a batch that does not exist is skipped instead of failing the task.
    :param deferrable, poll_interval, timeout: how to wait for cancelled batches to end.

    Returns ``{"deleted": [ids], "missing": [ids]}``.
    """

    def __init__(self, *, cancel_if_running: bool = False, missing_ok: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cancel_if_running = cancel_if_running
        self.missing_ok = missing_ok

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.hook
        present, missing = [], []
        for batch_id in self._batch_ids():
            try:
                present.append(hook.retrieve(batch_id))
            except NotFoundError:
                missing.append(batch_id)
        self._check_missing(missing)
        running = [b for b in present if b.processing_status != "ended"]
        if running and not self.cancel_if_running:
            listed = ", ".join(f"{b.id} ({b.processing_status})" for b in running)
            raise BatchStillRunningError(
                f"{self.task_id}: cannot delete {listed}: only ended batches can be deleted. Wait for "
                "them to end, or set cancel_if_running=True to cancel them first. Nothing was deleted."
            )
        if running:
            cancel_unfinished(hook, [b.id for b in running])
            event = self._wait_until_ended(
                [b.id for b in present], "execute_complete", kwargs={"missing": missing}
            )
            return self.execute_complete(context, event, missing=missing)
        return self._delete([b.id for b in present], missing)

    def execute_complete(self, context: Context, event: Any, missing: Sequence[str] = ()) -> dict[str, Any]:
        checked = raise_for_event(event)
        return self._delete(list(checked["batch_ids"]), list(missing))

    def _check_missing(self, missing: Sequence[str]) -> None:
        if not missing:
            return
        if not self.missing_ok:
            raise BatchMissingError(
                f"{self.task_id}: batch(es) {', '.join(missing)} do not exist (never created, or already "
                "deleted). Set missing_ok=True to skip missing batches."
            )
        self.log.info("Batch(es) %s do not exist; skipped (missing_ok=True).", ", ".join(missing))

    def _delete(self, batch_ids: list[str], missing: list[str]) -> dict[str, Any]:
        hook = self.hook
        deleted, vanished = [], []
        for batch_id in batch_ids:
            try:
                hook.delete(batch_id)
            except NotFoundError:
                # Deleted by someone else between our read and our delete.
                vanished.append(batch_id)
                continue
            deleted.append(batch_id)
            self.log.info("Deleted batch %s.", batch_id)
        self._check_missing(vanished)
        return {"deleted": deleted, "missing": missing + vanished}
