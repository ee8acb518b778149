"""Airflow's own deferral timeout: always set, so a task never stays deferred for ever without a triggerer."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from airflow_batches.waiting import deferral_timeout


def test_without_a_deadline_the_bound_is_a_batch_lifetime_plus_the_grace() -> None:
    assert deferral_timeout(None, 30.0) == timedelta(hours=24, seconds=300)
    assert deferral_timeout(None, 600.0) == timedelta(hours=24, seconds=1800)


def test_with_a_deadline_the_bound_is_the_time_left_plus_the_grace() -> None:
    left = deferral_timeout(time.time() + 3600, 30.0).total_seconds()
    assert left == pytest.approx(3600 + 300, abs=2)
    assert deferral_timeout(time.time() - 10, 30.0) == timedelta(seconds=300)
