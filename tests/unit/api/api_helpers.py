"""Wire-format factories and a fake clock shared by the api unit tests."""

from __future__ import annotations

from typing import Any

API_KEY = "sk-ant-test-SECRET-0123456789"
BASE_URL = "https://api.anthropic.com"


def batch_json(batch_id: str = "msgbatch_01", status: str = "in_progress", **changes: Any) -> dict[str, Any]:
    ended = status == "ended"
    body: dict[str, Any] = {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": 0 if ended else 2,
            "succeeded": 2 if ended else 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "created_at": "2024-08-20T18:37:24.100435Z",
        "expires_at": "2024-08-21T18:37:24.100435Z",
        "ended_at": "2024-08-20T19:00:00Z" if ended else None,
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": f"{BASE_URL}/v1/messages/batches/{batch_id}/results" if ended else None,
    }
    body.update(changes)
    return body


def request(custom_id: str = "req-1", **params: Any) -> dict[str, Any]:
    base = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    base.update(params)
    return {"custom_id": custom_id, "params": base}


class FakeClock:
    """Records the sleeps a RetryPolicy asks for instead of sleeping."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
