"""Test-wide setup: an isolated AIRFLOW_HOME set before anything imports airflow; emulator fixtures."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_batches.api import BatchServiceAsync
    from airflow_batches.emulator.testing import RunningEmulator

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-batches-tests-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")


@pytest.fixture(scope="session")
def airflow_home() -> str:
    return _AIRFLOW_HOME


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """A fresh emulator process on loopback for one test (real sockets, instant processing)."""
    # Imported here so test sessions that never start an emulator do not import the server stack.
    from airflow_batches.emulator.testing import run_emulator

    with run_emulator(processing_seconds=0) as running:
        yield running


@pytest.fixture(scope="module")
def emulator_process() -> Iterator[RunningEmulator]:
    """One emulator process per test module (starting one takes about a second); see ``module_emulator``."""
    from airflow_batches.emulator.testing import run_emulator

    with run_emulator(processing_seconds=0) as running:
        yield running


@pytest.fixture
def module_emulator(emulator_process: RunningEmulator) -> RunningEmulator:
    """The module's emulator process, reset for this test: no batches, clock and settings as started."""
    emulator_process.reset()
    return emulator_process


@pytest.fixture
def retry_delays() -> list[float]:
    """The waits ``emulator_service`` chose between retries, in order."""
    return []


@pytest.fixture
async def emulator_service(
    module_emulator: RunningEmulator, retry_delays: list[float]
) -> AsyncIterator[BatchServiceAsync]:
    """A client of the module's emulator whose retry waits are recorded in ``retry_delays``, not slept."""
    from airflow_batches.api import BatchServiceAsync, RetryPolicy

    async def sleep(seconds: float) -> None:
        retry_delays.append(seconds)
        await asyncio.sleep(0)  # a tick, not the delay: speed is never what is tested

    async with BatchServiceAsync(
        api_key=module_emulator.api_key,
        base_url=module_emulator.base_url,
        retry_policy=RetryPolicy(sleep=sleep),
    ) as service:
        yield service
