"""Admission control in front of httpx connection pools: never more requests in flight than connections.

httpcore (1.0.x) scans every connection of a pool on each send and each release (and for every idle one asks
the socket whether the server closed it), and every queued request too (encode/httpcore#1035), so the work per
request grows with the pool's size and with its queue; a pool with fewer keep-alive slots than connections
can also close a connection it has just handed to a queued request, which then hangs until the read timeout
(encode/httpcore#1110). So:

- requests wait here, on one semaphore per client (constant work each), and enter a pool only when one of its
  connections is free: httpcore's queue stays empty;
- the connections are split over several small pools (``pool_size`` each, every one kept alive), and each
  request goes to the pool with the fewest requests in flight: the scan per request is ``pool_size`` long,
  whatever the total.

A slot is held from the send until the response is closed (body read, stream closed, or the request failed),
exactly as long as the connection is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["AdmissionTransport"]


class AdmissionTransport(httpx.AsyncBaseTransport):
    """At most ``pools * pool_size`` requests in flight, at most ``pool_size`` in each pool; the others wait
    their turn (first come, first served).

    :param make_pool: builds one pool transport of ``pool_size`` connections (every one kept alive).
    """

    def __init__(
        self, make_pool: Callable[[int], httpx.AsyncBaseTransport], *, pools: int, pool_size: int
    ) -> None:
        if pools < 1 or pool_size < 1:
            raise ValueError(f"pools and pool_size must be >= 1, got {pools} and {pool_size}")
        self._pools = [make_pool(pool_size) for _ in range(pools)]
        self._in_flight = [0] * pools
        self._slots = asyncio.Semaphore(pools * pool_size)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._slots.acquire()
        # The semaphore guarantees a free connection somewhere; the least busy pool has one.
        index = min(range(len(self._pools)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._release(index)
            raise
        response.stream = _ReleasingStream(response.stream, lambda: self._release(index))
        return response

    def _release(self, index: int) -> None:
        self._in_flight[index] -= 1
        self._slots.release()

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it (httpx does, once read or on error) gives the slot back, once."""

    def __init__(
        self, inner: httpx.AsyncByteStream | httpx.SyncByteStream, release: Callable[[], None]
    ) -> None:
        if not isinstance(inner, httpx.AsyncByteStream):
            raise TypeError("an async transport must return an async response stream")
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            await self._inner.aclose()
        finally:
            if release is not None:
                release()
