"""Requests from code: BatchCreateOperator with a RequestTemplate (the records URI is templated, an XComArg of
records makes the producing task upstream, record problems fail the task naming the file and line before any
create) and @task.anthropic_batch (registered through the provider info; the function's return value is
submitted like the operator's requests; the task defers with the group)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.sdk import DAG, task
from ops_fakes import FakeBatchHook, context

from airflow_batches.decorators.batch import _AnthropicBatchDecoratedOperator
from airflow_batches.errors import BatchRequestsInvalidError
from airflow_batches.get_provider_info import get_provider_info
from airflow_batches.operators.create import BatchCreateOperator
from airflow_batches.records import RequestTemplate

PARAMS = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "{{ record.text }}"}]}


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> FakeBatchHook:
    fake = FakeBatchHook()
    monkeypatch.setattr(BatchCreateOperator, "hook", property(lambda self: fake))
    return fake


def records_file(tmp_path: Path, day: str, body: str) -> Path:
    path = tmp_path / day / "records.csv"
    path.parent.mkdir()
    path.write_text(body)
    return path


def test_records_uri_is_rendered_with_the_run_context(hook: FakeBatchHook, tmp_path: Path) -> None:
    records_file(tmp_path, "2026-01-02", "id,text\n7,hello\n8,world\n")
    tpl = RequestTemplate(
        records=f"{tmp_path.as_uri()}/{{{{ ds }}}}/records.csv", custom_id="r{{ record.id }}", params=PARAMS
    )
    op = BatchCreateOperator(task_id="create", requests=tpl, deferrable=True)
    ctx: Any = {**context(), "ds": "2026-01-02"}
    op.render_template_fields(ctx)
    with pytest.raises(TaskDeferred):
        op.execute(ctx)
    (body,) = hook.bodies
    assert [(r["custom_id"], r["params"]["messages"][0]["content"]) for r in body["requests"]] == [
        ("r7", "hello"),
        ("r8", "world"),
    ]


def test_record_problems_fail_before_any_create(hook: FakeBatchHook, tmp_path: Path) -> None:
    path = records_file(tmp_path, "d", "id,text\n1,a\n2\n")
    tpl = RequestTemplate(records=str(path), custom_id="r{{ record.id }}", params=PARAMS)
    with pytest.raises(BatchRequestsInvalidError) as info:
        BatchCreateOperator(task_id="create", requests=tpl).execute(context())
    assert f"records file {path}" in str(info.value)
    assert "records.csv line 3, custom_id 'r2', field 'params.messages[0].content'" in str(info.value)
    assert hook.bodies == []


def test_an_xcomarg_of_records_sets_the_upstream_task() -> None:
    with DAG("template_upstream", start_date=datetime(2026, 1, 1), schedule=None):

        @task
        def load() -> list[dict[str, Any]]:
            return [{"id": 1, "text": "x"}]

        loaded = load()
        op = BatchCreateOperator(
            task_id="create",
            requests=RequestTemplate(records=loaded, custom_id="r{{ record.id }}", params=PARAMS),
        )
    assert op.upstream_task_ids == {"load"}


def test_registered_in_the_provider_info_and_found_by_airflow() -> None:
    (entry,) = get_provider_info()["task-decorators"]
    assert entry == {
        "name": "anthropic_batch",
        "class-name": "airflow_batches.decorators.batch.anthropic_batch_task",
    }
    assert task.anthropic_batch is not None  # resolved through the installed provider's metadata


def test_returned_requests_are_submitted_as_written_and_the_task_defers(hook: FakeBatchHook) -> None:
    with DAG("deco", start_date=datetime(2026, 1, 1), schedule=None) as dag:

        @task.anthropic_batch(deferrable=True, poll_interval=5, max_requests_per_batch=2)
        def build(prefix: str) -> list[dict[str, Any]]:
            message = [{"role": "user", "content": "{{ not rendered }}"}]
            return [
                {"custom_id": f"{prefix}-{i}", "params": {"model": "m", "max_tokens": 8, "messages": message}}
                for i in range(3)
            ]

        build("q")
    (op,) = dag.tasks
    assert op.task_id == "build" and op.max_requests_per_batch == 2
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    assert [[r["custom_id"] for r in body["requests"]] for body in hook.bodies] == [["q-0", "q-1"], ["q-2"]]
    assert hook.bodies[0]["requests"][0]["params"]["messages"][0]["content"] == "{{ not rendered }}"
    group = deferred.value.kwargs["group"]
    assert group["total_requests"] == 3 and len(group["batch_ids"]) == 2


def test_a_returned_template_reads_the_run_s_records(hook: FakeBatchHook, tmp_path: Path) -> None:
    day = tmp_path / "2026-01-02"
    day.mkdir()
    (day / "records.csv").write_text("id,text\n1,hello\n")
    with DAG("deco_tpl", start_date=datetime(2026, 1, 1), schedule=None) as dag:

        @task.anthropic_batch(deferrable=True, poll_interval=5)
        def build() -> RequestTemplate:
            return RequestTemplate(
                records=f"{tmp_path.as_uri()}/{{{{ ds }}}}/records.csv",
                custom_id="r{{ record.id }}",
                params=PARAMS,
            )

        build()
    (op,) = dag.tasks
    assert isinstance(op, _AnthropicBatchDecoratedOperator) and isinstance(op, BatchCreateOperator)
    ctx: Any = {**context(), "ds": "2026-01-02"}
    with pytest.raises(TaskDeferred):
        op.execute(ctx)
    (body,) = hook.bodies
    expected = {**PARAMS, "messages": [{"role": "user", "content": "hello"}]}
    assert body["requests"] == [{"custom_id": "r1", "params": expected}]
