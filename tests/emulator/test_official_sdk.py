"""The official ``anthropic`` SDK works unchanged against the emulator, sync and async, all six operations."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types.messages import MessageBatchIndividualResponse

from airflow_batches.emulator.testing import RunningEmulator, echo_request


def requests(count: int) -> list[dict[str, Any]]:
    return [echo_request(f"q-{i}", f"say {i}") for i in range(count)]


def check_results(results: list[MessageBatchIndividualResponse], count: int) -> None:
    assert sorted(r.custom_id for r in results) == sorted(f"q-{i}" for i in range(count))
    for line in results:
        assert line.result.type == "succeeded"
        assert line.result.message.content[0].text == f"say {line.custom_id.removeprefix('q-')}"
        assert line.result.message.usage.service_tier == "batch"


def test_sync_client_create_retrieve_list_results_cancel_delete(module_emulator: RunningEmulator) -> None:
    client = anthropic.Anthropic(
        api_key=module_emulator.api_key, base_url=module_emulator.base_url, max_retries=0
    )
    batches = client.messages.batches

    created = batches.create(requests=requests(3))
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 3
    assert created._request_id and created._request_id.startswith("req_")

    ended = batches.retrieve(created.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 3
    check_results(list(batches.results(created.id)), 3)

    for _ in range(4):
        batches.create(requests=requests(1))
    listed = [batch.id for batch in batches.list(limit=2)]  # auto-pagination across three pages
    assert len(listed) == 5 and len(set(listed)) == 5
    assert listed[-1] == created.id

    module_emulator.configure(processing_seconds=3600)
    running = batches.create(requests=requests(2))
    canceling = batches.cancel(running.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    with pytest.raises(anthropic.BadRequestError):
        batches.delete(running.id)

    deleted = batches.delete(created.id)
    assert (deleted.id, deleted.type) == (created.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError) as missing:
        batches.retrieve(created.id)
    assert missing.value.request_id and missing.value.request_id.startswith("req_")


def test_sdk_bearer_auth_is_checked_against_the_required_key(module_emulator: RunningEmulator) -> None:
    module_emulator.configure(api_key="sk-required")
    wrong = anthropic.Anthropic(api_key="sk-other", base_url=module_emulator.base_url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.batches.list()
    right = anthropic.Anthropic(api_key="sk-required", base_url=module_emulator.base_url, max_retries=0)
    assert right.messages.batches.list().data == []


def test_sdk_retries_an_overloaded_create_once_and_one_batch_exists(module_emulator: RunningEmulator) -> None:
    module_emulator.set_faults(fail_first=1, fail_status=529, retry_after_seconds=0.05, fail_ops=["create"])
    client = anthropic.Anthropic(
        api_key=module_emulator.api_key, base_url=module_emulator.base_url, max_retries=2
    )
    client.messages.batches.create(requests=requests(1))
    stats = module_emulator.stats()
    assert stats["requests"]["create"] == 2
    assert stats["batches_created"] == 1


def test_sdk_sees_a_cut_results_stream_as_an_error(module_emulator: RunningEmulator) -> None:
    client = anthropic.Anthropic(
        api_key=module_emulator.api_key, base_url=module_emulator.base_url, max_retries=0
    )
    batch = client.messages.batches.create(requests=requests(20))
    client.messages.batches.retrieve(batch.id)
    module_emulator.set_faults(cut_results_after=1000)
    # The SDK passes its transport's error through (httpx2 in SDK 2.x), so match on the message.
    with pytest.raises(Exception, match="incomplete chunked read"):
        list(client.messages.batches.results(batch.id))


async def test_async_client_all_operations(module_emulator: RunningEmulator) -> None:
    client = anthropic.AsyncAnthropic(
        api_key=module_emulator.api_key, base_url=module_emulator.base_url, max_retries=0
    )
    batches = client.messages.batches
    created = await batches.create(requests=requests(4))
    assert (await batches.retrieve(created.id)).processing_status == "ended"

    results = [line async for line in await batches.results(created.id)]
    check_results(results, 4)

    for _ in range(2):
        await batches.create(requests=requests(1))
    listed = [batch.id async for batch in batches.list(limit=1)]
    assert len(listed) == 3 and listed[-1] == created.id

    module_emulator.configure(processing_seconds=3600)
    running = await batches.create(requests=requests(1))
    assert (await batches.cancel(running.id)).processing_status == "canceling"
    deleted = await batches.delete(created.id)
    assert deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        await batches.retrieve(created.id)
    await client.close()
