"""Many BatchTriggers on one loop against the emulator over loopback: the shared list sweep serves them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.testing import RunningEmulator, echo_request
from airflow_batches.events import validate_event
from airflow_batches.hooks.client_pool import aclose_shared_clients
from airflow_batches.sweep import SWEEP_MIN
from airflow_batches.triggers import BatchTrigger

COUNT = SWEEP_MIN + 50
POLL = 0.3


async def create_batches(emulator: RunningEmulator, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=emulator.headers) as client:
        created = []
        for number in range(count):
            body = {"requests": [echo_request(f"req-{number}", "hi")]}
            response = await client.post("/v1/messages/batches", json=body)
            response.raise_for_status()
            created.append(response.json()["id"])
        return created


async def until(emulator: RunningEmulator, done: Callable[[dict[str, int]], bool]) -> None:
    """Wait (at most 60 s) until the emulator's request counts satisfy ``done``."""
    async with asyncio.timeout(60):
        while True:
            if done((await asyncio.to_thread(emulator.stats))["requests"]):
                return
            await asyncio.sleep(0.05)


async def test_triggers_past_the_threshold_poll_through_list_pages(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    emulator.configure(processing_seconds=3600)
    batch_ids = await create_batches(emulator, COUNT)
    before = emulator.stats()["requests"]

    async def first_event(batch_id: str) -> dict[str, Any]:
        async for event in BatchTrigger(batch_id, poll_interval=POLL).run():
            payload: dict[str, Any] = event.payload
            return payload
        raise AssertionError("no event")

    try:
        waiting = asyncio.gather(*(first_event(i) for i in batch_ids))
        # Every batch read while in progress: the first reads (retrieves) arrived, then two more rounds,
        # so they were answered too (on a loaded machine a fixed sleep may not be enough for that).
        await until(emulator, lambda reads: reads.get("retrieve", 0) >= SWEEP_MIN - 1)
        rounds = (await asyncio.to_thread(emulator.stats))["requests"].get("list", 0)
        await until(emulator, lambda reads: reads.get("list", 0) >= rounds + 2)
        assert not waiting.done()
        emulator.advance_clock(3600)  # then every batch ends at once
        events = await asyncio.wait_for(waiting, timeout=60)
    finally:
        await aclose_shared_clients()
    for batch_id, event in zip(batch_ids, events, strict=True):
        validate_event(event)
        assert (event["status"], event["batch_ids"], event["counts"]["succeeded"]) == (
            "success",
            [batch_id],
            1,
        )
    after = emulator.stats()["requests"]
    retrieves = after.get("retrieve", 0) - before.get("retrieve", 0)
    pages = after.get("list", 0) - before.get("list", 0)
    # Only the triggers that polled before SWEEP_MIN of them had joined read alone, once each; then every
    # poll of every batch came from the rounds' list pages (one page a round: all are on the first page),
    # where each trigger reading alone would have sent about COUNT * 6 retrieves.
    assert retrieves <= SWEEP_MIN - 1
    assert 2 <= pages <= 2 * 6
