"""BatchCreateOperator with a RequestTemplate: the records URI is templated, an XComArg of records makes the
producing task upstream, and record problems fail the task naming the file and line before any create."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.sdk import DAG, task
from ops_fakes import FakeBatchHook, context

from airflow_batches.errors import BatchRequestsInvalidError
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
