"""The partial-failure policy: what ended request counts mean for the task."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from airflow_batches.batch_ref import format_counts
from airflow_batches.errors import BatchOutcomeError
from airflow_batches.outcome import check_outcome, decide_outcome, validate_policy


def counts(**values: int) -> dict[str, int]:
    base = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    base.update(values)
    return base


def test_clean_success_logs_info_not_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="airflow_batches.outcome"):
        outcome = check_outcome(counts(succeeded=5), batch_ids=["msgbatch_a"])
    assert outcome.verdict == "success" and not outcome.warn
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "msgbatch_a" in caplog.text and "succeeded=5" in caplog.text


def test_partial_failure_succeeds_by_default_with_a_warning_giving_all_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_batches.outcome"):
        outcome = check_outcome(
            counts(succeeded=7, errored=2, expired=1), batch_ids=["msgbatch_a", "msgbatch_b"]
        )
    assert outcome.verdict == "success" and outcome.warn
    warning = caplog.records[-1]
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    for part in (
        "msgbatch_a",
        "msgbatch_b",
        "processing=0",
        "succeeded=7",
        "errored=2",
        "canceled=0",
        "expired=1",
    ):
        assert part in message


def test_ratio_exceeded_fails_without_retry_and_gives_the_numbers() -> None:
    with pytest.raises(BatchOutcomeError) as info:
        check_outcome(
            counts(succeeded=7, errored=2, expired=1), max_failure_ratio=0.25, batch_ids=["msgbatch_a"]
        )
    assert isinstance(info.value, AirflowFailException)
    text = str(info.value)
    assert (
        "3 of 10" in text and "30.00%" in text and "max_failure_ratio=0.25" in text and "msgbatch_a" in text
    )


def test_ratio_at_the_limit_passes_and_zero_ratio_fails_on_any_failure() -> None:
    assert check_outcome(counts(succeeded=3, errored=1), max_failure_ratio=0.25).verdict == "success"
    with pytest.raises(BatchOutcomeError):
        check_outcome(counts(succeeded=99, expired=1), max_failure_ratio=0.0)


def test_canceled_requests_are_not_failures_for_the_ratio() -> None:
    outcome = check_outcome(counts(succeeded=5, canceled=5), max_failure_ratio=0.0)
    assert outcome.verdict == "success" and outcome.warn


@pytest.mark.parametrize("ratio", [None, 0.5, 0.99])
def test_all_expired_fails_unless_everything_is_tolerated(ratio: float | None) -> None:
    with pytest.raises(BatchOutcomeError, match="every request expired"):
        check_outcome(counts(expired=4), max_failure_ratio=ratio)
    assert check_outcome(counts(expired=4), max_failure_ratio=1.0).verdict == "success"


def test_all_canceled_follows_on_all_canceled() -> None:
    with pytest.raises(BatchOutcomeError, match="every request was canceled"):
        check_outcome(counts(canceled=3))
    with pytest.raises(AirflowSkipException, match="every request was canceled"):
        check_outcome(counts(canceled=3), on_all_canceled="skip")
    outcome = check_outcome(counts(canceled=3), on_all_canceled="succeed")
    assert outcome.verdict == "success" and outcome.warn


def test_all_errored_is_partial_failure_by_default() -> None:
    assert decide_outcome(counts(errored=3)).verdict == "success"
    assert decide_outcome(counts(errored=3), max_failure_ratio=0.9).verdict == "fail"


def test_counts_of_unfinished_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="still processing"):
        decide_outcome(counts(processing=1, succeeded=1))
    with pytest.raises(ValueError, match="lack"):
        decide_outcome({"succeeded": 1})


@pytest.mark.parametrize(
    ("ratio", "mode", "match"),
    [
        (1.5, "fail", "max_failure_ratio"),
        (-0.1, "fail", "max_failure_ratio"),
        (True, "fail", "max_failure_ratio"),
        ("0.5", "fail", "max_failure_ratio"),
        (None, "ignore", "on_all_canceled"),
    ],
)
def test_bad_policy_is_rejected_with_the_allowed_values(ratio: Any, mode: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_policy(ratio, mode)


def test_format_counts_always_lists_all_five_in_api_order() -> None:
    assert format_counts({"succeeded": 2}) == "processing=0 succeeded=2 errored=0 canceled=0 expired=0"
