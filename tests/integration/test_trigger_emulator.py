"""BatchTrigger against the real emulator over loopback sockets, on a real event loop: waiting, groups,
failures, the shared pool, the loop never blocked, restart with an unchanged deadline, on_kill, secrecy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.testing import RunningEmulator, run_emulator
from airflow_batches.events import validate_event
from airflow_batches.hooks import BatchHook
from airflow_batches.hooks import batch as hook_module
from airflow_batches.hooks.client_pool import aclose_shared_clients
from airflow_batches.triggers import BatchTrigger
from airflow_batches.waiting import wait_blocking

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


@pytest.fixture
def handed_out(monkeypatch: pytest.MonkeyPatch) -> list[httpx.AsyncClient]:
    """Every shared HTTP client the hook hands to a trigger, in order."""
    clients: list[httpx.AsyncClient] = []
    real = hook_module.shared_client

    def recording(settings: Any) -> httpx.AsyncClient:
        clients.append(real(settings))
        return clients[-1]

    monkeypatch.setattr(hook_module, "shared_client", recording)
    return clients


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
    api: RunningEmulator, handed_out: list[httpx.AsyncClient]
) -> None:
    api.configure(processing_seconds=0.3)
    hook = BatchHook()
    ids = [(await asyncio.to_thread(hook.create, requests(1, f"p{n}-"))).id for n in range(2)]
    events = await asyncio.gather(*(first_event(BatchTrigger(i, poll_interval=0.1)) for i in ids))
    assert [e["status"] for e in events] == ["success", "success"]
    # One connection lookup served both triggers (hooks/loop_cache.py), so one pool was handed out, once.
    assert len(handed_out) == 1 and not handed_out[0].is_closed


class SlowSteps(logging.Handler):
    """Records every loop step asyncio's debug mode reports as slower than the loop's threshold."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Executing %s took %.3f seconds":
            self.seconds.append(float(record.args[1]))  # type: ignore[index]


@contextlib.contextmanager
def slow_steps(threshold: float) -> Iterator[SlowSteps]:
    """Measure single loop steps (one callback or task step), not the gaps between them: a busy machine
    delays when steps run, but only a blocking call makes one step itself last as long as an API answer."""
    loop = asyncio.get_running_loop()
    handler = SlowSteps()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    debug, duration = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = threshold
    try:
        yield handler
    finally:
        loop.set_debug(debug)
        loop.slow_callback_duration = duration
        logger.removeHandler(handler)


async def test_polling_never_blocks_the_event_loop(
    api: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every API answer takes 1.5 s, so a blocking call makes one loop step last >= 1.5 s; the threshold is
    # half that, far above what scheduling noise adds to a single step even on a loaded 2-core machine.
    latency, threshold = 1.5, 0.75
    api.configure(processing_seconds=4.0)  # still running after the control: the trigger polls it
    created = await asyncio.to_thread(BatchHook().create, requests(1))
    await (await BatchHook().aget_service()).retrieve(created.id)  # imports done before measuring
    api.set_faults(latency_ms=int(latency * 1000))
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "1")  # a sync connection lookup would now raise

    with slow_steps(threshold) as control:

        async def blocking_poll() -> None:
            BatchHook().retrieve(created.id)  # the mistake this test guards against: sync I/O on the loop

        await asyncio.create_task(blocking_poll())  # its own task: the step ends (and is measured) here
    assert control.seconds and control.seconds[0] >= latency  # the detector sees a blocking call here

    with slow_steps(threshold) as measured:
        event = await first_event(BatchTrigger(created.id, poll_interval=0.1))
    assert event["status"] == "success"
    assert api.stats()["requests"]["retrieve"] >= 4  # warm-up, control and two or more trigger polls
    assert measured.seconds == []


def test_blocking_wait_closes_the_pool_of_its_private_loop(
    api: RunningEmulator, handed_out: list[httpx.AsyncClient]
) -> None:
    api.configure(processing_seconds=0.3)
    created = BatchHook().create(requests(1))
    event = wait_blocking(BatchTrigger(created.id, poll_interval=0.1))
    assert event["status"] == "success"
    assert handed_out and all(client.is_closed for client in handed_out)


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
