"""A full-size batch: 100,000 requests in, 100,000 result lines streamed out; 100,001 is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from airflow_batches.emulator.testing import RunningEmulator


def body(count: int) -> Iterator[bytes]:
    """A create body generated on the fly, in pieces, so the test never holds it whole."""
    yield b'{"requests":['
    for start in range(0, count, 5000):
        piece = [
            json.dumps(
                {
                    "custom_id": f"req-{i}",
                    "params": {
                        "model": "m",
                        "max_tokens": 16,
                        "messages": [{"role": "user", "content": f"n{i}"}],
                    },
                },
                separators=(",", ":"),
            )
            for i in range(start, min(start + 5000, count))
        ]
        yield (b"," if start else b"") + ",".join(piece).encode()
    yield b"]}"


def test_100k_requests_create_and_stream_back(module_emulator: RunningEmulator, api: httpx.Client) -> None:
    created = api.post("/v1/messages/batches", content=body(100_000), timeout=120)
    assert created.status_code == 200, created.text
    batch = created.json()
    assert batch["request_counts"]["processing"] == 100_000
    assert api.get(f"/v1/messages/batches/{batch['id']}").json()["request_counts"]["succeeded"] == 100_000

    count = 0
    seen_last = seen_first = False
    with api.stream("GET", f"/v1/messages/batches/{batch['id']}/results", timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            count += 1
            if count in (1, 100_000):
                parsed = json.loads(line)
                seen_last |= parsed["custom_id"] == "req-99999"
                seen_first |= parsed["custom_id"] == "req-0"
                assert parsed["result"]["message"]["content"][0]["text"] == "n" + parsed["custom_id"][4:]
    assert count == 100_000
    assert seen_first and seen_last


def test_100001_requests_are_refused(module_emulator: RunningEmulator, api: httpx.Client) -> None:
    response = api.post("/v1/messages/batches", content=body(100_001), timeout=120)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("requests: a batch holds at most 100,000 requests")
    assert module_emulator.stats()["batches_created"] == 0
