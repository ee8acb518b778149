"""Everything one emulator process knows, shared by the gate, the API routes and the admin routes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from airflow_batches.emulator.clock import Clock
from airflow_batches.emulator.faults import FaultInjector
from airflow_batches.emulator.settings import FaultSettings, ServerSettings
from airflow_batches.emulator.store import BatchStore

__all__ = ["EmulatorState", "Stats"]


class Stats:
    """Counters tests use to prove what happened, e.g. that exactly one batch was created."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.faults_injected = 0
        self.results_cut = 0

    def as_dict(self, batches_created: int, batches_stored: int) -> dict[str, Any]:
        return {
            "batches_created": batches_created,
            "batches_stored": batches_stored,
            "requests": dict(self.requests),
            "faults_injected": self.faults_injected,
            "results_cut": self.results_cut,
        }


class EmulatorState:
    def __init__(self, settings: ServerSettings, faults: FaultSettings) -> None:
        self._initial = (settings, faults)
        self.settings = settings
        self.faults = FaultInjector(faults)
        self.clock = Clock()
        self.store = BatchStore()
        self.stats = Stats()

    def reset(self) -> None:
        """Back to how the process started: no batches, zero counters, real time, startup settings."""
        self.settings, faults = self._initial
        self.faults = FaultInjector(faults)
        self.clock.reset()
        self.store.clear()
        self.stats = Stats()

    def stats_dict(self) -> dict[str, Any]:
        return self.stats.as_dict(self.store.created_count, self.store.stored_count)
