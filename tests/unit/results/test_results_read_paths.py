"""The two ways a landing reads the results body: synchronously (the fast way) and with the async client."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx
from results_helpers import BASE_URL, FakeAPI, make_lines, result_line

from airflow_batches.api import BatchServiceAsync
from airflow_batches.results import land_results


class SharedClientSource:
    """A service on an ``http_client`` from outside: its setup is unknown, so it is only read async."""

    def __init__(self, api: FakeAPI) -> None:
        self.client = httpx.AsyncClient(transport=api.transport())

    def get_service(self) -> BatchServiceAsync:
        return BatchServiceAsync(
            api_key="sk-test-key", base_url=BASE_URL, http_client=self.client, max_retries=0
        )


def test_the_sync_and_the_async_read_land_the_same_bytes(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 30, text="z" * 500) + make_lines("e", 4, "errored")
    batch = api.add("msgbatch_two", lines)
    body = b"".join(lines)
    shared = SharedClientSource(api)
    wire = api.get_service()
    ended = asyncio.run(wire.retrieve("msgbatch_two"))
    assert shared.get_service().results_chunks_sync(ended) is None  # no request made
    chunks = wire.results_chunks_sync(ended)  # MockTransport serves sync and async requests alike
    assert chunks is not None and b"".join(chunk.data for chunk in chunks) == body
    asyncio.run(wire.aclose())

    fast = land_results(api, "msgbatch_two", f"file://{tmp_path}/sync/")
    slow = land_results(shared, "msgbatch_two", f"file://{tmp_path}/async/")
    asyncio.run(shared.client.aclose())

    for name in ("sync", "async"):
        assert (tmp_path / name / "msgbatch_two.jsonl").read_bytes() == body
    assert fast["files"][0]["sha256"] == slow["files"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    assert fast["counts"] == slow["counts"] and fast["usage"] == slow["usage"]
    assert batch.results_requests == 3  # one per read


def test_a_sync_attempt_without_a_2xx_hands_over_to_the_async_request(api: FakeAPI, tmp_path: Path) -> None:
    """The async request's retries and errors apply: the sync read only takes the happy path."""
    lines = [result_line("a"), result_line("b", "canceled")]
    api.add("msgbatch_busy", lines)
    results = "/v1/messages/batches/msgbatch_busy/results"
    api.route("GET", results, 503, lambda request: httpx.Response(200, content=b"".join(lines)))

    manifest = land_results(api, "msgbatch_busy", f"file://{tmp_path}")

    assert (tmp_path / "msgbatch_busy.jsonl").read_bytes() == b"".join(lines)
    assert manifest["lines"] == 2
    assert api.paths("GET").count(results) == 2  # the sync attempt (503), then the async one (200)
