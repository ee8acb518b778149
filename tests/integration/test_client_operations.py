"""BatchServiceAsync against the real emulator over loopback: every operation, listing, auth, retries."""

from __future__ import annotations

import math
import socket
import time
from typing import Any

import pytest

from airflow_batches.api import (
    AmbiguousCreateError,
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    BatchServiceAsync,
    MessageBatchSucceededResult,
    NotFoundError,
    OverloadedError,
    RequestTooLargeError,
    RetryPolicy,
)
from airflow_batches.emulator.testing import RunningEmulator, echo_request, run_emulator


def requests(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [echo_request(f"{prefix}{i}", f"#{i}") for i in range(count)]


async def test_create_retrieve_results_delete(
    emulator_service: BatchServiceAsync, module_emulator: RunningEmulator
) -> None:
    created = await emulator_service.create(requests(3))
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 3
    batch = await emulator_service.retrieve(created.id)
    assert batch.processing_status == "ended"
    assert batch.request_counts.succeeded == 3
    results = {r.custom_id: r async for r in emulator_service.results_streaming(batch.id)}
    assert sorted(results) == ["r0", "r1", "r2"]
    result = results["r1"].result
    assert isinstance(result, MessageBatchSucceededResult)
    assert result.message.content[0].text == "#1"  # type: ignore[union-attr]
    deleted = await emulator_service.delete(batch.id)
    assert deleted.id == batch.id
    with pytest.raises(NotFoundError):
        await emulator_service.retrieve(batch.id)
    assert module_emulator.stats()["batches_created"] == 1


async def test_cancel_and_delete_rules(
    emulator_service: BatchServiceAsync, module_emulator: RunningEmulator
) -> None:
    module_emulator.configure(processing_seconds=3600, cancel_seconds=5)
    batch = await emulator_service.create(requests(2))
    with pytest.raises(BadRequestError, match="only ended batches can be deleted"):
        await emulator_service.delete(batch.id)
    canceling = await emulator_service.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    again = await emulator_service.cancel(batch.id)  # repeating a cancel is harmless
    assert again.processing_status == "canceling"
    module_emulator.advance_clock(10)
    ended = await emulator_service.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled == 2
    with pytest.raises(BadRequestError):
        await emulator_service.cancel(batch.id)
    assert (await emulator_service.delete(batch.id)).id == batch.id


async def test_unknown_batch_is_not_found(emulator_service: BatchServiceAsync) -> None:
    with pytest.raises(NotFoundError) as info:
        await emulator_service.retrieve("msgbatch_doesnotexist")
    assert info.value.request_id and info.value.request_id.startswith("req_")


async def test_listing_across_pages_in_both_directions(emulator_service: BatchServiceAsync) -> None:
    ids = [(await emulator_service.create(requests(1, prefix=f"b{n}x"))).id for n in range(7)]  # oldest first
    newest_first = ids[::-1]
    assert [b.id async for b in emulator_service.list(limit=2)] == newest_first
    pages = [[b.id for b in page.data] async for page in emulator_service.list(limit=2).pages()]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:6], newest_first[6:7]]
    older = [
        [b.id for b in page.data] async for page in emulator_service.list(limit=2, after_id=ids[5]).pages()
    ]
    assert older == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]
    newer = [
        [b.id for b in page.data] async for page in emulator_service.list(limit=2, before_id=ids[0]).pages()
    ]
    assert newer == [[ids[2], ids[1]], [ids[4], ids[3]], [ids[6], ids[5]]]
    first = await emulator_service.list(limit=3)
    assert [b.id for b in first.data] == newest_first[:3] and first.has_more


async def test_wrong_key_is_an_authentication_error() -> None:
    with run_emulator(api_key="sk-the-right-key", processing_seconds=0) as keyed:
        async with BatchServiceAsync(api_key="sk-a-wrong-key-123", base_url=keyed.base_url) as service:
            with pytest.raises(AuthenticationError) as info:
                await service.list_page()
        assert info.value.status_code == 401
        assert "sk-a-wrong-key-123" not in str(info.value) and "sk-the-right-key" not in str(info.value)
        async with BatchServiceAsync(api_key="sk-the-right-key", base_url=keyed.base_url) as service:
            assert (await service.list_page()).data == []


