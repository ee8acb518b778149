"""Remember which batches a create task made, so a retry reattaches to them instead of paying twice.

Why not XCom: in Airflow 3 a new try starts by clearing the task's XComs (only a resume from
deferral keeps them), so XCom cannot carry the batch ids from a crashed try to the next one. Airflow 3.3 added
``context["task_state_store"]``: key/value rows scoped to (dag_id, run_id, task_id, map_index) in the metadata
database, shared by every try of that task instance and kept after a crash. ``CreateLedger`` keeps one value
in it (``LEDGER_KEY``)::

    {"fingerprint": <sha256 of the group>, "wait_started_at": <epoch seconds>,
     "parts": [{"fingerprint", "requests", "batch_id", "started_at"}]}

``wait_started_at`` is when the first try of this task instance began working on this input: the create
operator's ``timeout`` counts from it, so a retry does not get a new full ``timeout`` (the deadline is the
same for every try). When the deadline passes the operator clears it (:meth:`CreateLedger.restart_clock`),
so clearing a timed-out task by hand waits a fresh ``timeout`` on the same batches.

Each resubmit round (the create operator's ``resubmit_rounds``) has a ledger of its own under
:func:`round_key` (``LEDGER_KEY.round2``, ...), for the group of batches that round sends: a retry recomputes
which requests the round resubmits from the previous round's results (the same ended batches give the same
set, so the same fingerprint) and reattaches to the batches recorded there.

``parts`` has one entry per batch of the group, in order. Before each ``create`` the part gets
``started_at``; right after ``create`` returns it gets ``batch_id``. A retry with the same input (same group
fingerprint) reuses every recorded ``batch_id`` and creates only the parts that have none, so a crash in the
middle of a group resumes where it stopped. A retry with different input starts a new ledger. (The create
operator also creates a part again when its recorded batch was cancelled or deleted in the meantime.)

The one window no client can close: the server has created a batch but the crash comes before the response
(and so the id) arrives. The part then has ``started_at`` and no ``batch_id``; the retry logs a warning that
names the time and size so the orphan can be found with ``list`` and cancelled, and creates the batch again.
When the worker survives and the client *knows* the outcome is ambiguous (``AmbiguousCreateError``), the
create operator fails without retrying instead, so nothing is paid twice without a human deciding.

Before Airflow 3.3 (no task state store) the same values are kept in Airflow Variables of this task
instance: see :mod:`airflow_batches.ledger_store`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["LEDGER_KEY", "CreateLedger", "LedgerPart", "StateStore", "group_fingerprint", "round_key"]

LEDGER_KEY = "airflow_batches.create_ledger"


def round_key(round_number: int) -> str:
    """The ledger key of a resubmit round: round 1 (the first submission) keeps ``LEDGER_KEY``."""
    return LEDGER_KEY if round_number == 1 else f"{LEDGER_KEY}.round{round_number}"


log = logging.getLogger(__name__)

# Module-level so tests can move the clock between tries.
_now = time.time


class StateStore(Protocol):
    """What the ledger uses of Airflow's ``TaskStateStoreAccessor`` (``VariableStateStore`` before 3.3)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


def group_fingerprint(part_fingerprints: Sequence[str]) -> str:
    """One sha256 for the whole group: the same requests split the same way give the same value."""
    digest = hashlib.sha256()
    for part in part_fingerprints:
        digest.update(part.encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass
class LedgerPart:
    fingerprint: str
    requests: int
    batch_id: str | None = None
    started_at: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "requests": self.requests,
            "batch_id": self.batch_id,
            "started_at": self.started_at,
        }


