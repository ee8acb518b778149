"""Receiving one batch's results: read and checked on the landing thread, written behind.

The body is read with ``BatchServiceAsync.results_chunks_sync`` (synchronously, through ``http.client``
unless a transport or proxy is set: a fraction of the CPU per byte of the async stack), or, when the service
cannot, with ``results_chunks`` on the landing's :class:`~airflow_batches.hooks.sync_runner.PrivateLoop`.
Each chunk comes with the lines it completes; :class:`ResultsReceiver` checks those lines on the landing
thread and hands the bytes, as received, to a :class:`~airflow_batches.results.writer.WriteBehind` worker in
blocks of about ``block_bytes``, which hashes, compresses and stores them. At most a few blocks are in memory
whatever the size of the results.

Why the reading is not on a thread of its own: reading, splitting and checking all need the GIL, so two
threads would mostly take turns; only the hashing, compressing and storing release it, and those are what
the worker takes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import aclosing, closing
from typing import Protocol

from airflow_batches.api.jsonl import Line, LineChunk, size_of_lines
from airflow_batches.api.models import MessageBatch
from airflow_batches.hooks.sync_runner import PrivateLoop
from airflow_batches.results.checker import ResultChecker
from airflow_batches.results.sink import AtomicObject
from airflow_batches.results.writer import WriteBehind

__all__ = ["ChunkSource", "ResultsReceiver", "for_each_chunk", "receive_results"]


class ChunkSource(Protocol):
    """What receiving needs of ``BatchServiceAsync``."""

    def results_chunks(
        self, batch_id: str, *, batch: MessageBatch | None = None
    ) -> AsyncGenerator[LineChunk]: ...

    def results_chunks_sync(self, batch: MessageBatch) -> Generator[LineChunk] | None: ...


class ResultsReceiver:
    """Checks the lines of each chunk and queues its bytes for the object(s) they belong in.

    ``objects`` is ``{None: obj}`` for one file per batch, or one object per result type (``split_by_type``);
    a line of a type without an object is checked and counted but written nowhere (``verify_counts`` then
    reports it).
    """

    def __init__(
        self,
        checker: ResultChecker,
        objects: dict[str | None, AtomicObject],
        writer: WriteBehind,
        *,
        block_bytes: int,
        on_progress: Callable[[int, int], None],
    ) -> None:
        self._check_lines = checker.check_lines
        self._count_lines = checker.count_lines
        self._single = objects.get(None)
        self._objects = objects
        self._writer = writer
        self._block_bytes = block_bytes
        self._on_progress = on_progress
        # Per object: the pieces not yet handed to the writer, their size and the lines they complete.
        self._queued: dict[str | None, tuple[list[bytes], int, int]] = {}

    def feed(self, chunk: LineChunk) -> None:
        lines = chunk.lines
        size = len(chunk.data)
        all_utf8 = chunk.is_utf8()
        # Checked and reported in groups of about block_bytes even when a transport hands over a whole
        # body at once (an in-memory one), so progress stays regular.
        step = max(1, len(lines) if size <= self._block_bytes else len(lines) * self._block_bytes // size)
        for start in range(0, len(lines), step):
            group = lines if step >= len(lines) else lines[start : start + step]
            if self._single is not None:
                self._count_lines(group, all_utf8=all_utf8)
            else:
                self._split(group, all_utf8)
            self._on_progress(len(group), size_of_lines(group))
        if self._single is not None:
            self._queue(None, chunk.data, len(lines))

    def _split(self, lines: list[Line], all_utf8: bool) -> None:
        groups: dict[str, list[Line]] = {}
        for line, result_type in zip(lines, self._check_lines(lines, all_utf8=all_utf8), strict=True):
            group = groups.get(result_type)
            if group is None:
                groups[result_type] = [line]
            else:
                group.append(line)
        for result_type, typed in groups.items():
            if result_type in self._objects:
                typed.append(b"")  # joined with b"\n": each line gets its newline back
                self._queue(result_type, b"\n".join(typed), len(typed) - 1)

    def finish(self) -> None:
        """Hand over what is queued and wait until every write is done; raise a failed write."""
        for key in list(self._queued):
            self._flush(key)
        self._writer.drain()

    def _queue(self, key: str | None, data: bytes, lines: int) -> None:
        pieces, size, count = self._queued.get(key) or ([], 0, 0)
        pieces.append(data)
        self._queued[key] = (pieces, size + len(data), count + lines)
        if size + len(data) >= self._block_bytes:
            self._flush(key)

    def _flush(self, key: str | None) -> None:
        pieces, _, lines = self._queued.pop(key)
        obj = self._objects[key]
        self._writer.submit(lambda: obj.write(b"".join(pieces), lines))


def receive_results(
    loop: PrivateLoop, service: ChunkSource, batch: MessageBatch, receiver: ResultsReceiver
) -> None:
    """Feed every chunk of ``batch``'s results to ``receiver`` and wait until all is written."""
    for_each_chunk(loop, service, batch, receiver.feed)
    receiver.finish()


def for_each_chunk(
    loop: PrivateLoop, service: ChunkSource, batch: MessageBatch, consume: Callable[[LineChunk], None]
) -> None:
    """Call ``consume`` with every chunk of ``batch``'s results, read synchronously when the service can,
    else on ``loop``; the stream is closed at once when ``consume`` raises."""
    chunks = service.results_chunks_sync(batch)
    if chunks is None:
        loop.run(lambda: _consume_async(service, batch, consume))
        return
    with closing(chunks):
        for chunk in chunks:
            consume(chunk)


async def _consume_async(
    service: ChunkSource, batch: MessageBatch, consume: Callable[[LineChunk], None]
) -> None:
    async with aclosing(service.results_chunks(batch.id, batch=batch)) as chunks:
        async for chunk in chunks:
            consume(chunk)
