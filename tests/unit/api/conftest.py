"""Fixtures for the api unit tests: a fake clock and services over ``httpx.MockTransport``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api_helpers import API_KEY, BASE_URL, FakeClock

from airflow_batches.api import BatchServiceAsync, RetryPolicy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_service(clock: FakeClock) -> Callable[..., BatchServiceAsync]:
    """``make_service(handler, **kwargs)``: a service over ``httpx.MockTransport`` on the fake clock."""

    def make(
        handler: Callable[[httpx.Request], Any], *, max_retries: int = 2, **kwargs: Any
    ) -> BatchServiceAsync:
        policy = RetryPolicy(
            max_retries=max_retries, sleep=clock.sleep, random=lambda: 0.0, now=lambda: 1_000_000.0
        )
        return BatchServiceAsync(
            api_key=API_KEY,
            base_url=kwargs.pop("base_url", BASE_URL),
            transport=httpx.MockTransport(handler),
            retry_policy=policy,
            **kwargs,
        )

    return make
