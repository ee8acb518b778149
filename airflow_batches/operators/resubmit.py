"""Resubmit rounds: which results of an ended round are worth sending again; the group records rounds.

A request is resubmitted when its result is ``expired`` (it never ran) or ``errored`` with an error type a
second try can fix (``resubmit_error_types``, by default overloaded, api, rate-limit and timeout errors). An
``invalid_request_error``, ``authentication_error`` or ``permission_error`` would fail again the same way, an
unknown type is not known to be safe, and a ``canceled`` request was stopped by someone: none of these is
resubmitted, and a round whose batches were canceled ends the rounds.

The group records every round (``rounds``), and its ``counts`` count each original request once, by its
final result::

    "rounds": [{"batch_ids": [...], "request_counts": [...], "resubmitted": n,
                "replaces": {"errored": e, "expired": x}}, ...]

``resubmitted`` is how many requests the round sent again (0 for round 1, the first submission) and
``replaces`` what their previous results were, so the final counts are every round's counts less the results
that a later round replaced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_batches.api.errors import ResultsStreamError
from airflow_batches.api.service import BatchServiceAsync
from airflow_batches.batch_ref import (
    BatchGroup,
    BatchSnapshot,
    RoundRecord,
    final_counts,
)
from airflow_batches.hooks.batch import BatchHook

__all__ = [
    "DEFAULT_RESUBMIT_ERROR_TYPES",
    "NEVER_RESUBMITTED",
    "Resubmit",
    "find_resubmittable",
    "first_round",
    "next_round",
    "validate_resubmit",
]

DEFAULT_RESUBMIT_ERROR_TYPES: tuple[str, ...] = (
    "overloaded_error",
    "api_error",
    "rate_limit_error",
    "timeout_error",
)
NEVER_RESUBMITTED: frozenset[str] = frozenset(
    {"invalid_request_error", "authentication_error", "permission_error"}
)
_STREAM_ATTEMPTS = 3


def validate_resubmit(rounds: Any, error_types: Any) -> tuple[str, ...]:
    """Check ``resubmit_rounds`` and ``resubmit_error_types`` when the DAG is parsed; the types as a tuple."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"resubmit_rounds must be a whole number >= 0, got {rounds!r}")
    if isinstance(error_types, str) or not isinstance(error_types, Iterable):
        raise ValueError(
            "resubmit_error_types must be a list of error types such as "
            f"{list(DEFAULT_RESUBMIT_ERROR_TYPES)}, "
            f"got {error_types!r}"
        )
    types = tuple(error_types)
    for error_type in types:
        if not isinstance(error_type, str) or not error_type:
            raise ValueError(f"resubmit_error_types holds {error_type!r}; each must be an error type name")
        if error_type in NEVER_RESUBMITTED:
            raise ValueError(
                f"resubmit_error_types holds {error_type!r}: such a request fails the same way every time "
                f"(never resubmitted: {sorted(NEVER_RESUBMITTED)}); fix the request instead"
            )
    return types


@dataclass
class Resubmit:
    """The requests of an ended round to send again: their custom_ids and what their results were."""

    custom_ids: set[str] = field(default_factory=set)
    errored: int = 0
    expired: int = 0


def _classify(line: bytes, error_types: frozenset[str], found: Resubmit) -> None:
    record = json.loads(line)
    result = record["result"]
    kind = result.get("type")
    if kind == "expired":
        found.custom_ids.add(record["custom_id"])
        found.expired += 1
    elif kind == "errored":
        error = result.get("error")
        detail = error.get("error") if isinstance(error, Mapping) else None
        error_type = detail.get("type") if isinstance(detail, Mapping) else None
        if error_type in error_types:
            found.custom_ids.add(record["custom_id"])
            found.errored += 1


async def _scan(
    service: BatchServiceAsync, batch_id: str, expected: int, error_types: frozenset[str]
) -> Resubmit:
    """One batch's resubmittable requests, read from its results stream (fetched again if it breaks)."""
    problem: ResultsStreamError | None = None
    for _ in range(_STREAM_ATTEMPTS):
        found = Resubmit()
        lines = 0
        try:
            async for line in service.results_lines(batch_id):
                lines += 1
                _classify(line, error_types, found)
        except ResultsStreamError as exc:
            problem = exc
            continue
        if lines == expected:
            return found
        problem = ResultsStreamError(
            f"the results of batch {batch_id} have {lines} lines, but the batch reports {expected} requests"
        )
    assert problem is not None
    raise problem


def find_resubmittable(
    hook: BatchHook, batches: Sequence[BatchSnapshot], error_types: Sequence[str]
) -> Resubmit:
    """The requests of the ended ``batches`` to resubmit, streaming their results (only the ids are kept)."""
    wanted = frozenset(error_types)

    async def scan_all(service: BatchServiceAsync) -> Resubmit:
        total = Resubmit()
        for batch in batches:
            counts = batch["request_counts"]
            expected = counts["succeeded"] + counts["errored"] + counts["canceled"] + counts["expired"]
            found = await _scan(service, batch["id"], expected, wanted)
            total.custom_ids |= found.custom_ids
            total.errored += found.errored
            total.expired += found.expired
        return total

    return hook.run(scan_all)


def first_round(group: BatchGroup) -> BatchGroup:
    """The create operator's new group, recording its batches as round 1."""
    record: RoundRecord = {
        "batch_ids": list(group["batch_ids"]),
        "request_counts": list(group.get("request_counts", [])),
        "resubmitted": 0,
        "replaces": {"errored": 0, "expired": 0},
        "counts": group["counts"],
    }
    return {**group, "rounds": [record]}


def next_round(
    group: BatchGroup, batch_ids: list[str], request_counts: list[int], found: Resubmit
) -> BatchGroup:
    """``group`` with a follow-up round just created for the ``found`` requests (all still processing)."""
    total = sum(request_counts)
    record: RoundRecord = {
        "batch_ids": batch_ids,
        "request_counts": request_counts,
        "resubmitted": total,
        "replaces": {"errored": found.errored, "expired": found.expired},
        "counts": {"processing": total, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
    }
    rounds = [*rounds_of(group), record]
    return {
        **group,
        "batch_ids": [*group["batch_ids"], *batch_ids],
        "request_counts": [*group.get("request_counts", []), *request_counts],
        "rounds": rounds,
        "processing_status": "in_progress",
        "counts": final_counts(rounds),
    }


def rounds_of(group: BatchGroup) -> list[RoundRecord]:
    """A copy of the group's round records (none for a group without rounds)."""
    return [RoundRecord(**r) for r in group.get("rounds", [])]
