"""BatchTrigger against the real emulator over loopback sockets, on a real event loop: waiting, groups,
failures, the shared pool, the loop never blocked, restart with an unchanged deadline, on_kill, secrecy."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.testing import RunningEmulator, run_emulator
from airflow_batches.hooks import BatchHook
from airflow_batches.hooks import batch as hook_module
from airflow_batches.hooks.client_pool import aclose_shared_clients
from airflow_batches.triggers import BatchTrigger
from airflow_batches.triggers.events import validate_event

REQUIRED_KEY = "sk-ant-trigger-emulator-key-8086"


def requests(count: int, prefix: str = "r", **params: Any) -> list[dict[str, Any]]:
    message = {"role": "user", "content": "hello"}
    base = {"model": "claude-emulated", "max_tokens": 16, "messages": [message]}
    return [{"custom_id": f"{prefix}{n}", "params": {**base, **params}} for n in range(count)]


def use(monkeypatch: pytest.MonkeyPatch, base_url: str, key: str, **extra: Any) -> None:
    conn = {"conn_type": "anthropic", "host": base_url, "password": key, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))


@pytest.fixture
def api(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """The emulator as the default connection; the loop's shared pool is closed after each test."""
    use(monkeypatch, emulator.base_url, emulator.api_key, max_retries=0)
    yield emulator


@pytest.fixture(autouse=True)
async def close_pool() -> Any:
    yield
    await aclose_shared_clients()


async def first_event(trigger: BatchTrigger) -> dict[str, Any]:
    events = trigger.run()
    try:
        event = await events.__anext__()
    finally:
        await events.aclose()
    payload: dict[str, Any] = event.payload
    validate_event(payload)
    return payload


async def test_waits_until_the_batch_ends(api: RunningEmulator, capfd: Any) -> None:
    api.configure(processing_seconds=0.6)
    created = await asyncio.to_thread(BatchHook().create, requests(3))
    event = await first_event(BatchTrigger(created.id, poll_interval=0.2))
    assert (event["status"], event["reason"], event["batch_ids"]) == ("success", "ended", [created.id])
    assert event["counts"]["succeeded"] == 3 and event["batches"][0]["results_url"]
    logged = capfd.readouterr().out
    assert (
        f"Batch {created.id} is in_progress: processing=3 succeeded=0 errored=0 canceled=0 expired=0"
        in logged
    )
    assert f"Batch {created.id} is ended: processing=0 succeeded=3 errored=0 canceled=0 expired=0" in logged
    assert api.stats()["requests"].get("create") == 1  # the trigger only ever reads


async def test_group_with_errored_requests_ends_with_summed_counts(api: RunningEmulator) -> None:
    api.configure(processing_seconds=0.3)
    hook = BatchHook()
    first = await asyncio.to_thread(hook.create, requests(2, "a"))
    second = await asyncio.to_thread(hook.create, requests(3, "b", metadata={"emulator": "error"}))
    event = await first_event(BatchTrigger({"batch_ids": [first.id, second.id]}, poll_interval=0.1))
    assert event["status"] == "success" and event["batch_ids"] == [first.id, second.id]
    assert event["counts"] == {"processing": 0, "succeeded": 2, "errored": 3, "canceled": 0, "expired": 0}


async def test_unknown_batch_ends_at_once_with_not_found(api: RunningEmulator) -> None:
    event = await first_event(BatchTrigger("msgbatch_doesnotexist0000000000", poll_interval=0.1))
    assert (event["status"], event["reason"]) == ("error", "not_found")
    assert "msgbatch_doesnotexist0000000000" in event["message"]


