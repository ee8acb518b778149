"""Behind a gateway: the batch's results_url names another origin (the API's own host); results are still
landed, from the canonical results path on the configured base URL, and that other origin is never contacted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from airflow_batches.emulator.testing import echo_request, run_emulator
from airflow_batches.hooks import BatchHook


class ApiHost:
    """A loopback server standing for the API's own host: it records every request that reaches it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, dict(self.headers)))
                self.send_response(500)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_host() -> Iterator[ApiHost]:
    host = ApiHost()
    yield host
    host.close()


def test_results_behind_a_gateway_come_from_the_base_url_and_the_key_goes_nowhere_else(
    api_host: ApiHost, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with run_emulator(processing_seconds=0, results_base_url=api_host.url) as gateway:
        conn = {"conn_type": "anthropic", "host": gateway.base_url, "password": gateway.api_key}
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
        hook = BatchHook()
        batch = hook.create([echo_request("a", "first"), echo_request("b", "second")])
        ended = hook.retrieve(batch.id)
        assert ended.results_url == f"{api_host.url}/v1/messages/batches/{batch.id}/results"

        manifest = hook.land_results(batch.id, tmp_path.as_uri())

    lines = (tmp_path / f"{batch.id}.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in lines) == ["a", "b"]
    assert manifest["lines"] == 2
    assert api_host.seen == []
