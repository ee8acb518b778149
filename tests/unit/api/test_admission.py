"""AdmissionTransport: never more requests in flight than connections, spread over its small pools."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from airflow_batches.api.admission import AdmissionTransport


class SlowPool(httpx.AsyncBaseTransport):
    """A pool that answers after ``delay`` and records how many requests it holds at once."""

    def __init__(self, size: int, delay: float = 0.01, fail: bool = False) -> None:
        self.size = size
        self.delay = delay
        self.fail = fail
        self.held = 0
        self.most = 0
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.held += 1
        self.most = max(self.most, self.held)
        try:
            await asyncio.sleep(self.delay)
            if self.fail:
                raise httpx.ConnectError("refused", request=request)
        except BaseException:
            self.held -= 1
            raise
        return httpx.Response(200, stream=_Body(self), request=request)

    async def aclose(self) -> None:
        self.closed = True


class _Body(httpx.AsyncByteStream):
    def __init__(self, pool: SlowPool) -> None:
        self.pool = pool

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield b"{}"

    async def aclose(self) -> None:
        self.pool.held -= 1


def admission(pools: list[SlowPool], pool_size: int) -> AdmissionTransport:
    made = iter(pools)
    return AdmissionTransport(lambda size: next(made), pools=len(pools), pool_size=pool_size)


async def test_in_flight_never_exceeds_the_connections_of_any_pool() -> None:
    pools = [SlowPool(3) for _ in range(4)]
    async with httpx.AsyncClient(transport=admission(pools, 3)) as client:
        answers = await asyncio.gather(*(client.get("http://api.test/") for _ in range(200)))
    assert all(a.status_code == 200 for a in answers)
    assert [p.most for p in pools] == [3, 3, 3, 3]  # every pool used, none past its size
    assert all(p.held == 0 for p in pools)
    assert all(p.closed for p in pools)


async def test_a_streamed_response_holds_its_slot_until_closed() -> None:
    pool = SlowPool(1, delay=0)
    async with httpx.AsyncClient(transport=admission([pool], 1)) as client:
        async with client.stream("GET", "http://api.test/") as first:
            second = asyncio.ensure_future(client.get("http://api.test/"))
            await asyncio.sleep(0.05)
            assert not second.done() and pool.held == 1  # waiting for the one connection
            await first.aread()
        assert (await second).status_code == 200
    assert pool.most == 1


async def test_a_failed_request_gives_its_slot_back() -> None:
    pool = SlowPool(1, fail=True)
    async with httpx.AsyncClient(transport=admission([pool], 1)) as client:
        for _ in range(3):  # with the slot leaked, the second request would wait for ever
            with pytest.raises(httpx.ConnectError):
                await asyncio.wait_for(client.get("http://api.test/"), 1)


async def test_a_cancelled_request_gives_its_slot_back() -> None:
    pool = SlowPool(1, delay=10)
    transport = admission([pool], 1)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.get("http://api.test/"), 0.05)
        pool.delay = 0
        assert (await asyncio.wait_for(client.get("http://api.test/"), 1)).status_code == 200


def test_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="pools and pool_size must be >= 1"):
        AdmissionTransport(lambda size: SlowPool(size), pools=0, pool_size=8)
