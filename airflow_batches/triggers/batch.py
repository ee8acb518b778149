"""``BatchTrigger``: waits in the triggerer until every batch of a group has ended, reading only.

It only ever reads (``retrieve``, or list pages when many batches wait on the loop: see
:mod:`airflow_batches.sweep`; no side effects, so running twice or being rebuilt after a triggerer restart is
harmless), all of it async on the loop's shared HTTP pool. In a triggerer the first poll comes at a random
point of the first interval and later ones are jittered, so triggers started together spread out. A batch's
state is logged when it changes (every poll at DEBUG), a group's summary once per poll. Transient failures
back off and use up a budget of consecutive failures; throttling backs off without using it; an answer that
will not change ends the wait at once. The deadline is an absolute epoch time carried in the kwargs, so a
restart does not reset it. Cancelling on timeout is the operator's call (in
the worker); the trigger cancels only in :meth:`BatchTrigger.on_kill`, and only with ``cancel_on_kill``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_batches.batch_ref import BatchRef, normalize_batch_ids
from airflow_batches.checks import positive_number
from airflow_batches.hooks.batch import BatchHook
from airflow_batches.sweep import shared_sweep
from airflow_batches.waiting import (
    DEFAULT_MAX_POLL_ERRORS,
    GroupWait,
    spread_start,
    validate_max_poll_errors,
)

__all__ = ["BatchTrigger"]

# on_kill runs under the triggerer's own bound (30 s by default); stay well inside it.
_ON_KILL_TIMEOUT_SECONDS = 20.0


class BatchTrigger(BaseTrigger):
    """Fire one event when every batch has ended, the deadline passes, or reading them fails for good.

    :param batch_id: a batch id, a list of ids, or ``BatchCreateOperator``'s return value.
    :param conn_id: the Anthropic connection.
    :param poll_interval: seconds between polls (each one jittered by +-10%).
    :param deadline: absolute epoch seconds after which a ``timeout`` event fires; ``None`` waits for ever.
    :param cancel_on_kill: cancel the unfinished batches when a user kills the deferred task (mark
        failed/success, clear). Never on timeout, errors, triggerer restarts or in ``cleanup()``.
    :param max_poll_errors: consecutive polls failing with transient errors before giving up
        (throttling does not count).
    """

    def __init__(
        self,
        batch_id: BatchRef,
        conn_id: str = BatchHook.default_conn_name,
        poll_interval: float = 30.0,
        deadline: float | datetime | None = None,
        cancel_on_kill: bool = False,
        max_poll_errors: int = DEFAULT_MAX_POLL_ERRORS,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.batch_ids = normalize_batch_ids(batch_id)
        positive_number("poll_interval", poll_interval)
        if isinstance(deadline, datetime):
            if deadline.tzinfo is None:
                raise ValueError("deadline must be timezone-aware (or epoch seconds), got a naive datetime")
            deadline = deadline.timestamp()
        if deadline is not None and (
            isinstance(deadline, bool) or not isinstance(deadline, int | float) or not math.isfinite(deadline)
        ):
            raise ValueError(
                f"deadline must be epoch seconds, a timezone-aware datetime or None, got {deadline!r}"
            )
        validate_max_poll_errors(max_poll_errors)
        self.conn_id = conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = None if deadline is None else float(deadline)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.max_poll_errors = max_poll_errors
        # Latest known state per batch; lives only as long as this instance (never serialized).
        self._wait = GroupWait(
            self.batch_ids,
            poll_interval=self.poll_interval,
            deadline=self.deadline,
            max_poll_errors=max_poll_errors,
            log=self.log,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_batches.triggers.batch.BatchTrigger",
            {
                "batch_id": list(self.batch_ids),
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "max_poll_errors": self.max_poll_errors,
            },
        )

    # --- waiting ----------------------------------------------------------------------------------------

    async def run(self) -> AsyncGenerator[TriggerEvent, None]:
        if self.trigger_id is not None:  # run by a triggerer (it sets the id), which starts many at once
            await spread_start(self.poll_interval, self.deadline)
        hook = BatchHook(self.conn_id)
        try:
            service = await hook.aget_service()
            pool_key = (await hook.aget_settings()).pool_key()  # read with the service: no second lookup
        except Exception as exc:  # a missing or unusable connection is a configuration error, not transient
            event = self._wait.event(
                "error", "invalid_request", f"connection {self.conn_id!r} cannot be used: {exc}"
            )
        else:
            sweep = shared_sweep(f"{self.conn_id} {pool_key}", self.poll_interval)
            event = await self._wait.wait(service, sweep)
        yield TriggerEvent(dict(event))  # type: ignore[no-untyped-call]

    # --- kill -------------------------------------------------------------------------------------------

    async def on_kill(self) -> None:
        """Cancel the unfinished batches when a user kills the task, if ``cancel_on_kill`` asks for it."""
        targets = self._wait.unfinished()
        if not self.cancel_on_kill:
            self.log.info("Task killed; batches %s keep running (cancel_on_kill=False)", ", ".join(targets))
            return
        try:
            service = await BatchHook(self.conn_id).aget_service()
        except Exception as exc:  # on_kill must not fail the kill; say why nothing was cancelled
            self.log.warning(
                "Could not cancel batches %s: connection %r cannot be used: %s",
                ", ".join(targets),
                self.conn_id,
                exc,
            )
            return

        async def cancel(batch_id: str) -> None:
            try:
                batch = await service.cancel(batch_id)
            except Exception as exc:  # one batch failing to cancel must not stop the others
                self.log.warning("Could not cancel batch %s: %s", batch_id, exc)
            else:
                self.log.info("Cancel requested for batch %s (now %s)", batch_id, batch.processing_status)

        try:
            async with asyncio.timeout(_ON_KILL_TIMEOUT_SECONDS):
                await asyncio.gather(*(cancel(batch_id) for batch_id in targets))
        except TimeoutError:
            self.log.warning("Cancelling batches %s did not finish in time", ", ".join(targets))
