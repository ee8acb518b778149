"""BatchSensor over ``httpx.MockTransport``: poke, reschedule and deferrable paths, the outcome policy, and
``execute_complete`` for every kind of event. The real emulator and loop are in tests/integration."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from functools import partial
from typing import Any

import ops_fakes
import pytest
from airflow.exceptions import AirflowRescheduleException
from airflow.providers.common.compat.sdk import (
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
    conf,
)
from fake_api import FakeAPI

from airflow_batches.api import BatchServiceAsync
from airflow_batches.batch_ref import batch_snapshot
from airflow_batches.errors import (
    BatchAccessError,
    BatchOutcomeError,
    BatchWaitError,
    BatchWaitTimeout,
    InvalidBatchEventError,
)
from airflow_batches.events import make_event
from airflow_batches.hooks import batch as hook_module
from airflow_batches.sensors import BatchSensor
from airflow_batches.triggers import BatchTrigger

# Every sensor test batch holds 4 requests.
batch_json = partial(ops_fakes.batch_json, total=4)

KEY = "sk-ant-sensor-unit-secret-31337"


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The sensor must not need a metadata database outside a running task."""
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path}/missing/dir/airflow.db")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    fake = FakeAPI()
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT",
        json.dumps(
            {
                "conn_type": "anthropic_batches",
                "host": "http://api.test",
                "password": KEY,
                "extra": {"max_retries": 0},
            }
        ),
    )
    monkeypatch.setattr(
        hook_module,
        "BatchServiceAsync",
        partial(BatchServiceAsync, transport=fake.transport()),
    )
    return fake


def sensor(**kwargs: Any) -> BatchSensor:
    kwargs.setdefault("batch_id", "msgbatch_a")
    kwargs.setdefault("poke_interval", 5)
    return BatchSensor(task_id="wait", **kwargs)


def test_batch_id_is_templated_and_policy_checked_at_definition() -> None:
    assert "batch_id" in BatchSensor.template_fields
    with pytest.raises(ValueError, match="max_failure_ratio"):
        sensor(max_failure_ratio=2)
    with pytest.raises(ValueError, match="on_all_canceled"):
        sensor(on_all_canceled="maybe")
    with pytest.raises(ValueError, match="poke_interval must be more than 0"):
        sensor(deferrable=True, poke_interval=0)
    with pytest.raises(ValueError, match="max_poll_errors must be an integer >= 1"):
        sensor(max_poll_errors=0)


def test_deferrable_defaults_to_the_airflow_setting() -> None:
    assert sensor().deferrable is conf.getboolean("operators", "default_deferrable", fallback=False)


def test_poke_is_false_while_processing_and_returns_the_result_once_ended(api: FakeAPI) -> None:
    api.script(
        "msgbatch_a", batch_json("msgbatch_a"), batch_json("msgbatch_a", "ended", succeeded=3, errored=1)
    )
    task = sensor()
    assert task.poke({}) is False
    done = task.poke({})
    assert isinstance(done, PokeReturnValue) and done.is_done
    assert done.xcom_value["batch_ids"] == ["msgbatch_a"]
    assert done.xcom_value["processing_status"] == "ended"
    assert done.xcom_value["counts"] == {
        "processing": 0,
        "succeeded": 3,
        "errored": 1,
        "canceled": 0,
        "expired": 0,
    }
    assert done.xcom_value["batches"][0]["id"] == "msgbatch_a"
    json.dumps(done.xcom_value)


@pytest.mark.parametrize(
    "reference",
    [
        ["msgbatch_a", "msgbatch_b"],
        {"batch_ids": ["msgbatch_a", "msgbatch_b"], "total_requests": 8},
        json.dumps({"batch_ids": ["msgbatch_a", "msgbatch_b"]}),
    ],
)
def test_poke_accepts_the_create_operators_group(api: FakeAPI, reference: Any) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended"))
    api.script("msgbatch_b", batch_json("msgbatch_b"), batch_json("msgbatch_b", "ended"))
    task = sensor(batch_id=reference)
    assert task.poke({}) is False
    done = task.poke({})
    assert isinstance(done, PokeReturnValue) and done.xcom_value["counts"]["succeeded"] == 8


def test_a_group_with_resubmit_rounds_counts_each_request_once_by_its_final_result(api: FakeAPI) -> None:
    # Round 1: 4 requests, 1 errored transiently and 1 expired; round 2 resent those 2 and both succeeded.
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended", succeeded=2, errored=1, expired=1))
    api.script("msgbatch_b", batch_json("msgbatch_b", "ended", total=2, succeeded=2))
    zero = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    group = {
        "batch_ids": ["msgbatch_a", "msgbatch_b"],
        "request_counts": [4, 2],
        "total_requests": 4,
        "rounds": [
            {
                "batch_ids": ["msgbatch_a"],
                "request_counts": [4],
                "resubmitted": 0,
                "replaces": {"errored": 0, "expired": 0},
                "counts": zero,
            },
            {
                "batch_ids": ["msgbatch_b"],
                "request_counts": [2],
                "resubmitted": 2,
                "replaces": {"errored": 1, "expired": 1},
                "counts": zero,
            },
        ],
    }
    done = sensor(batch_id=json.dumps(group), max_failure_ratio=0.0).poke({})
    assert isinstance(done, PokeReturnValue)
    assert done.xcom_value["counts"] == {**zero, "succeeded": 4}
    assert done.xcom_value["rounds"][0]["counts"]["errored"] == 1


