"""Results through BatchServiceAsync against the real emulator: big streams byte-exact, cut streams, rules."""

from __future__ import annotations

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
from airflow_batches.emulator.testing import RunningEmulator, echo_request

MB = 1_000_000


def requests(count: int, text_bytes: int = 10) -> list[dict[str, Any]]:
    """Requests whose echoed replies (and so result lines) are a little over ``text_bytes`` long."""
    return [echo_request(f"req-{i}", f"{i}:é✓" + "x" * text_bytes) for i in range(count)]


async def raw_results(module_emulator: RunningEmulator, url: str) -> bytes:
    async with httpx.AsyncClient(headers=module_emulator.headers) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


async def test_a_results_stream_over_10_mb_is_read_byte_exactly(
    emulator_service: BatchServiceAsync, module_emulator: RunningEmulator
) -> None:
    batch = await emulator_service.create(requests(110, text_bytes=100_000))
    batch = await emulator_service.retrieve(batch.id)
    assert batch.results_url is not None
    lines = [line async for line in emulator_service.results_lines(batch.id, batch=batch)]
    raw = await raw_results(module_emulator, batch.results_url)
    assert len(raw) > 10 * MB
    assert b"".join(lines) == raw
    assert len(lines) == 110 == batch.request_counts.succeeded
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    texts = {}
    async for result in emulator_service.results_streaming(batch.id):
        assert isinstance(result.result, MessageBatchSucceededResult)
        texts[result.custom_id] = result.result.message.content[0].text  # type: ignore[union-attr]
    assert texts["req-7"] == "7:é✓" + "x" * 100_000
    assert len(texts) == 110


async def test_a_stream_cut_midway_raises(
    emulator_service: BatchServiceAsync, module_emulator: RunningEmulator
) -> None:
    batch = await emulator_service.retrieve((await emulator_service.create(requests(50, text_bytes=2000))).id)
    module_emulator.set_faults(cut_results_after=30_000, cut_results_times=1)
    received: list[bytes] = []
    with pytest.raises(ResultsStreamError) as info:
        async for line in emulator_service.results_lines(batch.id, batch=batch):
            received.append(line)
    assert info.value.batch_id == batch.id
    assert 0 < len(b"".join(received)) <= 30_000
    assert module_emulator.stats()["results_cut"] == 1
    # The next download is whole, and what came before the cut was a true prefix of it.
    whole = [line async for line in emulator_service.results_lines(batch.id, batch=batch)]
    assert len(whole) == 50
    assert whole[: len(received)] == received


async def test_results_before_the_end(
    emulator_service: BatchServiceAsync, module_emulator: RunningEmulator
) -> None:
    module_emulator.configure(processing_seconds=3600)
    batch = await emulator_service.create(requests(2))
    with pytest.raises(BatchNotEndedError, match="in_progress"):
        [line async for line in emulator_service.results_lines(batch.id)]
    await emulator_service.cancel(batch.id)
    with pytest.raises(BatchNotEndedError, match="canceling"):
        [line async for line in emulator_service.results_lines(batch.id)]


async def test_results_of_an_archived_batch(
    emulator_service: BatchServiceAsync, module_emulator: RunningEmulator
) -> None:
    batch = await emulator_service.create(requests(2))
    assert len([line async for line in emulator_service.results_lines(batch.id)]) == 2
    module_emulator.advance_clock(30 * 24 * 3600)
    with pytest.raises(ResultsArchivedError, match="archived"):
        [line async for line in emulator_service.results_lines(batch.id)]
