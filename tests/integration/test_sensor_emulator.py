"""BatchSensor against the real emulator: poke mode, and the deferrable round trip (defer -> the trigger
rebuilt from its serialized kwargs runs on a fresh loop -> execute_complete), as the triggerer does it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_batches.emulator.testing import RunningEmulator, run_emulator
from airflow_batches.errors import BatchAccessError, BatchOutcomeError
from airflow_batches.hooks import BatchHook
from airflow_batches.sensors import BatchSensor
from airflow_batches.triggers import BatchTrigger
from airflow_batches.waiting import wait_blocking


def requests(count: int, prefix: str = "r", **params: Any) -> list[dict[str, Any]]:
    message = {"role": "user", "content": "hello"}
    base = {"model": "claude-emulated", "max_tokens": 16, "messages": [message]}
    return [{"custom_id": f"{prefix}{n}", "params": {**base, **params}} for n in range(count)]


@pytest.fixture
def api(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    conn = {"conn_type": "anthropic_batches", "host": emulator.base_url, "password": emulator.api_key}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    return emulator


def defer_and_resume(sensor: BatchSensor) -> dict[str, Any]:
    """What Airflow does with a deferring sensor: the trigger is rebuilt from classpath + kwargs (as the
    triggerer does), run to its first event, and the sensor resumes with that event."""
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    classpath, kwargs = info.value.trigger.serialize()
    assert classpath == "airflow_batches.triggers.batch.BatchTrigger"
    event = wait_blocking(BatchTrigger(**json.loads(json.dumps(kwargs))))
    return sensor.execute_complete({}, event)


def test_poke_mode_waits_for_a_group(api: RunningEmulator) -> None:
    api.configure(processing_seconds=0.5)
    hook = BatchHook()
    group = {"batch_ids": [hook.create(requests(2, "a")).id, hook.create(requests(1, "b")).id]}
    result = BatchSensor(task_id="wait", batch_id=group, poke_interval=0.1, deferrable=False).execute({})
    assert result["batch_ids"] == group["batch_ids"]
    assert result["counts"] == {"processing": 0, "succeeded": 3, "errored": 0, "canceled": 0, "expired": 0}


def test_deferrable_round_trip_through_the_trigger(api: RunningEmulator) -> None:
    api.configure(processing_seconds=0.5)
    created = BatchHook().create(requests(2))
    sensor = BatchSensor(task_id="wait", batch_id=created.id, poke_interval=0.1, timeout=600, deferrable=True)
    result = defer_and_resume(sensor)
    assert result["counts"]["succeeded"] == 2 and result["batches"][0]["processing_status"] == "ended"


def test_deferrable_does_not_defer_for_an_ended_batch(api: RunningEmulator) -> None:
    created = BatchHook().create(requests(1))
    BatchHook().retrieve(created.id)  # processing_seconds=0: ended by now
    result = BatchSensor(task_id="wait", batch_id=created.id, deferrable=True).execute({})
    assert result["counts"]["succeeded"] == 1


def test_failure_ratio_fails_after_the_wait(api: RunningEmulator) -> None:
    api.configure(processing_seconds=0.3)
    created = BatchHook().create(requests(1, "ok") + requests(3, "bad", metadata={"emulator": "error"}))
    sensor = BatchSensor(
        task_id="wait", batch_id=created.id, poke_interval=0.1, deferrable=True, max_failure_ratio=0.5
    )
    with pytest.raises(BatchOutcomeError, match="3 of 4"):
        defer_and_resume(sensor)


def test_deferrable_timeout_comes_back_as_a_sensor_timeout(api: RunningEmulator) -> None:
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout

    api.configure(processing_seconds=3600)
    created = BatchHook().create(requests(1))
    sensor = BatchSensor(task_id="wait", batch_id=created.id, poke_interval=0.1, timeout=0.5, deferrable=True)
    with pytest.raises(AirflowSensorTimeout, match=created.id):
        defer_and_resume(sensor)


def test_a_rejected_key_fails_the_poke_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_emulator(api_key="sk-ant-the-right-key-2468", processing_seconds=0) as keyed:
        conn = {"conn_type": "anthropic", "host": keyed.base_url, "password": "sk-ant-a-wrong-key-1357"}
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
        with pytest.raises(BatchAccessError) as info:
            BatchSensor(task_id="wait", batch_id="msgbatch_0123456789abcdef01234567", deferrable=False).poke(
                {}
            )
    assert "sk-ant-a-wrong-key-1357" not in str(info.value) and "rejected" in str(info.value)
