"""Many waits read through shared list pages: one sweep per (event loop, connection, poll interval).

Retrieving each batch costs one API call per batch per poll: 10,000 batches polled every 60 s are 167 calls
a second, each about a millisecond of the triggerer's CPU, and every one counts against the API's rate limit.
The list endpoint returns up to 1,000 batches, newest first, in one call. So once at least
:data:`SWEEP_MIN` batches wait on one loop with the same connection and poll interval, their waits stop
polling one by one and take each round of a shared :class:`ListSweep` instead. A round walks the list newest
first until it has seen every batch waited for, or until the pages stop paying for themselves (on average
fewer than :data:`PAGE_WORTH` wanted batches a page); what it has not seen by then (old batches behind many
newer ones) it retrieves one by one. Rounds start once per poll interval (jittered like a poll), back off as a
poll does when the API throttles or fails, and wake their waiters a slice at a time so that thousands of
them never hold the loop in one turn.

Failures reach each wait as a poll's would (:class:`~airflow_batches.waiting.PollFailure` per batch): a list
call throttled or failing transiently fails the batches not yet seen; a rejected key or permission is fatal
to every wait; any other refusal of the list call (a gateway without it, say) falls back to retrieving.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence

from airflow_batches.api import BatchServiceAsync
from airflow_batches.batch_ref import BatchSnapshot, batch_snapshot
from airflow_batches.polling import PollFailure, classify_poll_error, poll_delay, retrieve_each

__all__ = ["PAGE_WORTH", "SWEEP_MIN", "ListSweep", "RoundResults", "shared_sweep"]

SWEEP_MIN = 100
PAGE_SIZE = 1000
PAGE_WORTH = 10
# Leftovers are few by construction (PAGE_WORTH); the admission limiter bounds the connections anyway.
_LEFTOVER_CONCURRENCY = 32
# Waiters woken per loop turn: each one's work (state logs, maybe its event) stays well under the
# triggerer's 0.2 s blocked-loop warning even for the largest slice.
_WAKE_SLICE = 200

# Module-level so tests can run rounds on a fake clock.
_clock = time.monotonic
_sleep = asyncio.sleep

RoundResults = dict[str, BatchSnapshot | PollFailure]
"""One round: the state (or why it could not be read) of every batch the round covered."""

_SWEEPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, float], ListSweep]] = (
    weakref.WeakKeyDictionary()
)


def shared_sweep(key: str, poll_interval: float) -> ListSweep:
    """The running loop's sweep for ``key`` (a connection, never a secret) and ``poll_interval``."""
    sweeps = _SWEEPS.setdefault(asyncio.get_running_loop(), {})
    sweep = sweeps.get((key, poll_interval))
    if sweep is None:
        sweep = sweeps[(key, poll_interval)] = ListSweep(poll_interval)
    return sweep


class ListSweep:
    """Rounds of list pages serving every wait that joined it (see the module docstring)."""

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval
        self._wanted: Counter[str] = Counter()
        self._waiters: list[asyncio.Future[RoundResults]] = []
        self._waiter_arrived = asyncio.Event()
        self._service: BatchServiceAsync | None = None
        self._task: asyncio.Task[None] | None = None
        # The latest state of each wanted batch: a round hands these objects on when nothing changed.
        self._known: dict[str, BatchSnapshot] = {}

    @property
    def active(self) -> bool:
        """Whether enough batches wait for rounds to be cheaper than retrieving each."""
        return len(self._wanted) >= SWEEP_MIN

    def join(self, batch_ids: Iterable[str]) -> None:
        self._wanted.update(batch_ids)

    def leave(self, batch_ids: Iterable[str]) -> None:
        for batch_id in batch_ids:
            self._wanted[batch_id] -= 1
            if self._wanted[batch_id] <= 0:
                del self._wanted[batch_id]
                self._known.pop(batch_id, None)
        if not self._wanted and self._task is not None:
            self._task.cancel()  # nobody waits: do not keep a loop (maybe a private one) busy for a round

    async def next_round(self, service: BatchServiceAsync) -> RoundResults:
        """Wait for the next round and return it (it covers every joined batch, unless joined meanwhile)."""
        self._service = service
        waiter: asyncio.Future[RoundResults] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._waiter_arrived.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="airflow_batches list sweep")
        return await waiter

    async def _run(self) -> None:
        try:
            await self._rounds()
        except Exception as exc:  # a bug here must fail the waits' reads, never leave them waiting for ever
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            raise

    async def _rounds(self) -> None:
        streak = 0
        while self._wanted:
            if not self._waiters:
                self._waiter_arrived.clear()
                await self._waiter_arrived.wait()
                continue
            service = self._service
            assert service is not None  # set by next_round before this task starts
            started = _clock()
            results, failed = await sweep_once(service, list(self._wanted), self._known)
            waiters, self._waiters = self._waiters, []
            for start in range(0, len(waiters), _WAKE_SLICE):
                for waiter in waiters[start : start + _WAKE_SLICE]:
                    if not waiter.done():  # a waiter cancelled meanwhile (its trigger was)
                        waiter.set_result(results)
                await asyncio.sleep(0)
            streak = streak + 1 if failed else 0
            # Start to start: a round of many pages must not stretch the interval (and detection).
            await _sleep(max(0.0, poll_delay(self.poll_interval, streak) - (_clock() - started)))


async def sweep_once(
    service: BatchServiceAsync, wanted: Sequence[str], known: dict[str, BatchSnapshot] | None = None
) -> tuple[RoundResults, bool]:
    """Read ``wanted`` through list pages (then retrieves); returns the results and whether a call failed.

    A batch's state is its snapshot (what a wait keeps and its event carries), not the page's model: a
    third of the memory, one object for the garbage collector instead of five. ``known`` (updated here)
    holds the latest state of each batch: a batch read unchanged is answered with the snapshot already
    held, so a round's own copies are freed page by page instead of all living until the round ends, and
    nothing long-lived is replaced without a change.
    """
    known = {} if known is None else known

    def latest(batch_id: str, snapshot: BatchSnapshot) -> BatchSnapshot:
        held = known.get(batch_id)
        known[batch_id] = held if held == snapshot else snapshot
        return known[batch_id]

    targets = set(wanted)
    found: RoundResults = {}
    budget = max(1, len(targets) // PAGE_WORTH)
    after_id: str | None = None
    for _ in range(budget):
        try:
            page = await service.list_page(limit=PAGE_SIZE, after_id=after_id)
        except Exception as exc:  # classified: every failure reaches the waits as a failed poll
            failure = classify_poll_error("(list)", exc)
            if failure.kind == "fatal" and failure.reason not in ("auth", "permission"):
                break  # the list call itself is refused here: retrieving each may still work
            for batch_id in targets.difference(found):
                found[batch_id] = PollFailure(batch_id, failure.kind, failure.reason, failure.message)
            return found, True
        for batch in page.data:
            if batch.id in targets:
                found[batch.id] = latest(batch.id, batch_snapshot(batch))
        if len(found) == len(targets) or not page.has_more or page.last_id is None:
            break
        after_id = page.last_id
    missing = [batch_id for batch_id in wanted if batch_id not in found]
    failed = False
    if missing:
        for batch_id, result in zip(
            missing, await retrieve_each(service, missing, concurrency=_LEFTOVER_CONCURRENCY), strict=True
        ):
            if isinstance(result, PollFailure):
                found[batch_id] = result
                failed |= result.kind != "fatal"
            else:
                found[batch_id] = latest(batch_id, result)
    return found, failed
