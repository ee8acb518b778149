"""The triggers' shared HTTP client over real loopback sockets: a burst of polls opens no more connections
than the pool has, never has more requests in flight, and keeps every connection alive for the next poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from airflow_batches.hooks.client_pool import POOL_SIZE, POOLS, aclose_shared_clients, shared_client
from airflow_batches.hooks.connection_settings import settings_from_connection


class CountingServer:
    """A minimal HTTP/1.1 keep-alive server answering every request after ``delay``, counting sockets."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.accepted = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.answered = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                await asyncio.sleep(self.delay)
                self.in_flight -= 1
                self.answered += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[CountingServer, str]]:
    counting = CountingServer(delay=0.02)
    listening = await asyncio.start_server(counting.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield counting, f"http://127.0.0.1:{port}"


async def test_a_burst_of_polls_stays_within_the_pool_and_reuses_its_connections(
    server: tuple[CountingServer, str],
) -> None:
    counting, url = server
    settings = settings_from_connection("anthropic_default", host=url, port=None, password="k", extra={})
    client = shared_client(settings)
    connections = POOLS * POOL_SIZE
    try:
        for _ in range(2):  # the second burst finds every connection still open
            answers = await asyncio.gather(*(client.get(f"{url}/v1/messages/batches/x") for _ in range(500)))
            assert all(a.status_code == 200 for a in answers)
    finally:
        await aclose_shared_clients()
    assert counting.answered == 1000
    assert counting.most_in_flight == connections
    assert counting.accepted == connections
