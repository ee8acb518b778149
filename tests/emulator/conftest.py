"""Raw httpx clients for the wire, on the module's emulator (``module_emulator``, reset before each test)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.testing import RunningEmulator, echo_request

BATCHES = "/v1/messages/batches"


@pytest.fixture
def api(module_emulator: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=module_emulator.base_url, headers=module_emulator.headers, timeout=60
    ) as client:
        yield client


class Batches:
    """Small helpers over raw HTTP so tests read as the behaviour they check."""

    path = BATCHES

    def __init__(self, api: httpx.Client) -> None:
        self.api = api

    request = staticmethod(echo_request)

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
