"""Requests that fail on their first submission and succeed when sent again (the ``transient_*`` faults).

This is what a real job sees at scale: a share of requests come back ``errored`` with an error a second try
fixes (``overloaded_error``, ``api_error``, ...) or ``expired``, and succeed when resubmitted. Which requests
fail is a deterministic draw per ``custom_id`` (sha256 of the seed and the id), so the same input fails the
same way however it is split into batches; only the ids that did fail are remembered, so their next
submission runs normally.
"""

from __future__ import annotations

import hashlib

from airflow_batches.emulator.create_body import ParsedRequests
from airflow_batches.emulator.request_rules import RequestKind
from airflow_batches.emulator.settings import FaultSettings

__all__ = ["TransientFailures", "draw"]


def draw(seed: int, custom_id: str) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``custom_id``."""
    digest = hashlib.sha256(f"{seed}:{custom_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class TransientFailures:
    """Turns the drawn requests of a new batch into transient failures, once per ``custom_id``."""

    def __init__(self) -> None:
        self._failed_once: set[str] = set()

    def mark(self, requests: ParsedRequests, settings: FaultSettings) -> None:
        """Change the kind of the drawn, normal requests of ``requests`` (in place)."""
        errored, expired = settings.transient_errored_rate, settings.transient_expired_rate
        if not errored and not expired:
            return
        for index, custom_id in enumerate(requests.custom_ids):
            if requests.kinds[index] != RequestKind.NORMAL or custom_id in self._failed_once:
                continue
            value = draw(settings.transient_seed, custom_id)
            if value < errored:
                requests.kinds[index] = RequestKind.TRANSIENT_ERROR
            elif value < errored + expired:
                requests.kinds[index] = RequestKind.TRANSIENT_EXPIRE
            else:
                continue
            self._failed_once.add(custom_id)
