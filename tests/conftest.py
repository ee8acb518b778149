"""Test-wide setup: an isolated AIRFLOW_HOME set before anything imports airflow; emulator fixtures."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
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
