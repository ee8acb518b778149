"""Bridging the async API client to synchronous storage writes with bounded memory.

The results are read by ``BatchServiceAsync`` (httpx, async) and written through ``ObjectStoragePath``
(fsspec, sync; the S3 filesystem even refuses to be built inside a running event loop). So the landing runs
in the calling thread, and the async side runs on a private event loop in a helper thread
(:class:`LoopThread`). A reader task there groups lines into chunks of about ``chunk_bytes`` and hands them
over through a queue of ``depth`` chunks, so reading the network overlaps with checking and writing, and at
most ``depth + 1`` chunks are in memory whatever the size of the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["LoopThread", "iter_line_chunks"]

T = TypeVar("T")

_END = object()


class LoopThread:
    """An event loop running in a daemon thread; :meth:`run` executes a coroutine there and waits for it."""

    def __init__(self, name: str = "airflow-batches-results") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_line_chunks(
    runner: LoopThread,
    open_lines: Callable[[], AsyncIterator[bytes]],
    *,
    chunk_bytes: int = 1 << 20,
    depth: int = 4,
) -> Generator[list[bytes], None, None]:
    """Yield the lines of ``open_lines()`` in lists of about ``chunk_bytes``; errors surface here as raised.

    Closing the iterator early (an error in the consumer) cancels the reader and closes the HTTP stream.
    """
    queue: asyncio.Queue[Any] = runner.run(_make_queue(depth))

    async def read() -> None:
        try:
            chunk: list[bytes] = []
            size = 0
            lines = open_lines()
            try:
                async for line in lines:
                    chunk.append(line)
                    size += len(line)
                    if size >= chunk_bytes:
                        await queue.put(chunk)
                        chunk, size = [], 0
            finally:
                # Closes the HTTP response now, not whenever the generator is garbage-collected.
                aclose = getattr(lines, "aclose", None)
                if aclose is not None:
                    await aclose()
            if chunk:
                await queue.put(chunk)
            await queue.put(_END)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer thread, which raises it
            await queue.put(exc)

    task = runner.run(_start(read()))
    try:
        while True:
            item = runner.run(queue.get())
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        runner.run(_cancel(task))


async def _make_queue(depth: int) -> asyncio.Queue[Any]:
    return asyncio.Queue(maxsize=depth)


async def _start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Stop the reader and wait until it has closed the HTTP stream."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
