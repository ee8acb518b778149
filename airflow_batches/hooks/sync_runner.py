"""Run coroutines to completion from synchronous code (operators, sensors, the landing, the CLI).

:class:`PrivateLoop` is an event loop that is never installed as the thread's current loop, so it works in
a thread that has no loop and leaves a thread that has one untouched; several coroutines may run on it one
after the other (the landing keeps one HTTP pool open across its calls). :func:`run_sync` runs one
coroutine on a fresh private loop; called from a thread whose loop is running (a notebook, async code
calling the sync facade), it runs in a helper thread instead, because a running loop cannot be re-entered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["PrivateLoop", "run_sync"]

T = TypeVar("T")


class PrivateLoop:
    """An event loop owned by its caller; :meth:`run` runs one coroutine on it to completion."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()

    def run(self, make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Return the result of ``make_coro()``; exceptions propagate unchanged."""
        task = self._loop.create_task(make_coro())
        try:
            return self._loop.run_until_complete(task)
        finally:
            if not task.done():
                # Interrupted from outside the loop (Airflow's execution_timeout signal, a kill): cancel the
                # coroutine and let its cleanup (finally blocks, closing streams and clients) run on this loop
                # now, as asyncio.run does. The interruption itself propagates.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    self._loop.run_until_complete(task)

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
        finally:
            self._loop.close()

    def __enter__(self) -> PrivateLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_on_private_loop(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with PrivateLoop() as loop:
        return loop.run(make_coro)


def run_sync(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Return the result of ``make_coro()`` run on a private loop; exceptions propagate unchanged.

    Takes a factory rather than a coroutine so that no coroutine is created (and left un-awaited) on a path
    that does not run it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_on_private_loop(make_coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="airflow-batches") as pool:
        return pool.submit(_run_on_private_loop, make_coro).result()
