"""Helpers for the results unit tests: batches with results served by the shared fake API
(tests/fake_api.py) for retrieve and results.

The real service code (``BatchServiceAsync``) runs against it; only the network is replaced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import fake_api
import httpx

from airflow_batches.api import BatchServiceAsync

BASE_URL = "http://results.test"

# Landing arguments refused before any request, and the message that names each (the landing and the
# results operator refuse the same ones).
BAD_LANDING_ARGUMENTS: list[tuple[dict[str, object], str]] = [
    ({"destination": "relative/dir"}, "has no scheme"),
    ({"destination": ""}, "destination must be a URI"),
    ({"overwrite": "sometimes"}, "is not a policy"),
    ({"compression": "zstd"}, "compression='zstd' is not supported"),
    ({"max_attempts": 0}, "max_attempts must be a positive number"),
]


def result_line(
    custom_id: str, result_type: str = "succeeded", *, text: str = "ok", tokens: int = 3
) -> bytes:
    if result_type == "succeeded":
        result: dict[str, Any] = {
            "type": "succeeded",
            "message": {
                "id": f"msg_{custom_id}",
                "type": "message",
                "role": "assistant",
                "model": "claude-test",
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": tokens,
                    "output_tokens": 2 * tokens,
                    "cache_creation_input_tokens": 1,
                    "cache_read_input_tokens": None,
                },
            },
        }
    elif result_type == "errored":
        result = {
            "type": "errored",
            "error": {"type": "error", "error": {"type": "api_error", "message": "boom"}, "request_id": None},
        }
    else:
        result = {"type": result_type}
    # Deliberately not compact: landing must keep the server's exact bytes, spacing included.
    return (json.dumps({"custom_id": custom_id, "result": result}, separators=(", ", ": ")) + "\n").encode()


@dataclass
class FakeBatch:
    id: str
    lines: list[bytes]
    counts: dict[str, int]
    status: str = "ended"
    archived: bool = False
    # Bodies to serve instead of the lines, one per results request (then the real lines): cuts, garbage.
    bodies: list[bytes] = field(default_factory=list)
    # Statuses to report on successive retrieves before `status` (e.g. in_progress twice); an int is an
    # HTTP error status answered instead (e.g. 503).
    statuses: list[str | int] = field(default_factory=list)
    results_requests: int = 0
    retrieves: int = 0

    def body(self) -> bytes:
        self.results_requests += 1
        return self.bodies.pop(0) if self.bodies else b"".join(self.lines)

    def wire(self) -> dict[str, Any] | int:
        self.retrieves += 1
        status = self.statuses.pop(0) if self.statuses else self.status
        if isinstance(status, int):
            return status
        ended = status == "ended"
        counts = self.counts if ended else {"processing": sum(self.counts.values())}
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
            | counts,
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": "2026-01-01T01:00:00Z" if ended else None,
            "cancel_initiated_at": None,
            "archived_at": "2026-01-30T00:00:00Z" if self.archived else None,
            "results_url": f"{BASE_URL}/v1/messages/batches/{self.id}/results" if ended else None,
        }


class FakeAPI(fake_api.FakeAPI):
    """The shared fake API answering retrieve and results from ``batches`` (unknown ids: 404);
    ``get_service()`` makes a real ``BatchServiceAsync`` over it."""

    def __init__(self) -> None:
        super().__init__(default=self._answer)
        self.batches: dict[str, FakeBatch] = {}

    def add(self, batch_id: str, lines: list[bytes], **kwargs: Any) -> FakeBatch:
        counts: dict[str, int] | None = kwargs.pop("counts", None)
        if counts is None:
            counts = {}
            for line in lines:
                result_type = json.loads(line)["result"]["type"]
                counts[result_type] = counts.get(result_type, 0) + 1
        batch = FakeBatch(batch_id, lines, counts, **kwargs)
        self.batches[batch_id] = batch
        return batch

    def _answer(self, request: httpx.Request) -> httpx.Response | dict[str, Any] | int:
        parts = request.url.path.strip("/").split("/")
        batch = self.batches.get(parts[3]) if len(parts) >= 4 else None
        if batch is None:
            return 404
        if parts[-1] == "results":
            return httpx.Response(200, content=batch.body(), headers={"content-type": "application/x-jsonl"})
        return batch.wire()

    def get_service(self) -> BatchServiceAsync:
        return BatchServiceAsync(
            api_key="sk-test-key", base_url=BASE_URL, transport=self.transport(), max_retries=0
        )


def make_lines(prefix: str, n: int, result_type: str = "succeeded", **kwargs: Any) -> list[bytes]:
    return [result_line(f"{prefix}-{i}", result_type, **kwargs) for i in range(n)]