class CreateLedger:
    """Which batch of a group has been created, persisted after every change."""

    def __init__(
        self,
        store: StateStore,
        fingerprint: str,
        parts: list[LedgerPart],
        wait_started_at: float | None = None,
        key: str = LEDGER_KEY,
    ) -> None:
        self._store = store
        self._key = key
        self.fingerprint = fingerprint
        self.parts = parts
        self.wait_started_at = wait_started_at

    @classmethod
    def load(
        cls,
        store: StateStore,
        parts: Sequence[tuple[str, int]],
        *,
        where: str = "this task",
        key: str = LEDGER_KEY,
    ) -> CreateLedger:
        """The ledger for ``(fingerprint, request_count)`` parts, reusing a matching earlier one.

        Its ``wait_started_at`` is the earlier one's, or now (saved at once, so a crash later in this try
        keeps it).
        """
        ledger = cls._load(store, parts, where, key)
        if ledger.wait_started_at is None:
            ledger.wait_started_at = _now()
            ledger._save()
        return ledger

    @classmethod
    def _load(cls, store: StateStore, parts: Sequence[tuple[str, int]], where: str, key: str) -> CreateLedger:
        fresh = [LedgerPart(fingerprint=fp, requests=n) for fp, n in parts]
        fingerprint = group_fingerprint([fp for fp, _ in parts])
        stored = store.get(key)
        if not isinstance(stored, Mapping) or stored.get("fingerprint") != fingerprint:
            if isinstance(stored, Mapping):
                earlier = [p.get("batch_id") for p in stored.get("parts", []) if isinstance(p, Mapping)]
                log.info(
                    "An earlier try of %s created %s for different input (fingerprint changed); they "
                    "are left alone and new batches are created for the current input.",
                    where,
                    [b for b in earlier if b] or "no batch",
                )
            return cls(store, fingerprint, fresh, key=key)
        stored_parts = stored.get("parts")
        if not isinstance(stored_parts, list):
            stored_parts = []
        stored_parts = stored_parts + [None] * (len(fresh) - len(stored_parts))
        ledger = cls(
            store,
            fingerprint,
            [_part_from_json(p, f) for p, f in zip(stored_parts, fresh, strict=True)],
            wait_started_at=_epoch(stored.get("wait_started_at")),
            key=key,
        )
        for index, part in enumerate(ledger.parts):
            if part.batch_id:
                log.info(
                    "Reattaching to batch %s (part %d of %d) created by an earlier try.",
                    part.batch_id,
                    index + 1,
                    len(ledger.parts),
                )
            elif part.started_at:
                log.warning(
                    "An earlier try started creating part %d of %d (%d requests) at %s and stopped before "
                    "the API answered. The server may have created that batch anyway (this window cannot be "
                    "closed from the client): look for a batch created around then with %d requests in "
                    "`list` and cancel it if it exists. Creating the part again now.",
                    index + 1,
                    len(ledger.parts),
                    part.requests,
                    part.started_at,
                    part.requests,
                )
        return ledger

    def batch_id(self, index: int) -> str | None:
        return self.parts[index].batch_id

    def mark_started(self, index: int) -> None:
        """Record the intent before ``create`` so a crash inside the call is reported on retry."""
        self.parts[index].started_at = datetime.now(UTC).isoformat()
        self._save()

    def record(self, index: int, batch_id: str) -> None:
        """Record the created batch right after ``create`` returns, before anything else can fail."""
        self.parts[index].batch_id = batch_id
        self._save()

    def deadline(self, timeout: float | None) -> float | None:
        """The epoch deadline ``timeout`` seconds after the first try started: the same for every try."""
        if timeout is None:
            return None
        started = self.wait_started_at if self.wait_started_at is not None else _now()
        return started + timeout

    @staticmethod
    def restart_clock(store: StateStore) -> None:
        """Forget when waiting started (the deadline has passed): the next try counts ``timeout`` anew."""
        stored = store.get(LEDGER_KEY)
        if isinstance(stored, Mapping) and stored.get("wait_started_at") is not None:
            store.set(LEDGER_KEY, {**stored, "wait_started_at": None})

    @staticmethod
    def started_at(store: StateStore) -> float | None:
        """When the first try started waiting (``wait_started_at``), as stored; ``None`` if unknown."""
        stored = store.get(LEDGER_KEY)
        return _epoch(stored.get("wait_started_at")) if isinstance(stored, Mapping) else None

    @staticmethod
    def discard(store: StateStore, rounds: int = 1) -> None:
        """Drop the ledgers of ``rounds`` rounds once the task succeeded: clearing it means "run it again"."""
        for number in range(1, rounds + 1):
            store.delete(round_key(number))

    def _save(self) -> None:
        self._store.set(
            self._key,
            {
                "fingerprint": self.fingerprint,
                "wait_started_at": self.wait_started_at,
                "parts": [part.as_json() for part in self.parts],
            },
        )


def _part_from_json(stored: Any, fresh: LedgerPart) -> LedgerPart:
    if not isinstance(stored, Mapping) or stored.get("fingerprint") != fresh.fingerprint:
        return fresh
    batch_id = stored.get("batch_id")
    started_at = stored.get("started_at")
    return LedgerPart(
        fingerprint=fresh.fingerprint,
        requests=fresh.requests,
        batch_id=batch_id if isinstance(batch_id, str) and batch_id else None,
        started_at=started_at if isinstance(started_at, str) else None,
    )


def _epoch(value: Any) -> float | None:
    """A stored epoch time, or ``None`` for anything else (the ledger may predate the field)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