async def test_wrong_key_ends_with_auth_and_never_shows_a_key(
    monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    wrong = "sk-ant-wrong-trigger-key-never-shown-1234"
    with run_emulator(api_key=REQUIRED_KEY, processing_seconds=0) as keyed:
        use(monkeypatch, keyed.base_url, wrong)
        trigger = BatchTrigger("msgbatch_0123456789abcdef01234567", poll_interval=0.1)
        event = await first_event(trigger)
    assert (event["status"], event["reason"]) == ("error", "auth")
    text = json.dumps(event) + json.dumps(trigger.serialize()) + capfd.readouterr().out
    assert wrong not in text and REQUIRED_KEY not in text


async def test_transient_faults_are_tolerated_and_nothing_is_cancelled(api: RunningEmulator) -> None:
    api.configure(processing_seconds=0.2)
    created = await asyncio.to_thread(BatchHook().create, requests(2))
    api.set_faults(fail_first=3, fail_status=529, fail_ops=["retrieve"], retry_after_seconds=0)
    event = await first_event(BatchTrigger(created.id, poll_interval=0.05, max_poll_errors=4))
    assert event["status"] == "success"
    assert api.stats()["requests"].get("cancel", 0) == 0


async def test_exhausted_budget_leaves_the_batch_running(api: RunningEmulator) -> None:
    api.configure(processing_seconds=3600)
    created = await asyncio.to_thread(BatchHook().create, requests(1))
    api.set_faults(fail_first=1000, fail_status=500, fail_ops=["retrieve"], retry_after_seconds=0)
    event = await first_event(BatchTrigger(created.id, poll_interval=0.02, max_poll_errors=3))
    assert (event["status"], event["reason"]) == ("error", "errors_exhausted")
    api.set_faults(fail_first=0)
    batch = await asyncio.to_thread(BatchHook().retrieve, created.id)
    assert batch.processing_status == "in_progress" and batch.cancel_initiated_at is None


async def test_triggers_on_one_loop_share_one_pool(
    api: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.configure(processing_seconds=0.3)
    hook = BatchHook()
    ids = [(await asyncio.to_thread(hook.create, requests(1, f"p{n}-"))).id for n in range(2)]
    handed_out: list[httpx.AsyncClient] = []
    real = hook_module.shared_client

    def recording(settings: Any) -> httpx.AsyncClient:
        handed_out.append(real(settings))
        return handed_out[-1]

    monkeypatch.setattr(hook_module, "shared_client", recording)
    events = await asyncio.gather(*(first_event(BatchTrigger(i, poll_interval=0.1)) for i in ids))
    assert [e["status"] for e in events] == ["success", "success"]
    assert len(handed_out) == 2 and handed_out[0] is handed_out[1] and not handed_out[0].is_closed


async def test_polling_never_blocks_the_event_loop(
    api: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every API answer takes 400 ms; a blocking call would freeze the ticker for that long each time.
    api.configure(processing_seconds=1.0)
    created = await asyncio.to_thread(BatchHook().create, requests(1))
    api.set_faults(latency_ms=400)
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "1")  # a sync connection lookup would now raise
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    event = await first_event(BatchTrigger(created.id, poll_interval=0.1))
    done.set()
    await ticking
    assert event["status"] == "success"
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    # At least 3 polls wait >= 400 ms for their answer: blocking calls would stall the loop >= 1.2 s in all.
    # Summing only long gaps tolerates one scheduling hiccup on a busy machine.
    stalled = sum(gap for gap in gaps if gap > 0.2)
    assert api.stats()["requests"]["retrieve"] >= 3 and stalled < 0.4


async def test_restart_rebuilds_from_kwargs_and_keeps_the_deadline(api: RunningEmulator) -> None:
    api.configure(processing_seconds=3600)
    created = await asyncio.to_thread(BatchHook().create, requests(1))
    deadline = time.time() + 1.0
    original = BatchTrigger(created.id, poll_interval=0.1, deadline=deadline)
    running = asyncio.ensure_future(first_event(original))
    await asyncio.sleep(0.3)
    running.cancel()  # the triggerer stops; the trigger is persisted as classpath + kwargs
    with pytest.raises(asyncio.CancelledError):
        await running
    classpath, kwargs = original.serialize()
    rebuilt = BatchTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs) and kwargs["deadline"] == deadline
    event = await first_event(rebuilt)
    assert (event["status"], event["reason"]) == ("timeout", "deadline")
    assert time.time() >= deadline
    assert event["batches"][0]["processing_status"] == "in_progress"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(deadline))
    assert stamp in event["message"]


async def test_on_kill_cancels_only_with_the_flag(api: RunningEmulator) -> None:
    api.configure(processing_seconds=3600, cancel_seconds=0)
    hook = BatchHook()
    kept = await asyncio.to_thread(hook.create, requests(1, "k"))
    cancelled = await asyncio.to_thread(hook.create, requests(1, "c"))
    await BatchTrigger(kept.id).on_kill()
    await BatchTrigger(kept.id, cancel_on_kill=True).cleanup()
    await BatchTrigger(cancelled.id, cancel_on_kill=True).on_kill()
    kept_now = await asyncio.to_thread(hook.retrieve, kept.id)
    cancelled_now = await asyncio.to_thread(hook.retrieve, cancelled.id)
    assert kept_now.processing_status == "in_progress" and kept_now.cancel_initiated_at is None
    assert cancelled_now.cancel_initiated_at is not None
