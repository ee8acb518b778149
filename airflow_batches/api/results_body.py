"""Reading a streamed results body: its chunks and exact lines, async or sync, a broken connection reported as
``ResultsStreamError`` (never an httpx error: those carry the request's headers, key included)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator
from contextlib import aclosing, asynccontextmanager
from typing import cast

import httpx

from .errors import ResultsStreamError
from .jsonl import LineChunk, LineSplitter, aiter_lines_exact

__all__ = ["body_chunks", "chunks_sync", "lines_of"]


@asynccontextmanager
async def lines_of(response: httpx.Response, batch_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
    """The lines of a streamed results response (closing the response is the caller's job).

    Both generators are closed on exit: one left to the garbage collector is finalized as a task on the
    loop, which a consumer that stops early would see as "Task was destroyed but it is pending!".
    """
    request_id = response.headers.get("request-id")
    async with (
        aclosing(body_chunks(response, batch_id, request_id)) as chunks,
        aclosing(aiter_lines_exact(chunks, batch_id=batch_id, request_id=request_id)) as lines,
    ):
        yield lines


async def body_chunks(
    response: httpx.Response, batch_id: str, request_id: str | None
) -> AsyncGenerator[bytes]:
    """The decoded body, with a broken connection reported as ``ResultsStreamError``."""
    received = 0
    try:
        # httpx types aiter_bytes() as an iterator, but it is an async generator that must be closed too.
        async with aclosing(cast("AsyncGenerator[bytes]", response.aiter_bytes())) as body:
            async for chunk in body:
                received += len(chunk)
                yield chunk
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise _stream_broke(batch_id, received, exc, request_id) from None


def chunks_sync(response: httpx.Response, batch_id: str) -> Generator[LineChunk]:
    """``results_chunks`` over a response read synchronously; closes it."""
    request_id = response.headers.get("request-id")
    splitter = LineSplitter(batch_id=batch_id, request_id=request_id)
    received = 0
    try:
        try:
            for chunk in response.iter_bytes():
                received += len(chunk)
                yield LineChunk(chunk, splitter.feed(chunk))
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise _stream_broke(batch_id, received, exc, request_id) from None
        splitter.close()
    finally:
        response.close()


def _stream_broke(batch_id: str, received: int, exc: Exception, request_id: str | None) -> ResultsStreamError:
    # Raise it "from None": an httpx error carries the request, headers and key included.
    return ResultsStreamError(
        f"results stream of batch {batch_id} broke after {received:,} bytes ({type(exc).__name__}: "
        f"{exc or 'no details'}); fetch the results again from the start",
        batch_id=batch_id,
        request_id=request_id,
    )
