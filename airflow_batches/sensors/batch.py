"""``BatchSensor``: wait until a batch (or every batch of a create operator's group) has ended.

Deferrable (the default follows ``[operators] default_deferrable``): the state is checked first, then the
wait moves to :class:`~airflow_batches.triggers.BatchTrigger` with an absolute deadline taken from the
sensor's ``timeout``. Poke / reschedule mode: each poke reads every batch; transient API errors are logged and
the poke simply says "not yet". Either way, once everything has ended the outcome policy
(:mod:`airflow_batches.outcome`) decides success, failure or skip, and the sensor returns
``{"batch_ids", "processing_status": "ended", "counts", "batches"}``, which downstream tasks accept as a batch
reference. Nothing is kept on ``self`` between pokes (reschedule mode builds a new instance each time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_batches.batch_ref import (
    BatchGroup,
    BatchRef,
    BatchSnapshot,
    format_counts,
    group_in,
    group_of,
    normalize_batch_ids,
)
from airflow_batches.checks import is_positive_number
from airflow_batches.errors import BatchAccessError
from airflow_batches.events import event_exception, validate_event
from airflow_batches.hooks.batch import BatchHook
from airflow_batches.outcome import OnAllCanceled, check_outcome, validate_policy
from airflow_batches.polling import PollFailure, retrieve_each
from airflow_batches.triggers.batch import BatchTrigger
from airflow_batches.waiting import (
    DEFAULT_MAX_POLL_ERRORS,
    absolute_deadline,
    deferral_timeout,
    validate_max_poll_errors,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = ["BatchSensor"]


class BatchSensor(BaseSensorOperator):
    """Wait for Message Batches to end, then apply the partial-failure policy.

    :param batch_id: a batch id, a list of ids, or ``BatchCreateOperator``'s return value (templated).
    :param conn_id: the Anthropic connection.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param max_failure_ratio: fail when more than this share of requests errored or expired (``None``: never
        for partial failures). See :mod:`airflow_batches.outcome`.
    :param on_all_canceled: ``"fail"``, ``"skip"`` or ``"succeed"`` when every request was canceled.
    :param max_poll_errors: consecutive failed polls the trigger tolerates (deferrable mode).
    """

    template_fields: Sequence[str] = ("batch_id",)
    ui_color = "#f4e4d7"

    def __init__(
        self,
        *,
        batch_id: BatchRef,
        conn_id: str = BatchHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_failure_ratio: float | None = None,
        on_all_canceled: OnAllCanceled = "fail",
        max_poll_errors: int = DEFAULT_MAX_POLL_ERRORS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        validate_policy(max_failure_ratio, on_all_canceled)
        validate_max_poll_errors(max_poll_errors)
        if deferrable and not is_positive_number(self.poke_interval):
            raise ValueError(
                "poke_interval must be more than 0 seconds in deferrable mode (it is the poll interval)"
            )
        self.batch_id = batch_id
        self.conn_id = conn_id
        self.deferrable = deferrable
        self.max_failure_ratio = max_failure_ratio
        self.on_all_canceled: OnAllCanceled = on_all_canceled
        self.max_poll_errors = max_poll_errors

    def _read(self, batch_ids: list[str]) -> list[BatchSnapshot] | None:
        """Every batch's state, or ``None`` when a transient error means "try again later"."""
        results = BatchHook(self.conn_id).run(lambda service: retrieve_each(service, batch_ids))
        snapshots: list[BatchSnapshot] = []
        retry_later = False
        for result in results:
            if isinstance(result, PollFailure):
                if result.kind == "fatal":
                    raise BatchAccessError(result.message)
                self.log.warning(
                    "Reading batch %s failed, trying again at the next poke: %s",
                    result.batch_id,
                    result.message,
                )
                retry_later = True
                continue
            self.log.info(
                "Batch %s is %s: %s",
                result["id"],
                result["processing_status"],
                format_counts(result["request_counts"]),
            )
            snapshots.append(result)
        return None if retry_later else snapshots

    def _finish(self, snapshots: list[BatchSnapshot]) -> BatchGroup:
        # A create operator's group with resubmit rounds: counted once per request, by its final result.
        given = group_in(self.batch_id)
        rounds = {"rounds": given["rounds"]} if given and given.get("rounds") else None
        group = group_of(snapshots, rounds, with_batches=True)
        check_outcome(
            group["counts"],
            max_failure_ratio=self.max_failure_ratio,
            on_all_canceled=self.on_all_canceled,
            batch_ids=group["batch_ids"],
        )
        return group

    def poke(self, context: Context) -> bool | PokeReturnValue:
        batch_ids = normalize_batch_ids(self.batch_id)
        snapshots = self._read(batch_ids)
        if snapshots is None or any(s["processing_status"] != "ended" for s in snapshots):
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(snapshots))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        batch_ids = normalize_batch_ids(self.batch_id)
        snapshots = self._read(batch_ids)
        if snapshots is not None and all(s["processing_status"] == "ended" for s in snapshots):
            return self._finish(snapshots)
        trigger = BatchTrigger(
            batch_id=batch_ids,
            conn_id=self.conn_id,
            poll_interval=self.poke_interval,
            deadline=absolute_deadline(self.timeout),
            max_poll_errors=self.max_poll_errors,
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=deferral_timeout(trigger.deadline, self.poke_interval),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> BatchGroup:
        checked = validate_event(event)
        if checked["status"] != "success":
            raise event_exception(checked)
        return self._finish(checked["batches"])
