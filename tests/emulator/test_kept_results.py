"""Kept results bodies: the first whole read renders and keeps them, later reads are sent from the kept file,
a setting that changes the bytes renders again, and nothing is kept of a partial read or a deleted batch.

The emulator runs in this process (httpx's ASGI transport) so the tests can see its store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from airflow_batches.emulator.app import create_app
from airflow_batches.emulator.lifecycle import Ending
from airflow_batches.emulator.results_files import keeping_chunks
from airflow_batches.emulator.settings import ServerSettings
from airflow_batches.emulator.state import EmulatorState
from airflow_batches.emulator.testing import echo_request

BATCHES = "/v1/messages/batches"
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


@pytest.fixture
def app() -> FastAPI:
    return create_app(ServerSettings(processing_seconds=0))


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator", headers=HEADERS) as client:
        yield client


def state(app: FastAPI) -> EmulatorState:
    emulator: EmulatorState = app.state.emulator
    return emulator


async def create(api: httpx.AsyncClient, count: int) -> str:
    requests = [echo_request(f"r{i}", f"text {i} " + "x" * 100) for i in range(count)]
    response = await api.post(BATCHES, json={"requests": requests})
    assert response.status_code == 200, response.text
    batch_id: str = response.json()["id"]
    return batch_id


async def results(api: httpx.AsyncClient, batch_id: str) -> bytes:
    response = await api.get(f"{BATCHES}/{batch_id}/results")
    assert response.status_code == 200, response.text
    return response.content


async def test_a_whole_read_is_kept_and_later_reads_are_sent_from_the_kept_file(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    batch_id = await create(api, 5)
    first = await results(api, batch_id)
    batch = state(app).store.get(batch_id)
    assert batch is not None
    (kept,) = batch.kept_results.values()
    assert kept.read_bytes() == first
    kept.write_bytes(b"what the kept file holds\n")  # proves the next read is sent from it, not rendered
    assert await results(api, batch_id) == b"what the kept file holds\n"


async def test_a_setting_that_changes_the_bytes_renders_again(app: FastAPI, api: httpx.AsyncClient) -> None:
    batch_id = await create(api, 5)
    whole = await results(api, batch_id)
    state(app).faults.update({"results_drop_lines": 2})
    assert await results(api, batch_id) == b"".join(whole.splitlines(keepends=True)[:3])
    state(app).faults.update({"results_drop_lines": 0, "results_duplicate_line": True})
    duplicated = await results(api, batch_id)
    assert duplicated.count(whole.splitlines(keepends=True)[0]) == 2
    state(app).faults.update({"results_duplicate_line": False})
    state(app).settings = state(app).settings.updated({"invalid_output_rate": 1.0})
    assert await results(api, batch_id) == whole, "plain text answers do not depend on invalid_output_rate"
    batch = state(app).store.get(batch_id)
    assert batch is not None
    assert len(batch.kept_results) == 4, "one rendering per set of the settings that change the bytes"


async def test_cut_and_slow_reads_are_rendered_line_by_line_and_not_kept(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    batch_id = await create(api, 3)
    state(app).faults.update({"slow_results_ms": 1})
    slow = await results(api, batch_id)
    batch = state(app).store.get(batch_id)
    assert batch is not None and batch.kept_results == {}
    state(app).faults.update({"slow_results_ms": 0})
    assert await results(api, batch_id) == slow


async def test_deleting_a_batch_removes_its_kept_results(app: FastAPI, api: httpx.AsyncClient) -> None:
    batch_id = await create(api, 3)
    await results(api, batch_id)
    batch = state(app).store.get(batch_id)
    assert batch is not None
    (kept,) = batch.kept_results.values()
    assert (await api.delete(f"{BATCHES}/{batch_id}")).status_code == 200
    assert not kept.exists()


async def test_a_read_that_stops_early_keeps_nothing(app: FastAPI) -> None:
    path = state(app).store.new_results_path()
    kept: list[object] = []
    lines = iter([b"one\n", b"two\n"])
    chunks = keeping_chunks(lines, path, kept.append)
    assert await anext(chunks) == b"one\ntwo\n"
    await chunks.aclose()  # the client went away before the end of the body
    assert kept == [] and not path.exists()


async def test_a_rendering_finished_after_its_batch_was_deleted_is_not_kept(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    batch_id = await create(api, 3)
    store = state(app).store
    batch = store.get(batch_id)
    assert batch is not None
    store.delete(batch)
    path = store.new_results_path()
    store.keep_results(batch, (Ending.PROCESSED, 0, False, 0.0), path)
    assert batch.kept_results == {} and not path.exists()
