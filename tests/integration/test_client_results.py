"""Results through BatchServiceAsync against the real emulator: big streams byte-exact, cut streams, rules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from airflow_batches.api import (
    BatchNotEndedError,
    BatchServiceAsync,
    MessageBatchSucceededResult,
    ResultsArchivedError,
    ResultsStreamError,
)
from airflow_batches.emulator.testing import RunningEmulator, run_emulator

MB = 1_000_000


def requests(count: int, text_bytes: int = 10) -> list[dict[str, Any]]:
    # The emulator's model echoes the last user message (up to 4 characters per max_tokens), so its size
    # sets the size of each result line.
    return [
        {
            "custom_id": f"req-{i}",
            "params": {
                "model": "claude-emulated",
                "max_tokens": text_bytes // 2 + 16,
                "messages": [{"role": "user", "content": f"{i}:é✓" + "x" * text_bytes}],
            },
        }
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[RunningEmulator]:
    with run_emulator(processing_seconds=0) as running:
        yield running


@pytest.fixture
def emulator(module_emulator: RunningEmulator) -> RunningEmulator:
    """Like the conftest fixture, but one process per module, reset before each test (startup is slow)."""
    module_emulator.reset()
    return module_emulator


@pytest.fixture
async def service(emulator: RunningEmulator) -> AsyncIterator[BatchServiceAsync]:
    async with BatchServiceAsync(api_key=emulator.api_key, base_url=emulator.base_url) as service:
        yield service


async def raw_results(emulator: RunningEmulator, url: str) -> bytes:
    async with httpx.AsyncClient(headers=emulator.headers) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


async def test_a_results_stream_over_10_mb_is_read_byte_exactly(
    service: BatchServiceAsync, emulator: RunningEmulator
) -> None:
    batch = await service.create(requests(110, text_bytes=100_000))
    batch = await service.retrieve(batch.id)
    assert batch.results_url is not None
    lines = [line async for line in service.results_lines(batch.id, batch=batch)]
    raw = await raw_results(emulator, batch.results_url)
    assert len(raw) > 10 * MB
    assert b"".join(lines) == raw
    assert len(lines) == 110 == batch.request_counts.succeeded
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    texts = {}
    async for result in service.results_streaming(batch.id):
        assert isinstance(result.result, MessageBatchSucceededResult)
        texts[result.custom_id] = result.result.message.content[0].text  # type: ignore[union-attr]
    assert texts["req-7"] == "7:é✓" + "x" * 100_000
    assert len(texts) == 110


async def test_a_stream_cut_midway_raises(service: BatchServiceAsync, emulator: RunningEmulator) -> None:
    batch = await service.retrieve((await service.create(requests(50, text_bytes=2000))).id)
    emulator.set_faults(cut_results_after=30_000, cut_results_times=1)
    received: list[bytes] = []
    with pytest.raises(ResultsStreamError) as info:
        async for line in service.results_lines(batch.id, batch=batch):
            received.append(line)
    assert info.value.batch_id == batch.id
    assert 0 < len(b"".join(received)) <= 30_000
    assert emulator.stats()["results_cut"] == 1
    # The next download is whole, and what came before the cut was a true prefix of it.
    whole = [line async for line in service.results_lines(batch.id, batch=batch)]
    assert len(whole) == 50
    assert whole[: len(received)] == received


async def test_results_before_the_end(service: BatchServiceAsync, emulator: RunningEmulator) -> None:
    emulator.configure(processing_seconds=3600)
    batch = await service.create(requests(2))
    with pytest.raises(BatchNotEndedError, match="in_progress"):
        [line async for line in service.results_lines(batch.id)]
    await service.cancel(batch.id)
    with pytest.raises(BatchNotEndedError, match="canceling"):
        [line async for line in service.results_lines(batch.id)]


async def test_results_of_an_archived_batch(service: BatchServiceAsync, emulator: RunningEmulator) -> None:
    batch = await service.create(requests(2))
    assert len([line async for line in service.results_lines(batch.id)]) == 2
    emulator.advance_clock(30 * 24 * 3600)
    with pytest.raises(ResultsArchivedError, match="archived"):
        [line async for line in service.results_lines(batch.id)]
