"""What an ended batch (or group of batches) means for the task: succeed, fail, or skip.

The policy, applied to the request counts summed over every batch of the group:

- **Partial failure does not fail the task by default.** A batch that ended with some ``errored`` or
  ``expired`` requests still has results worth landing (the successful ones, and the errors that say what to
  fix), so the task succeeds and a warning gives the counts.
- ``max_failure_ratio`` (``0.0`` to ``1.0``, default ``None`` = no limit): the task fails when
  ``(errored + expired) / total`` is strictly greater than it. ``0.0`` fails on any failed request.
- **Every request expired** means nothing ran at all: the task fails, unless ``max_failure_ratio`` is ``1.0``
  (which tolerates everything).
- **Every request canceled** (someone canceled the batch before anything ran): ``on_all_canceled`` decides,
  ``"fail"`` (default), ``"skip"`` or ``"succeed"``. A *partly* canceled group succeeds with a warning;
  canceled requests do not count as failures.

Failures raise :class:`BatchOutcomeError` (an ``AirflowFailException``: retrying the task would only
reattach to the same ended batches and reach the same verdict).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from airflow.providers.common.compat.sdk import AirflowSkipException

from airflow_batches.api.models import COUNT_KEYS
from airflow_batches.batch_ref import format_counts
from airflow_batches.errors import BatchOutcomeError

__all__ = [
    "OnAllCanceled",
    "Outcome",
    "check_outcome",
    "decide_outcome",
    "validate_policy",
]

log = logging.getLogger(__name__)

OnAllCanceled = Literal["fail", "skip", "succeed"]


@dataclass(frozen=True)
class Outcome:
    """The verdict on a group of ended batches and the sentence that explains it."""

    verdict: Literal["success", "fail", "skip"]
    message: str
    warn: bool = False


def validate_policy(max_failure_ratio: float | None, on_all_canceled: str) -> None:
    """Reject a bad policy when the task is defined, not when the batch has already been paid for."""
    if max_failure_ratio is not None and (
        isinstance(max_failure_ratio, bool)
        or not isinstance(max_failure_ratio, int | float)
        or not 0.0 <= max_failure_ratio <= 1.0
    ):
        raise ValueError(
            f"max_failure_ratio must be a number from 0.0 to 1.0 (share of errored + expired requests) "
            f"or None for no limit, got {max_failure_ratio!r}"
        )
    if on_all_canceled not in get_args(OnAllCanceled):
        raise ValueError(
            f"on_all_canceled must be one of {', '.join(map(repr, get_args(OnAllCanceled)))}, "
            f"got {on_all_canceled!r}"
        )


def decide_outcome(
    counts: Mapping[str, Any],
    *,
    max_failure_ratio: float | None = None,
    on_all_canceled: OnAllCanceled = "fail",
) -> Outcome:
    """Apply the policy (see the module docstring) to aggregate request counts, without side effects."""
    validate_policy(max_failure_ratio, on_all_canceled)
    missing = [key for key in COUNT_KEYS if key not in counts]
    if missing:
        raise ValueError(f"request counts lack {missing}; expected all of {list(COUNT_KEYS)}")
    if counts["processing"]:
        raise ValueError(
            f"the outcome of batches still processing was asked for ({format_counts(counts)}); "
            "decide only once every batch has ended"
        )
    total = sum(int(counts[key]) for key in COUNT_KEYS)
    summary = f"{total} request(s): {format_counts(counts)}"
    if total == 0:
        return Outcome("success", "the batches hold no requests")
    failed = int(counts["errored"]) + int(counts["expired"])
    ratio = failed / total
    if counts["canceled"] == total:
        if on_all_canceled == "succeed":
            return Outcome(
                "success", f"every request was canceled ({summary}); on_all_canceled='succeed'", True
            )
        return Outcome(
            on_all_canceled,
            f"every request was canceled before it ran ({summary}). Set on_all_canceled='skip' or "
            "'succeed' to accept canceled batches",
        )
    tolerates_all = max_failure_ratio is not None and max_failure_ratio >= 1.0
    if counts["expired"] == total and not tolerates_all:
        return Outcome(
            "fail",
            f"every request expired: the batch hit the 24 h limit before any ran ({summary}). Submit smaller "
            "batches or at a quieter time; set max_failure_ratio=1.0 to accept this",
        )
    if max_failure_ratio is not None and ratio > max_failure_ratio:
        return Outcome(
            "fail",
            f"{failed} of {total} requests failed (errored + expired = {ratio:.2%}), more than "
            f"max_failure_ratio={max_failure_ratio:g} ({summary}). Land the results to see why",
        )
    if failed or counts["canceled"]:
        return Outcome(
            "success", f"ended with unsuccessful requests ({summary}); land the results to see them", True
        )
    return Outcome("success", f"every request succeeded ({summary})")


def check_outcome(
    counts: Mapping[str, Any],
    *,
    max_failure_ratio: float | None = None,
    on_all_canceled: OnAllCanceled = "fail",
    batch_ids: list[str] | None = None,
) -> Outcome:
    """Apply the policy and act on it: log a warning, raise :class:`BatchOutcomeError` or skip.

    ``batch_ids`` only make the messages name the batches. Returns the :class:`Outcome` on success.
    """
    outcome = decide_outcome(counts, max_failure_ratio=max_failure_ratio, on_all_canceled=on_all_canceled)
    where = f"batch(es) {', '.join(batch_ids)}: " if batch_ids else ""
    if outcome.verdict == "fail":
        raise BatchOutcomeError(where + outcome.message)
    if outcome.verdict == "skip":
        raise AirflowSkipException(where + outcome.message)
    if outcome.warn:
        log.warning("%s%s", where, outcome.message)
    else:
        log.info("%s%s", where, outcome.message)
    return outcome
