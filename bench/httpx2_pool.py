"""Bench-only: our client on ``httpx2``'s connection pool (httpcore2) instead of httpx's (httpcore 1.0).

``httpx2`` is pydantic's fork of httpx that the official SDK 2.x uses; its pool has the bookkeeping fixes
httpcore 1.0 lacks. This adapter lets the benchmark measure that pool under our unchanged client: an
``httpx.AsyncBaseTransport`` that forwards each request to an ``httpx2.AsyncHTTPTransport``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import httpx2


class Httpx2Pool(httpx.AsyncBaseTransport):
    def __init__(self, connections: int) -> None:
        self._pool = httpx2.AsyncHTTPTransport(
            limits=httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        forwarded = httpx2.Request(
            request.method,
            str(request.url),
            headers=request.headers.raw,
            content=await request.aread(),
            extensions=request.extensions,
        )
        response = await self._pool.handle_async_request(forwarded)
        return httpx.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=_Body(response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_raw():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()
