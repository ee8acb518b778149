"""Waiting for batches to end, in one place: settings, deadline, poll loop.

Everyone who waits uses this module, so they all poll, tolerate failures, back off and honour a deadline the
same way:

- ``BatchTrigger`` runs :class:`GroupWait` in the triggerer (deferrable waiting), with a shared list sweep
  (:mod:`airflow_batches.sweep`) serving its polls when many batches wait on the loop;
- the operators' blocking path runs that same trigger on a private loop in the worker (:func:`wait_blocking`)
  and reads its event with :func:`raise_for_event`;
- ``BatchSensor`` in poke mode reads once per poke with :func:`~airflow_batches.polling.retrieve_each`;
- the results landing (``wait=True``) runs :class:`GroupWait` on its own loop.

What a failed read means and the backoff after one are :mod:`airflow_batches.polling`'s: transient failures
count against ``max_poll_errors`` in a row, throttling does not, and an answer that will not change ends the
wait at once. The deadline is an absolute epoch time, so deferrals and restarts do not reset it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from airflow_batches.api import BatchServiceAsync
from airflow_batches.batch_ref import BatchSnapshot, aggregate_counts, format_counts, iso_z
from airflow_batches.checks import positive_number
from airflow_batches.errors import BatchWaitError
from airflow_batches.events import (
    BatchEvent,
    EventReason,
    EventStatus,
    event_exception,
    make_event,
    validate_event,
)
from airflow_batches.hooks.client_pool import aclose_shared_clients
from airflow_batches.hooks.sync_runner import run_sync
from airflow_batches.polling import PollFailure, classify_poll_error, poll_delay, retrieve_each

if TYPE_CHECKING:
    from airflow_batches.sweep import ListSweep
    from airflow_batches.triggers.batch import BatchTrigger

__all__ = [
    "DEFAULT_MAX_POLL_ERRORS",
    "GroupWait",
    "absolute_deadline",
    "deferral_timeout",
    "raise_for_event",
    "spread_start",
    "validate_max_poll_errors",
    "validate_wait_settings",
    "wait_blocking",
]

DEFAULT_MAX_POLL_ERRORS = 10

# Module-level so tests can wait on a fake clock.
_now = time.time
_sleep = asyncio.sleep

# The trigger fires its own timeout event at the deadline; Airflow's deferral timeout is only the backstop
# for a triggerer that is down, so it must not win the race against a poll in flight at the deadline.
_DEFERRAL_GRACE_SECONDS = 300.0
# The API expires whatever a batch has not processed 24 hours after its creation, and the batch then ends.
BATCH_LIFETIME_SECONDS = 24 * 3600.0


class TaskLogger(Protocol):
    """A logger: the trigger's own (Airflow's structured logger) or a ``logging.Logger``."""

    def debug(self, msg: str, /, *args: Any) -> Any: ...

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


# --- settings and the deadline ------------------------------------------------------------------------------


def validate_wait_settings(poll_interval: float, timeout: float | None) -> None:
    """Reject a bad ``poll_interval`` or ``timeout`` when the DAG is parsed, before anything is paid for."""
    positive_number("poll_interval", poll_interval)
    if timeout is not None:
        positive_number("timeout", timeout, none_means="no limit")


def validate_max_poll_errors(value: object) -> int:
    """``value`` if it is a whole number >= 1, so a bad value fails the parse."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_poll_errors must be an integer >= 1, got {value!r}")
    return value


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


# --- the poll loop ------------------------------------------------------------------------------------------


