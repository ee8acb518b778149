"""BatchCancelOperator and BatchDeleteOperator over an in-memory API behind the hook facade."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from ops_fakes import FakeBatchHook, batch, context

from airflow_batches.errors import BatchAccessError, BatchMissingError, BatchStillRunningError
from airflow_batches.operators import manage as manage_module
from airflow_batches.operators.manage import BatchCancelOperator, BatchDeleteOperator

RUNNING, DONE, GONE = "msgbatch_running", "msgbatch_done", "msgbatch_gone"


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> FakeBatchHook:
    fake = FakeBatchHook()
    fake.batches = {RUNNING: batch(RUNNING, 3), DONE: batch(DONE, 2, "ended")}
    for cls in (BatchCancelOperator, BatchDeleteOperator):
        monkeypatch.setattr(cls, "hook", property(lambda self: fake))
    return fake


def group(*ids: str) -> dict[str, Any]:
    return {"batch_ids": list(ids), "request_counts": [1] * len(ids), "processing_status": "in_progress"}


def test_cancel_cancels_only_running_batches_of_a_group(hook: FakeBatchHook) -> None:
    result = BatchCancelOperator(task_id="cancel", batch_id=group(RUNNING, DONE)).execute(context())
    assert hook.cancelled == [RUNNING]
    assert result["batch_ids"] == [RUNNING, DONE] and result["processing_status"] == "canceling"


def test_a_group_with_resubmit_rounds_is_taken_as_it_is(hook: FakeBatchHook) -> None:
    # Round 1 ended (DONE), round 2 still running: cancel and delete act on every round's batches.
    rounds = {
        **group(DONE, RUNNING),
        "total_requests": 2,
        "rounds": [
            {"batch_ids": [DONE], "request_counts": [2], "resubmitted": 0},
            {"batch_ids": [RUNNING], "request_counts": [1], "resubmitted": 1},
        ],
    }
    cancelled = BatchCancelOperator(task_id="cancel", batch_id=rounds).execute(context())
    assert hook.cancelled == [RUNNING] and cancelled["batch_ids"] == [DONE, RUNNING]
    hook.end([RUNNING], canceled=3)
    deleted = BatchDeleteOperator(task_id="delete", batch_id=rounds).execute(context())
    assert deleted == {"deleted": [DONE, RUNNING], "missing": []}


def test_cancel_and_wait_defers_until_the_batches_end(hook: FakeBatchHook) -> None:
    op = BatchCancelOperator(task_id="cancel", batch_id=RUNNING, wait_for_cancel=True, deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context())
    _, kwargs = info.value.trigger.serialize()
    assert kwargs["cancel_on_kill"] is False
    assert kwargs["deadline"] is None and info.value.timeout is None  # no timeout: no deferral bound
    hook.end([RUNNING], canceled=3)
    result = op.execute_complete(context(), hook.event(ids=[RUNNING]))
    assert result["processing_status"] == "ended" and result["counts"]["canceled"] == 3


def test_cancel_of_a_missing_batch_is_a_clear_failure(hook: FakeBatchHook) -> None:
    with pytest.raises(BatchMissingError, match="does not exist"):
        BatchCancelOperator(task_id="cancel", batch_id=GONE).execute(context())


def test_unusable_batch_reference_fails_clearly(hook: FakeBatchHook) -> None:
    with pytest.raises(AirflowFailException, match="batch_id is not usable"):
        BatchCancelOperator(task_id="cancel", batch_id={"nothing": 1}).execute(context())


def test_delete_an_ended_batch(hook: FakeBatchHook) -> None:
    result = BatchDeleteOperator(task_id="delete", batch_id=DONE).execute(context())
    assert result == {"deleted": [DONE], "missing": []} and hook.deleted == [DONE]


def test_delete_of_a_running_batch_without_cancel_if_running_deletes_nothing(hook: FakeBatchHook) -> None:
    with pytest.raises(BatchStillRunningError, match="cancel_if_running=True") as info:
        BatchDeleteOperator(task_id="delete", batch_id=[DONE, RUNNING]).execute(context())
    assert RUNNING in str(info.value) and hook.deleted == [] and hook.cancelled == []


def test_delete_with_cancel_if_running_cancels_waits_deferred_then_deletes(hook: FakeBatchHook) -> None:
    op = BatchDeleteOperator(
        task_id="delete",
        batch_id=[RUNNING, DONE, GONE],
        cancel_if_running=True,
        missing_ok=True,
        deferrable=True,
        timeout=60,
    )
    with pytest.raises(TaskDeferred) as info:
        op.execute(context())
    assert info.value.timeout is not None and 350 < info.value.timeout.total_seconds() <= 360
    assert hook.cancelled == [RUNNING] and hook.deleted == []
    assert info.value.trigger.batch_ids == [RUNNING, DONE]
    assert info.value.kwargs == {"missing": [GONE]}
    hook.end([RUNNING], canceled=3)
    result = op.execute_complete(context(), hook.event(ids=[RUNNING, DONE]), **info.value.kwargs)
    assert result == {"deleted": [RUNNING, DONE], "missing": [GONE]}


def test_delete_blocking_path_waits_in_the_worker(
    hook: FakeBatchHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_wait(trigger: Any) -> Any:
        hook.end([RUNNING], canceled=3)
        return hook.event(ids=[RUNNING])

    monkeypatch.setattr(manage_module, "wait_blocking", fake_wait)
    op = BatchDeleteOperator(task_id="delete", batch_id=RUNNING, cancel_if_running=True, deferrable=False)
    assert op.execute(context()) == {"deleted": [RUNNING], "missing": []}


def test_delete_of_a_missing_batch_fails_unless_missing_ok(hook: FakeBatchHook) -> None:
    with pytest.raises(BatchMissingError, match="missing_ok=True"):
        BatchDeleteOperator(task_id="delete", batch_id=[DONE, GONE]).execute(context())
    assert hook.deleted == []
    result = BatchDeleteOperator(task_id="delete", batch_id=[DONE, GONE], missing_ok=True).execute(context())
    assert result == {"deleted": [DONE], "missing": [GONE]}


def test_wait_failure_events_fail_the_delete(hook: FakeBatchHook) -> None:
    op = BatchDeleteOperator(task_id="delete", batch_id=RUNNING, cancel_if_running=True, deferrable=True)
    with pytest.raises(TaskDeferred):
        op.execute(context())
    with pytest.raises(BatchAccessError):
        op.execute_complete(context(), hook.event("error", "permission", ids=[RUNNING]))
    assert hook.deleted == []


@pytest.mark.parametrize("operator_class", [BatchCancelOperator, BatchDeleteOperator])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"poll_interval": 0}, "poll_interval"), ({"timeout": "1h"}, "timeout must be a number of seconds")],
)
def test_bad_wait_settings_fail_when_the_dag_is_parsed(
    operator_class: type[Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        operator_class(task_id="t", batch_id="msgbatch_a", **kwargs)
