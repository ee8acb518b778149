"""One emulator process for the emulator tests, reset before each test; raw httpx clients for the wire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.testing import RunningEmulator, run_emulator

BATCHES = "/v1/messages/batches"


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[RunningEmulator]:
    with run_emulator(processing_seconds=0) as running:
        yield running


@pytest.fixture
def emu(shared_emulator: RunningEmulator) -> RunningEmulator:
    """The shared emulator with no batches, real time and its startup settings."""
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture
def api(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=emu.headers, timeout=60) as client:
        yield client


class Batches:
    """Small helpers over raw HTTP so tests read as the behaviour they check."""

    path = BATCHES

    def __init__(self, api: httpx.Client) -> None:
        self.api = api

    @staticmethod
    def request(custom_id: str, text: str = "hello", **params: Any) -> dict[str, Any]:
        """One batch request whose reply will echo ``text``; ``params`` override or add fields."""
        body: dict[str, Any] = {
            "model": "claude-test",
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": text}],
        }
        body.update(params)
        return {"custom_id": custom_id, "params": body}

    def create(self, requests: list[dict[str, Any]]) -> dict[str, Any]:
        response = self.api.post(BATCHES, json={"requests": requests})
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        return batch

    def create_n(self, count: int, prefix: str = "r") -> dict[str, Any]:
        return self.create([self.request(f"{prefix}{i}", f"text {i}") for i in range(count)])

    def get(self, batch_id: str) -> dict[str, Any]:
        response = self.api.get(f"{BATCHES}/{batch_id}")
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        return batch

    def results(self, batch_id: str) -> httpx.Response:
        return self.api.get(f"{BATCHES}/{batch_id}/results")


@pytest.fixture
def batches(api: httpx.Client) -> Batches:
    return Batches(api)
