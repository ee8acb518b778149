"""Resubmit rounds: which results are sent again, and the group's rounds and final counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_batches.batch_ref import BatchSnapshot, group_of, new_group
from airflow_batches.operators.resubmit import (
    DEFAULT_RESUBMIT_ERROR_TYPES,
    Resubmit,
    _classify,
    first_round,
    next_round,
    validate_resubmit,
)


def errored(custom_id: str, error_type: str) -> bytes:
    result = {"type": "errored", "error": {"type": "error", "error": {"type": error_type, "message": "x"}}}
    return json.dumps({"custom_id": custom_id, "result": result}).encode() + b"\n"


def other(custom_id: str, result_type: str) -> bytes:
    return json.dumps({"custom_id": custom_id, "result": {"type": result_type}}).encode() + b"\n"


def snapshot(batch_id: str, **counts: int) -> BatchSnapshot:
    full = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0, **counts}
    return {
        "id": batch_id,
        "processing_status": "ended",
        "request_counts": full,  # type: ignore[typeddict-item]
        "created_at": None,
        "ended_at": None,
        "expires_at": None,
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": None,
    }


def test_expired_and_transient_errors_are_resubmitted_nothing_else() -> None:
    found = Resubmit()
    wanted = frozenset(DEFAULT_RESUBMIT_ERROR_TYPES)
    lines = [
        errored("a", "overloaded_error"),
        errored("b", "api_error"),
        errored("c", "rate_limit_error"),
        errored("d", "timeout_error"),
        errored("e", "invalid_request_error"),
        errored("f", "authentication_error"),
        errored("g", "permission_error"),
        errored("h", "some_future_error"),
        other("i", "expired"),
        other("j", "canceled"),
        other("k", "succeeded"),
    ]
    for line in lines:
        _classify(line, wanted, found)
    assert found.custom_ids == {"a", "b", "c", "d", "i"}
    assert (found.errored, found.expired) == (4, 1)


def test_the_error_types_can_be_narrowed() -> None:
    found = Resubmit()
    for line in (errored("a", "overloaded_error"), errored("b", "api_error")):
        _classify(line, frozenset(validate_resubmit(1, ["api_error"])), found)
    assert found.custom_ids == {"b"}


@pytest.mark.parametrize("bad", ["invalid_request_error", "authentication_error", "permission_error"])
def test_errors_a_second_try_cannot_fix_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        validate_resubmit(2, ["api_error", bad])


def test_rounds_record_every_batch_and_counts_each_request_once_by_its_final_result() -> None:
    group: Any = first_round(new_group(["b1", "b2"], [6, 4], "f" * 64))
    first = [snapshot("b1", succeeded=4, errored=1, expired=1), snapshot("b2", succeeded=3, errored=1)]
    group = group_of(first, group)
    assert group["counts"] == {"processing": 0, "succeeded": 7, "errored": 2, "canceled": 0, "expired": 1}
    group = next_round(group, ["b3"], [2], Resubmit({"x", "y"}, errored=1, expired=1))
    assert group["batch_ids"] == ["b1", "b2", "b3"] and group["request_counts"] == [6, 4, 2]
    assert group["processing_status"] == "in_progress"
    assert group["counts"] == {"processing": 2, "succeeded": 7, "errored": 1, "canceled": 0, "expired": 0}
    group = group_of([snapshot("b3", succeeded=1, errored=1)], group)
    assert group["processing_status"] == "ended"
    assert group["counts"] == {"processing": 0, "succeeded": 8, "errored": 2, "canceled": 0, "expired": 0}
    assert sum(group["counts"].values()) == group["total_requests"] == 10
    assert [(r["batch_ids"], r["resubmitted"]) for r in group["rounds"]] == [(["b1", "b2"], 0), (["b3"], 2)]
    # The sensor's view: every batch of every round, each round's counts updated, each request once.
    every = group_of([*first, snapshot("b3", succeeded=1, errored=1)], group)
    assert every["counts"] == group["counts"] and every["batch_ids"] == ["b1", "b2", "b3"]


def test_the_trigger_takes_a_group_with_rounds_as_every_batch_of_every_round() -> None:
    from airflow_batches.triggers import BatchTrigger

    group: Any = first_round(new_group(["msgbatch_a"], [3], "f" * 64))
    group = next_round(group, ["msgbatch_b"], [1], Resubmit({"x"}, errored=1))
    trigger = BatchTrigger(batch_id=group, poll_interval=1)
    _, kwargs = trigger.serialize()
    assert kwargs["batch_id"] == ["msgbatch_a", "msgbatch_b"]
    json.dumps(kwargs)
