"""Fault injection: which API requests fail, with which headers, and which results downloads are cut."""

from __future__ import annotations

import email.utils
import math
import random
import time
from typing import Any

from airflow_batches.emulator.settings import FaultSettings, Operation
from airflow_batches.emulator.transient import TransientFailures

__all__ = ["FAULT_MESSAGES", "FaultInjector"]

FAULT_MESSAGES: dict[int, str] = {
    429: "Number of requests has exceeded your rate limit (emulator fault injection)",
    500: "Internal server error (emulator fault injection)",
    504: "Request timed out (emulator fault injection)",
    529: "Overloaded (emulator fault injection)",
}


class FaultInjector:
    """Holds the fault settings and the counters they drive (remaining forced failures, remaining cuts)."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self._fail_first_left = settings.fail_first
        self._cuts_left = settings.cut_results_times
        self.transient = TransientFailures()

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes``; a counter restarts only when a setting it depends on is among them."""
        self.settings = self.settings.updated(changes)
        if "seed" in changes:
            self._rng = random.Random(self.settings.seed)
        if "fail_first" in changes:
            self._fail_first_left = self.settings.fail_first
        if {"cut_results_after", "cut_results_times"} & changes.keys():
            self._cuts_left = self.settings.cut_results_times

    def should_fail(self, operation: Operation) -> bool:
        if operation not in self.settings.fail_ops:
            return False
        if self._fail_first_left > 0:
            self._fail_first_left -= 1
            return True
        return self.settings.fail_rate > 0 and self._rng.random() < self.settings.fail_rate

    def failure_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        seconds = self.settings.retry_after_seconds
        mode = self.settings.retry_after_mode
        if seconds is not None:
            # retry-after carries whole seconds as the API sends it; retry-after-ms the precise value.
            if mode in ("both", "seconds"):
                headers["retry-after"] = str(math.ceil(seconds))
            if mode in ("both", "ms"):
                headers["retry-after-ms"] = f"{seconds * 1000:g}"
            if mode == "date":
                # Wall time, not the emulated clock: a client compares the date with its own real clock.
                # Rounded up so the date is never earlier than the delay asks.
                headers["retry-after"] = email.utils.formatdate(math.ceil(time.time() + seconds), usegmt=True)
        if self.settings.should_retry is not None:
            headers["x-should-retry"] = "true" if self.settings.should_retry else "false"
        return headers

    def take_cut(self) -> int | None:
        """The byte count after which this results download is cut, or None to send it whole."""
        if self.settings.cut_results_after is None:
            return None
        if self._cuts_left is None:
            return self.settings.cut_results_after
        if self._cuts_left == 0:
            return None
        self._cuts_left -= 1
        return self.settings.cut_results_after

    def public(self) -> dict[str, Any]:
        shown = self.settings.model_dump()
        shown["fail_first_remaining"] = self._fail_first_left
        shown["cut_results_remaining"] = self._cuts_left
        return shown