def test_poke_tolerates_transient_errors(api: FakeAPI, capfd: Any) -> None:
    api.script("msgbatch_a", 503, batch_json("msgbatch_a", "ended"))
    task = sensor()
    assert task.poke({}) is False
    assert "trying again at the next poke" in capfd.readouterr().out
    assert isinstance(task.poke({}), PokeReturnValue)


@pytest.mark.parametrize("status", [404, 401])
def test_poke_fails_at_once_on_answers_that_will_not_change(api: FakeAPI, status: int) -> None:
    api.script("msgbatch_a", status)
    with pytest.raises(BatchAccessError, match="msgbatch_a"):
        sensor().poke({})


def test_poke_mode_execute_waits_then_returns_the_counts(api: FakeAPI) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a"), 500, batch_json("msgbatch_a", "ended"))
    result = sensor(poke_interval=0.01, deferrable=False).execute({})
    assert result["counts"]["succeeded"] == 4 and len(api.requests) == 3


def test_outcome_policy_applies_when_ended(api: FakeAPI) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended", succeeded=1, expired=3))
    with pytest.raises(BatchOutcomeError, match="3 of 4"):
        sensor(max_failure_ratio=0.5).poke({})
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended", canceled=4))
    with pytest.raises(AirflowSkipException):
        sensor(on_all_canceled="skip").poke({})


def test_reschedule_mode_keeps_no_state_between_pokes(api: FakeAPI) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a"))
    task = sensor(mode="reschedule", deferrable=False)
    task.log  # noqa: B018 - Airflow's lazily cached logger is not sensor state
    before = dict(vars(task))

    class TI:
        def get_first_reschedule_date(self, context: Any) -> None:
            return None

    with pytest.raises(AirflowRescheduleException):
        task.execute({"ti": TI()})
    assert vars(task) == before


def test_deferrable_checks_first_and_does_not_defer_when_already_ended(api: FakeAPI) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended"))
    result = sensor(deferrable=True).execute({})
    assert result["counts"]["succeeded"] == 4


@pytest.mark.parametrize("first_answer", ["processing", 500])
def test_deferrable_defers_to_the_trigger_with_an_absolute_deadline(api: FakeAPI, first_answer: Any) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a") if first_answer == "processing" else first_answer)
    task = sensor(
        deferrable=True, timeout=3600, poke_interval=20, max_poll_errors=7, conn_id="anthropic_default"
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        task.execute({})
    deferred = info.value
    assert isinstance(deferred.trigger, BatchTrigger) and deferred.method_name == "execute_complete"
    _, kwargs = deferred.trigger.serialize()
    assert kwargs["batch_id"] == ["msgbatch_a"] and kwargs["poll_interval"] == 20.0
    assert kwargs["max_poll_errors"] == 7 and kwargs["cancel_on_kill"] is False
    assert before + 3600 <= kwargs["deadline"] <= time.time() + 3600
    # Airflow's own deferral timeout is only a backstop behind the trigger's deadline.
    assert deferred.timeout is not None and deferred.timeout > timedelta(seconds=3600)


def test_deferrable_fails_before_deferring_on_a_fatal_answer(api: FakeAPI) -> None:
    api.script("msgbatch_a", 404)
    with pytest.raises(BatchAccessError):
        sensor(deferrable=True).execute({})


def event(status: Any, reason: Any, *, ended: bool = True, **counts: int) -> dict[str, Any]:
    from airflow_batches.api import MessageBatch

    batch = MessageBatch.model_validate(
        batch_json("msgbatch_a", "ended" if ended else "in_progress", **counts)
    )
    return dict(make_event(status, reason, "what happened", ["msgbatch_a"], [batch_snapshot(batch)]))


def test_execute_complete_success_applies_the_policy() -> None:
    result = sensor().execute_complete({}, event("success", "ended", succeeded=2, errored=2))
    assert result["counts"]["errored"] == 2 and result["batch_ids"] == ["msgbatch_a"]
    with pytest.raises(BatchOutcomeError):
        sensor(max_failure_ratio=0.1).execute_complete({}, event("success", "ended", succeeded=2, errored=2))


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        ("timeout", "deadline", BatchWaitTimeout),
        ("error", "errors_exhausted", BatchWaitError),
        ("error", "not_found", BatchAccessError),
        ("error", "auth", BatchAccessError),
    ],
)
def test_execute_complete_raises_for_each_failure(status: str, reason: str, kind: type[Exception]) -> None:
    with pytest.raises(kind, match="what happened"):
        sensor().execute_complete({}, event(status, reason, ended=False))


def test_execute_complete_rejects_malformed_events() -> None:
    with pytest.raises(InvalidBatchEventError):
        sensor().execute_complete({}, {"status": "success"})
    with pytest.raises(InvalidBatchEventError):
        sensor().execute_complete({}, None)


def test_soft_fail_turns_a_timeout_event_into_a_skip() -> None:
    task = sensor(soft_fail=True)
    with pytest.raises(AirflowSkipException):
        task.resume_execution("execute_complete", {"event": event("timeout", "deadline", ended=False)}, {})
