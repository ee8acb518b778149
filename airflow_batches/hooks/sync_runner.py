"""Run a coroutine to completion from synchronous code (operators, sensors, the CLI).

Each call gets a private event loop that is never installed as the thread's current loop, so it works in a
thread that has no loop and leaves a thread that has one untouched. Called from a thread whose loop is
running (a notebook, async code calling the sync facade), it runs in a helper thread instead, because a
running loop cannot be re-entered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def _run_on_private_loop(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(make_coro())
        try:
            return loop.run_until_complete(task)
        finally:
            if not task.done():
                # Interrupted from outside the loop (Airflow's execution_timeout signal, a kill): cancel the
                # coroutine and let its cleanup (finally blocks, closing shared clients) run on this loop
                # before it closes, as asyncio.run does. The interruption itself propagates.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    loop.run_until_complete(task)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


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