class GroupWait:
    """Poll a group of batches until every one has ended, the deadline passes, or reading fails for good.

    :meth:`wait` returns the trigger event (see :mod:`airflow_batches.events`); :attr:`latest`
    keeps the latest state of each batch read so far (its snapshot, as the event carries it),
    :meth:`unfinished` the ids not known to have ended.
    """

    def __init__(
        self,
        batch_ids: Sequence[str],
        *,
        poll_interval: float,
        deadline: float | None,
        max_poll_errors: int,
        log: TaskLogger,
    ) -> None:
        self.batch_ids = list(batch_ids)
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.max_poll_errors = max_poll_errors
        self.log = log
        self.latest: dict[str, BatchSnapshot] = {}

    def unfinished(self) -> list[str]:
        return [
            i
            for i in self.batch_ids
            if i not in self.latest or self.latest[i]["processing_status"] != "ended"
        ]

    def event(self, status: EventStatus, reason: EventReason, message: str) -> BatchEvent:
        known = [self.latest[i] for i in self.batch_ids if i in self.latest]
        return make_event(status, reason, message, self.batch_ids, known)

    async def _read(
        self, service: BatchServiceAsync, sweep: ListSweep | None, pending: list[str]
    ) -> list[BatchSnapshot | PollFailure | None]:
        """Each pending batch's state, or why it could not be read, or ``None``: not read this time (the
        sweep's round did not cover a batch joined while it ran, or the deadline came first)."""
        if sweep is None:
            return list(await retrieve_each(service, pending))
        remaining = None if self.deadline is None else max(0.0, self.deadline - _now())
        try:
            async with asyncio.timeout(remaining):
                results = await sweep.next_round(service)
        except TimeoutError:
            return [None] * len(pending)
        except Exception as exc:  # the sweep failed as a whole: a failed read of each, classified
            return [classify_poll_error(batch_id, exc) for batch_id in pending]
        return [results.get(batch_id) for batch_id in pending]

    async def _poll(
        self, service: BatchServiceAsync, sweep: ListSweep | None
    ) -> tuple[PollFailure | None, list[PollFailure], bool]:
        """Read every unfinished batch once and log it; returns (fatal, transient, throttled)."""
        pending = self.unfinished()
        transient: list[PollFailure] = []
        throttled = False
        for batch_id, result in zip(pending, await self._read(service, sweep, pending), strict=True):
            if result is None:
                continue
            if isinstance(result, PollFailure):
                if result.kind == "fatal":
                    return result, transient, throttled
                throttled |= result.kind == "throttled"
                if result.kind == "transient":
                    transient.append(result)
                continue
            self._keep(batch_id, result)
        if len(self.batch_ids) > 1:
            self._log_summary()
        return None, transient, throttled

    def _keep(self, batch_id: str, now: BatchSnapshot) -> None:
        """Keep and log a batch's state: at INFO when it changed, at DEBUG on every other poll (thousands of
        waits on one triggerer would otherwise write a line per batch per poll). An unchanged state keeps
        the object already held, so that polls do not keep replacing long-lived objects (each replacement
        brings the triggerer's next full garbage collection, a pause of the whole loop, nearer)."""
        before = self.latest.get(batch_id)
        if before == now:
            self.log.debug("Batch %s is unchanged: %s", batch_id, now["processing_status"])
            return
        status, counts = now["processing_status"], now["request_counts"]
        changed = (
            before is None or before["processing_status"] != status or before["request_counts"] != counts
        )
        log = self.log.info if changed else self.log.debug
        log("Batch %s is %s: %s", batch_id, status, format_counts(counts))
        self.latest[batch_id] = now

    def _log_summary(self) -> None:
        """One line per poll of a group: how many batches are in each state, and the summed counts."""
        known = [self.latest[i] for i in self.batch_ids if i in self.latest]
        states: dict[str, int] = {}
        for batch in known:
            states[batch["processing_status"]] = states.get(batch["processing_status"], 0) + 1
        if len(known) < len(self.batch_ids):
            states["not read yet"] = len(self.batch_ids) - len(known)
        self.log.info(
            "Group of %d batches: %s; %s",
            len(self.batch_ids),
            ", ".join(f"{count} {state}" for state, count in states.items()),
            format_counts(aggregate_counts(known)),
        )

    async def wait(self, service: BatchServiceAsync, sweep: ListSweep | None = None) -> BatchEvent:
        """Poll until an event; with ``sweep``, its rounds serve the polls whenever it is active."""
        if sweep is None:
            return await self._wait(service, None)
        joined = set(self.unfinished())
        sweep.join(joined)
        try:
            return await self._wait(service, sweep, joined)
        finally:
            sweep.leave(joined)

    def _leave_ended(self, sweep: ListSweep, joined: set[str]) -> None:
        ended = joined.difference(self.unfinished())
        sweep.leave(ended)
        joined -= ended

    async def _wait(
        self, service: BatchServiceAsync, sweep: ListSweep | None, joined: set[str] | None = None
    ) -> BatchEvent:
        failures = throttled_streak = 0
        while True:
            shared = sweep if sweep is not None and sweep.active else None
            fatal, transient, throttled = await self._poll(service, shared)
            if sweep is not None and joined is not None:
                self._leave_ended(sweep, joined)
            if fatal is not None and fatal.reason is not None:
                return self.event("error", fatal.reason, fatal.message)
            if not self.unfinished():
                return self.event("success", "ended", f"all {len(self.batch_ids)} batch(es) ended")
            failures = failures + 1 if transient else 0
            if failures >= self.max_poll_errors:
                return self.event(
                    "error",
                    "errors_exhausted",
                    f"reading the batches failed {failures} polls in a row (last error: "
                    f"{transient[-1].message}). They were not cancelled and may still be running",
                )
            throttled_streak = throttled_streak + 1 if throttled else 0
            now = _now()
            if self.deadline is not None and now >= self.deadline:
                return self.event(
                    "timeout",
                    "deadline",
                    f"the deadline {iso_z(self.deadline)} passed before every batch ended (still running: "
                    f"{', '.join(self.unfinished())}). They were not cancelled and keep running",
                )
            # A sweep's rounds pace its waits (and back off after failures) themselves.
            delay = 0.0 if shared else poll_delay(self.poll_interval, max(failures, throttled_streak))
            if self.deadline is not None:
                delay = min(delay, max(0.0, self.deadline - now))
            after = "at the shared list sweep's next round" if shared else f"in {delay:.1f} s"
            for failure in transient:
                self.log.warning(
                    "Reading batch %s failed (%d of %d failed polls in a row allowed; next %s): %s",
                    failure.batch_id,
                    failures,
                    self.max_poll_errors,
                    after,
                    failure.message,
                )
            if throttled:
                self.log.warning("Throttled by the API (429); next poll %s", after)
            if not shared:
                await _sleep(delay)


async def spread_start(poll_interval: float, deadline: float | None) -> None:
    """Wait a random part of one poll interval (not past the deadline) before a trigger's first poll.

    A triggerer starts thousands of triggers at once (its own start, adopting a dead triggerer's triggers, a
    mapped task deferring): spread over the interval, their connection lookups and first polls come at the
    steady rate instead of as one burst. It costs no detection time: a batch ending later is seen at the next
    poll either way, and the operator read the state just before deferring.
    """
    delay = random.uniform(0, poll_interval)
    if deadline is not None:
        delay = min(delay, max(0.0, deadline - _now()))
    await _sleep(delay)


# --- waiting from an operator -------------------------------------------------------------------------------


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
