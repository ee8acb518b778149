"""The emulator's clock: real time plus an offset that tests move forward to reach expiry and archival."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["Clock"]


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset_seconds(self) -> float:
        return self._offset.total_seconds()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward: seconds must be >= 0")
        self._offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        self._offset = timedelta()
