"""``BatchTrigger``: waits in the triggerer until every batch of a group has ended, reading only.

It only ever calls ``retrieve`` (no side effects, so running twice or being rebuilt after a triggerer restart
is harmless), all of it async on the loop's shared HTTP pool. Polls are jittered so triggers started together
spread out. Transient failures back off and use up a budget of consecutive failures; throttling backs off
without using it; an answer that will not change ends the wait at once. The deadline is an absolute epoch
time carried in the kwargs, so a restart does not reset it. Cancelling on timeout is the operator's call (in
the worker); the trigger cancels only in :meth:`BatchTrigger.on_kill`, and only with ``cancel_on_kill``.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_batches.api import BatchServiceAsync
from airflow_batches.batch_ref import normalize_batch_ids
from airflow_batches.hooks.batch import BatchHook
from airflow_batches.outcome import format_counts
from airflow_batches.triggers.events import (
    BatchSnapshot,
    EventReason,
    EventStatus,
    batch_snapshot,
    make_event,
)
from airflow_batches.triggers.polling import PollFailure, retrieve_each

__all__ = ["DEFAULT_MAX_POLL_ERRORS", "BatchTrigger", "validate_max_poll_errors"]

DEFAULT_MAX_POLL_ERRORS = 10


def validate_max_poll_errors(value: object) -> int:
    """``value`` if it is a whole number >= 1; operators call it too, so a bad value fails the parse."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_poll_errors must be an integer >= 1, got {value!r}")
    return value


# Module-level so tests can run the trigger on a fake clock.
_now = time.time
_sleep = asyncio.sleep

_JITTER = 0.1
# Backoff after failures grows from poll_interval up to this (or poll_interval, if larger).
_MAX_BACKOFF_SECONDS = 600.0
# on_kill runs under the triggerer's own bound (30 s by default); stay well inside it.
_ON_KILL_TIMEOUT_SECONDS = 20.0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
        batch_id: Any,
        conn_id: str = BatchHook.default_conn_name,
        poll_interval: float = 30.0,
        deadline: float | datetime | None = None,
        cancel_on_kill: bool = False,
        max_poll_errors: int = DEFAULT_MAX_POLL_ERRORS,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.batch_ids = normalize_batch_ids(batch_id)
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, int | float)
            or not (math.isfinite(poll_interval) and poll_interval > 0)
        ):
            raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}")
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
        self._latest: dict[str, BatchSnapshot] = {}

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

    def _event(self, status: EventStatus, reason: EventReason, message: str) -> TriggerEvent:
        known = [self._latest[batch_id] for batch_id in self.batch_ids if batch_id in self._latest]
        event = make_event(status, reason, message, self.batch_ids, known)
        return TriggerEvent(dict(event))  # type: ignore[no-untyped-call]

    def _unfinished(self) -> list[str]:
        return [
            i
            for i in self.batch_ids
            if i not in self._latest or self._latest[i]["processing_status"] != "ended"
        ]

    def _delay(self, failures: int, throttled: int) -> float:
        streak = max(failures, throttled)
        base = self.poll_interval
        if streak:
            base = min(self.poll_interval * 2 ** (streak - 1), max(self.poll_interval, _MAX_BACKOFF_SECONDS))
        return base * random.uniform(1 - _JITTER, 1 + _JITTER)

    async def _poll(self, service: BatchServiceAsync) -> tuple[PollFailure | None, list[PollFailure], bool]:
        """Read every unfinished batch once, logging each state; returns (fatal, transient, throttled)."""
        pending = self._unfinished()
        transient: list[PollFailure] = []
        throttled = False
        for batch_id, result in zip(pending, await retrieve_each(service, pending), strict=True):
            if isinstance(result, PollFailure):
                if result.kind == "fatal":
                    return result, transient, throttled
                throttled |= result.kind == "throttled"
                if result.kind == "transient":
                    transient.append(result)
                continue
            snapshot = batch_snapshot(result)
            self._latest[batch_id] = snapshot
            self.log.info(
                "Batch %s is %s: %s",
                batch_id,
                snapshot["processing_status"],
                format_counts(snapshot["request_counts"]),
            )
        return None, transient, throttled

    async def run(self) -> AsyncGenerator[TriggerEvent, None]:
        try:
            service = await BatchHook(self.conn_id).aget_service()
        except Exception as exc:  # a missing or unusable connection is a configuration error, not transient
            yield self._event(
                "error", "invalid_request", f"connection {self.conn_id!r} cannot be used: {exc}"
            )
            return
        failures = throttled_streak = 0
        while True:
            fatal, transient, throttled = await self._poll(service)
            if fatal is not None and fatal.reason is not None:
                yield self._event("error", fatal.reason, fatal.message)
                return
            if not self._unfinished():
                yield self._event("success", "ended", f"all {len(self.batch_ids)} batch(es) ended")
                return
            failures = failures + 1 if transient else 0
            if failures >= self.max_poll_errors:
                yield self._event(
                    "error",
                    "errors_exhausted",
                    f"reading the batches failed {failures} polls in a row (last error: "
                    f"{transient[-1].message}). They were not cancelled and may still be running",
                )
                return
            throttled_streak = throttled_streak + 1 if throttled else 0
            now = _now()
            if self.deadline is not None and now >= self.deadline:
                yield self._event(
                    "timeout",
                    "deadline",
                    f"the deadline {_iso(self.deadline)} passed before every batch ended (still running: "
                    f"{', '.join(self._unfinished())}). They were not cancelled and keep running",
                )
                return
            delay = self._delay(failures, throttled_streak)
            if self.deadline is not None:
                delay = min(delay, max(0.0, self.deadline - now))
            for failure in transient:
                self.log.warning(
                    "Reading batch %s failed (%d of %d failed polls in a row allowed; next in %.1f s): %s",
                    failure.batch_id,
                    failures,
                    self.max_poll_errors,
                    delay,
                    failure.message,
                )
            if throttled:
                self.log.warning("Throttled by the API (429); next poll in %.1f s", delay)
            await _sleep(delay)

    # --- kill -------------------------------------------------------------------------------------------

    async def on_kill(self) -> None:
        """Cancel the unfinished batches when a user kills the task, if ``cancel_on_kill`` asks for it."""
        targets = self._unfinished()
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
