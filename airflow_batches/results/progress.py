"""One log line every few seconds while results land: lines, MB and MB/s so far."""

from __future__ import annotations

import logging
import time

__all__ = ["Progress"]


class Progress:
    def __init__(self, log: logging.Logger, interval: float) -> None:
        self._log = log
        self._interval = interval
        self._started = time.monotonic()
        self._next = self._started + interval
        self.lines = 0
        self.bytes = 0

    def add(self, lines: int, nbytes: int, label: str) -> None:
        self.lines += lines
        self.bytes += nbytes
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            self._log.info("%s: %s", label, self.summary(now))

    def summary(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        megabytes = self.bytes / 1e6
        return f"{self.lines:,} lines, {megabytes:,.1f} MB, {megabytes / elapsed:,.1f} MB/s"