async def test_overload_with_retry_after_is_retried(
    module_emulator: RunningEmulator, emulator_service: BatchServiceAsync, retry_delays: list[float]
) -> None:
    module_emulator.set_faults(fail_first=2, fail_status=529, retry_after_seconds=0.25, fail_ops=["retrieve"])
    batch = await emulator_service.create(requests(1))
    assert (await emulator_service.retrieve(batch.id)).id == batch.id
    assert retry_delays == [0.25, 0.25]
    assert module_emulator.stats()["requests"]["retrieve"] == 3


async def test_plain_retry_after_seconds_is_honoured(
    module_emulator: RunningEmulator, emulator_service: BatchServiceAsync, retry_delays: list[float]
) -> None:
    # Only retry-after (no retry-after-ms), and 3 s: far from the 0.5-1 s backoff the client would pick.
    module_emulator.set_faults(
        fail_first=2, retry_after_seconds=3, retry_after_mode="seconds", fail_ops=["list"]
    )
    assert (await emulator_service.list_page()).data == []
    assert retry_delays == [3.0, 3.0]


async def test_retry_after_http_date_is_honoured(
    module_emulator: RunningEmulator, emulator_service: BatchServiceAsync, retry_delays: list[float]
) -> None:
    module_emulator.set_faults(
        fail_first=1, retry_after_seconds=30, retry_after_mode="date", fail_ops=["list"]
    )
    before = time.time()
    assert (await emulator_service.list_page()).data == []
    after = time.time()
    # Bounds from the moments measured around the call, not a speed limit: the server dated its answer
    # ceil(moment + 30) and the client subtracted its own later moment, both between before and after.
    [delay] = retry_delays
    assert before + 30 - after <= delay <= math.ceil(after + 30) - before


async def test_rate_limited_create_is_retried_and_makes_one_batch(
    module_emulator: RunningEmulator, emulator_service: BatchServiceAsync, retry_delays: list[float]
) -> None:
    module_emulator.set_faults(fail_first=1, fail_status=429, retry_after_seconds=0.5, fail_ops=["create"])
    batch = await emulator_service.create(requests(4))
    assert [b.id async for b in emulator_service.list()] == [batch.id]
    assert retry_delays == [0.5]
    assert module_emulator.stats()["batches_created"] == 1


async def test_server_error_on_create_is_ambiguous_not_retried(
    module_emulator: RunningEmulator, emulator_service: BatchServiceAsync, retry_delays: list[float]
) -> None:
    module_emulator.set_faults(fail_first=1, fail_status=500, fail_ops=["create"])
    with pytest.raises(AmbiguousCreateError, match="list batches"):
        await emulator_service.create(requests(1))
    assert retry_delays == []
    assert module_emulator.stats()["requests"]["create"] == 1


async def test_x_should_retry_false_stops_retries(module_emulator: RunningEmulator) -> None:
    module_emulator.set_faults(fail_first=1, fail_status=529, should_retry=False, fail_ops=["list"])
    async with BatchServiceAsync(
        api_key=module_emulator.api_key, base_url=module_emulator.base_url
    ) as service:
        with pytest.raises(OverloadedError):
            await service.list_page()
    assert module_emulator.stats()["requests"]["list"] == 1


async def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async with BatchServiceAsync(
        api_key="k", base_url=f"http://127.0.0.1:{port}", retry_policy=RetryPolicy(sleep=sleep)
    ) as service:
        with pytest.raises(APIConnectionError, match="after 3 attempts"):
            await service.create(requests(1))  # refused: provably no batch, so even create retries
    assert len(delays) == 2


@pytest.mark.parametrize("html", [False, True], ids=["json-envelope", "edge-html-page"])
@pytest.mark.parametrize("body_requests", [3, 3000], ids=["small-body", "body-bigger-than-socket-buffers"])
async def test_a_413_on_create_is_a_clear_error_and_makes_no_batch(
    emulator_service: BatchServiceAsync, module_emulator: RunningEmulator, html: bool, body_requests: int
) -> None:
    module_emulator.configure(max_body_bytes=200, html_413=html)
    with pytest.raises(RequestTooLargeError) as info:
        await emulator_service.create(requests(body_requests))
    message = str(info.value)
    assert message.startswith("HTTP 413") and "POST http://127.0.0.1" in message
    assert "256 MB" in message and "split the requests" in message  # what to do
    if html:  # an edge page, not the envelope: the page itself is quoted
        assert "text/html" in message and "413 Request Entity Too Large" in message
    else:
        assert "request_too_large" in message and "maximum allowed size of 200 bytes" in message
    assert info.value.request_id and f"[request-id: {info.value.request_id}]" in message
    assert module_emulator.stats()["batches_created"] == 0
