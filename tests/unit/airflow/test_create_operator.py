"""BatchCreateOperator: validation before sending, splitting, XCom before deferring, trigger kwargs,
execute_complete mapping and reattach on retry (over an in-memory API behind the hook facade)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, TaskDeferred
from ops_fakes import DictStore, FakeBatchHook, context

from airflow_batches import reattach as reattach_module
from airflow_batches.api.errors import AmbiguousCreateError
from airflow_batches.errors import (
    BatchAccessError,
    BatchCreateAmbiguousError,
    BatchOutcomeError,
    BatchRequestsInvalidError,
    BatchWaitTimeout,
    InvalidBatchEventError,
    RequestSourceError,
)
from airflow_batches.operators import create as create_module
from airflow_batches.operators.create import BatchCreateOperator
from airflow_batches.reattach import LEDGER_KEY


def reqs(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"{prefix}-{n}",
            "params": {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": f"hi {n}"}]},
        }
        for n in range(count)
    ]


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> FakeBatchHook:
    fake = FakeBatchHook()
    monkeypatch.setattr(BatchCreateOperator, "hook", property(lambda self: fake))
    return fake


def operator(requests: Any, **kwargs: Any) -> BatchCreateOperator:
    kwargs.setdefault("deferrable", True)
    kwargs.setdefault("poll_interval", 5)
    kwargs.setdefault(
        "report_cost", False
    )  # the fake API has no results; cost: tests/integration/test_cost_*
    return BatchCreateOperator(task_id="create", requests=requests, **kwargs)


def test_invalid_requests_fail_with_every_problem_before_anything_is_sent(hook: FakeBatchHook) -> None:
    bad = reqs(3)
    bad[0]["custom_id"] = "has space"
    del bad[2]["params"]["max_tokens"]
    with pytest.raises(BatchRequestsInvalidError) as info:
        operator(bad).execute(context())
    text = str(info.value)
    assert "inline requests" in text and "nothing was sent" in text
    assert "'has space'" in text and "max_tokens" in text and "r-2" in text
    assert hook.bodies == []


def test_jsonl_file_problems_name_the_line(hook: FakeBatchHook, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    lines = [json.dumps(r) for r in reqs(3)]
    lines[1] = '{"custom_id": "r-1", "params": '
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BatchRequestsInvalidError) as info:
        operator(str(path)).execute(context())
    assert "line 2" in str(info.value) and str(path) in str(info.value)
    assert hook.bodies == []


def test_missing_file_is_a_clear_error(hook: FakeBatchHook, tmp_path: Path) -> None:
    with pytest.raises(RequestSourceError, match="does not exist"):
        operator((tmp_path / "nope.jsonl").as_uri()).execute(context())


def test_requests_stream_from_a_file_uri(hook: FakeBatchHook, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in reqs(5)))
    with pytest.raises(TaskDeferred):
        operator(path.as_uri()).execute(context())
    assert [r["custom_id"] for r in hook.bodies[0]["requests"]] == [f"r-{n}" for n in range(5)]


def test_requests_rendered_as_json_text_are_read(hook: FakeBatchHook) -> None:
    with pytest.raises(TaskDeferred):
        operator(json.dumps(reqs(2))).execute(context())
    assert len(hook.bodies[0]["requests"]) == 2


def test_inline_requests_are_not_jinja_templates(hook: FakeBatchHook) -> None:
    import jinja2

    requests = reqs(1)
    requests[0]["params"]["messages"][0]["content"] = "Explain {{ ds }} and {% raw %} in Jinja"
    op = operator(requests)
    op.render_template_fields({"ds": "2026-01-01"}, jinja_env=jinja2.Environment())
    with pytest.raises(TaskDeferred):
        op.execute(context())
    sent = hook.bodies[0]["requests"][0]["params"]["messages"][0]["content"]
    assert sent == "Explain {{ ds }} and {% raw %} in Jinja"


def test_a_templated_uri_is_rendered(hook: FakeBatchHook, tmp_path: Path) -> None:
    import jinja2

    (tmp_path / "2026-01-01.jsonl").write_text(json.dumps(reqs(1)[0]) + "\n")
    op = operator(str(tmp_path) + "/{{ ds }}.jsonl")
    op.render_template_fields({"ds": "2026-01-01"}, jinja_env=jinja2.Environment())
    with pytest.raises(TaskDeferred):
        op.execute(context())
    assert len(hook.bodies) == 1


def test_default_model_fills_requests_without_one(hook: FakeBatchHook) -> None:
    requests = reqs(2)
    del requests[0]["params"]["model"]
    with pytest.raises(TaskDeferred):
        operator(requests, default_model="claude-x").execute(context())
    assert [r["params"]["model"] for r in hook.bodies[0]["requests"]] == ["claude-x", "m"]


def test_the_connections_model_extra_is_the_default_model_unless_the_operator_sets_one(
    hook: FakeBatchHook,
) -> None:
    hook.default_model = "claude-from-conn"
    requests = reqs(2)
    del requests[0]["params"]["model"]
    with pytest.raises(TaskDeferred):
        operator(requests).execute(context())
    with pytest.raises(TaskDeferred):
        operator(requests, default_model="claude-x").execute(context())
    assert [r["params"]["model"] for r in hook.bodies[0]["requests"]] == ["claude-from-conn", "m"]
    assert [r["params"]["model"] for r in hook.bodies[1]["requests"]] == ["claude-x", "m"]


def test_split_into_a_group_pushed_to_xcom_before_deferring(hook: FakeBatchHook) -> None:
    ctx = context()
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        operator(reqs(7), max_requests_per_batch=3, timeout=600, cancel_on_kill=True).execute(ctx)
    assert [len(b["requests"]) for b in hook.bodies] == [3, 3, 1]
    ids = list(hook.batches)
    ((key, group),) = ctx["ti"].pushed
    assert key == "return_value"
    assert group["batch_ids"] == ids and group["request_counts"] == [3, 3, 1] and group["total_requests"] == 7
    assert group["processing_status"] == "in_progress" and group["counts"]["processing"] == 7
    assert len(group["fingerprint"]) == 64
    classpath, kwargs = info.value.trigger.serialize()
    assert classpath == "airflow_batches.triggers.batch.BatchTrigger"
    assert kwargs["conn_id"] == "anthropic_default" and kwargs["poll_interval"] == 5
    assert kwargs["cancel_on_kill"] is True and kwargs["max_poll_errors"] == 10
    assert before + 600 <= kwargs["deadline"] <= time.time() + 600
    # Airflow's own deferral bound: the deadline plus a grace, a backstop for a triggerer that is down.
    assert info.value.timeout is not None and 890 < info.value.timeout.total_seconds() <= 900
    assert list(kwargs["batch_id"] if "batch_id" in kwargs else kwargs["batch_ids"]) == ids
    assert info.value.method_name == "execute_complete"
    assert info.value.kwargs["group"]["batch_ids"] == ids


def test_max_poll_errors_reaches_the_deferred_trigger(hook: FakeBatchHook) -> None:
    with pytest.raises(TaskDeferred) as info:
        operator(reqs(1), max_poll_errors=3).execute(context())
    assert info.value.trigger.serialize()[1]["max_poll_errors"] == 3


def test_already_ended_batches_complete_without_deferring(hook: FakeBatchHook) -> None:
    hook.status = "ended"
    ctx = context()
    group = operator(reqs(2)).execute(ctx)
    assert group["processing_status"] == "ended" and group["counts"]["succeeded"] == 2
    assert LEDGER_KEY not in ctx["task_state_store"].data


def test_no_wait_returns_the_group_right_after_create(hook: FakeBatchHook) -> None:
    group = operator(reqs(2), wait_for_completion=False).execute(context())
    assert group["batch_ids"] == list(hook.batches) and group["processing_status"] == "in_progress"


def test_blocking_path_runs_the_same_trigger_in_the_worker(
    hook: FakeBatchHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    def fake_wait(trigger: Any) -> Any:
        seen.append(trigger.serialize())
        hook.end_all()
        return hook.event()

    monkeypatch.setattr(create_module, "wait_blocking", fake_wait)
    group = operator(reqs(3), deferrable=False, max_poll_errors=2).execute(context())
    assert seen and seen[0][0] == "airflow_batches.triggers.batch.BatchTrigger"
    assert seen[0][1]["max_poll_errors"] == 2
    assert group["processing_status"] == "ended" and group["counts"]["succeeded"] == 3


def test_retry_with_the_same_input_reattaches_instead_of_creating(hook: FakeBatchHook) -> None:
    store = DictStore()
    with pytest.raises(TaskDeferred):
        operator(reqs(5), max_requests_per_batch=2).execute(context(store))
    first_ids = list(hook.batches)
    # The worker died while deferred; the retry runs execute() again with the same input.
    with pytest.raises(TaskDeferred) as info:
        operator(reqs(5), max_requests_per_batch=2).execute(context(store, try_number=2))
    assert len(hook.bodies) == 3
    assert info.value.kwargs["group"]["batch_ids"] == first_ids


def test_crash_in_the_middle_of_a_group_resumes_with_the_missing_batches(hook: FakeBatchHook) -> None:
    store = DictStore()
    hook.fail_create_at = 2
    with pytest.raises(RuntimeError):
        operator(reqs(5), max_requests_per_batch=2).execute(context(store))
    assert len(hook.bodies) == 1
    hook.fail_create_at = None
    with pytest.raises(TaskDeferred) as info:
        operator(reqs(5), max_requests_per_batch=2).execute(context(store, try_number=2))
    assert [len(b["requests"]) for b in hook.bodies] == [2, 2, 1]
    assert info.value.kwargs["group"]["batch_ids"] == list(hook.batches)


def test_an_ambiguous_create_fails_without_retrying(
    hook: FakeBatchHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DictStore()

    def ambiguous(part: Any) -> Any:
        raise AmbiguousCreateError("create may have made a batch", cause=TimeoutError("read timeout"))

    monkeypatch.setattr(hook, "create", ambiguous)
    with pytest.raises(BatchCreateAmbiguousError, match=r"r-0 \.\. r-1") as info:
        operator(reqs(2)).execute(context(store))
    assert isinstance(info.value, AirflowFailException)
    assert store.data[LEDGER_KEY]["parts"][0]["started_at"]


def test_a_cancelled_or_deleted_batch_of_an_earlier_try_is_created_again(hook: FakeBatchHook) -> None:
    store = DictStore()
    with pytest.raises(TaskDeferred):
        operator(reqs(6), max_requests_per_batch=2).execute(context(store))
    first, second, third = hook.batches
    hook.cancel(first)
    del hook.batches[second]
    with pytest.raises(TaskDeferred) as info:
        operator(reqs(6), max_requests_per_batch=2).execute(context(store, try_number=2))
    ids = info.value.kwargs["group"]["batch_ids"]
    assert len(hook.bodies) == 5 and ids[2] == third and first not in ids and second not in ids


def test_retry_with_different_input_creates_anew(hook: FakeBatchHook) -> None:
    store = DictStore()
    with pytest.raises(TaskDeferred):
        operator(reqs(2)).execute(context(store))
    with pytest.raises(TaskDeferred):
        operator(reqs(2, prefix="other")).execute(context(store, try_number=2))
    assert len(hook.bodies) == 2


def test_execute_complete_returns_the_group_with_final_counts_and_forgets_the_ledger(
    hook: FakeBatchHook,
) -> None:
    ctx = context()
    op = operator(reqs(4))
    with pytest.raises(TaskDeferred) as info:
        op.execute(ctx)
    assert LEDGER_KEY in ctx["task_state_store"].data
    hook.end_all(succeeded=3, errored=1)
    group = op.execute_complete(ctx, hook.event(), **info.value.kwargs)
    assert group["processing_status"] == "ended"
    assert group["counts"] == {"processing": 0, "succeeded": 3, "errored": 1, "canceled": 0, "expired": 0}
    assert group["request_counts"] == [4]
    assert LEDGER_KEY not in ctx["task_state_store"].data


def test_resume_without_the_group_kwarg_reads_the_group_pushed_before_deferring(hook: FakeBatchHook) -> None:
    ctx = context()
    op = operator(reqs(5), max_requests_per_batch=2)
    with pytest.raises(TaskDeferred):
        op.execute(ctx)
    hook.end_all()
    group = op.execute_complete(ctx, hook.event())
    assert group["request_counts"] == [2, 2, 1] and group["counts"]["succeeded"] == 5


def test_too_many_failures_fail_the_task_and_keep_the_ledger(hook: FakeBatchHook) -> None:
    ctx = context()
    op = operator(reqs(4), max_failure_ratio=0.2)
    with pytest.raises(TaskDeferred) as info:
        op.execute(ctx)
    hook.end_all(succeeded=2, errored=2)
    with pytest.raises(BatchOutcomeError, match="2 of 4"):
        op.execute_complete(ctx, hook.event(), **info.value.kwargs)
    assert LEDGER_KEY in ctx["task_state_store"].data


def test_all_canceled_follows_on_all_canceled(hook: FakeBatchHook) -> None:
    op = operator(reqs(2), on_all_canceled="skip")
    with pytest.raises(TaskDeferred) as info:
        op.execute(context())
    hook.end_all(canceled=2)
    with pytest.raises(AirflowSkipException):
        op.execute_complete(context(), hook.event(), **info.value.kwargs)


@pytest.mark.parametrize("cancel_on_timeout", [True, False])
def test_timeout_cancels_only_when_asked(hook: FakeBatchHook, cancel_on_timeout: bool) -> None:
    op = operator(reqs(2), timeout=10, cancel_on_timeout=cancel_on_timeout)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context())
    with pytest.raises(BatchWaitTimeout):
        op.execute_complete(context(), hook.event("timeout", "deadline"), **info.value.kwargs)
    assert hook.cancelled == (list(hook.batches) if cancel_on_timeout else [])


def test_timeout_is_one_deadline_for_every_try_until_it_passes(
    hook: FakeBatchHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DictStore()

    def try_at(now: float, try_number: int) -> Any:
        monkeypatch.setattr(reattach_module, "_now", lambda: now)
        with pytest.raises(TaskDeferred) as info:
            operator(reqs(2), timeout=600).execute(context(store, try_number=try_number))
        return info.value

    first = try_at(1_000.0, 1)
    assert first.trigger.serialize()[1]["deadline"] == 1_600.0
    # The worker died while waiting; the retry 100 s later keeps the first try's deadline.
    assert try_at(1_100.0, 2).trigger.serialize()[1]["deadline"] == 1_600.0
    with pytest.raises(BatchWaitTimeout):
        operator(reqs(2), timeout=600).execute_complete(
            context(store), hook.event("timeout", "deadline"), **first.kwargs
        )
    # Cleared by hand after the timeout: the same batches, a fresh timeout.
    cleared = try_at(2_000.0, 3)
    assert cleared.trigger.serialize()[1]["deadline"] == 2_600.0
    assert len(hook.bodies) == 1 and cleared.kwargs["group"]["batch_ids"] == list(hook.batches)


def test_error_events_map_to_failures_that_name_the_batch(hook: FakeBatchHook) -> None:
    op = operator(reqs(2))
    with pytest.raises(TaskDeferred) as info:
        op.execute(context())
    with pytest.raises(BatchAccessError, match=next(iter(hook.batches))):
        op.execute_complete(context(), hook.event("error", "not_found"), **info.value.kwargs)
    with pytest.raises(InvalidBatchEventError):
        op.execute_complete(context(), {"status": "weird"}, **info.value.kwargs)


@pytest.mark.parametrize("cancel_on_kill", [True, False])
def test_on_kill_while_waiting_cancels_only_with_cancel_on_kill(
    hook: FakeBatchHook, monkeypatch: pytest.MonkeyPatch, cancel_on_kill: bool
) -> None:
    op = operator(reqs(1), cancel_on_kill=cancel_on_kill, deferrable=False)

    def killed_while_waiting(trigger: Any) -> Any:
        op.on_kill()
        raise RuntimeError("task killed")

    monkeypatch.setattr(create_module, "wait_blocking", killed_while_waiting)
    with pytest.raises(RuntimeError, match="task killed"):
        op.execute(context())
    assert hook.cancelled == (list(hook.batches) if cancel_on_kill else [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": "30"}, "poll_interval must be a number of seconds > 0, got '30'"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": True}, "timeout must be a number of seconds > 0 or None"),
        ({"max_requests_per_batch": 100_001}, "max_requests_per_batch"),
        ({"max_bytes_per_batch": 0}, "max_bytes_per_batch"),
        ({"max_failure_ratio": 2}, "max_failure_ratio"),
        ({"on_all_canceled": "explode"}, "on_all_canceled"),
        ({"max_poll_errors": 0}, "max_poll_errors must be an integer >= 1, got 0"),
        ({"max_poll_errors": 2.5}, "max_poll_errors must be an integer >= 1, got 2.5"),
        ({"max_poll_errors": True}, "max_poll_errors must be an integer >= 1, got True"),
        ({"resubmit_rounds": -1}, "resubmit_rounds must be a whole number >= 0, got -1"),
        ({"resubmit_rounds": 1.5}, "resubmit_rounds must be a whole number >= 0"),
        ({"resubmit_error_types": "api_error"}, "resubmit_error_types must be a list"),
        ({"resubmit_error_types": ["invalid_request_error"]}, "fails the same way every time"),
        ({"resubmit_rounds": 1, "wait_for_completion": False}, "resubmit_rounds needs wait_for_completion"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        operator(reqs(1), **kwargs)


def test_a_single_mapping_is_not_a_request_list(hook: FakeBatchHook) -> None:
    with pytest.raises(RequestSourceError, match="single mapping"):
        operator(reqs(1)[0]).execute(context())
