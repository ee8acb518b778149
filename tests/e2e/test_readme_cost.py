"""The README's cost example, run as written: the dry-run block in a DAG in real Airflow against the emulator,
its plan compared with the README's output block character for character, and the same requests over a
budget failing with the README's message before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from readme import dag_source, snippet

from airflow_batches.errors import BatchBudgetExceededError
from airflow_batches.operators import BatchCreateOperator

pytestmark = pytest.mark.e2e


def test_the_dry_run_returns_the_plan_shown_and_sends_nothing(
    run_dag: Any, emulator: Any, dags_folder: Path
) -> None:
    (dags_folder / "readme_cost.py").write_text(dag_source("readme_cost", "cost-dry-run"))

    result = run_dag("readme_cost", emulator)

    assert result.state == "success", result.tasks
    stats = emulator.stats()
    assert (stats["batches_created"], stats["requests"]) == (0, {"count_tokens": 200})
    shown = json.dumps(result.xcom["plan"], indent=2, ensure_ascii=False) + "\n"
    assert shown == snippet("cost-plan-output").code, f"the README's plan is out of date; it is now:\n{shown}"


def test_the_same_requests_over_budget_fail_with_the_message_shown(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import DAG

    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT",
        json.dumps({"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}),
    )
    namespace: dict[str, Any] = {}
    with DAG("readme_cost_budget", schedule=None):
        exec(snippet("cost-dry-run").code, namespace)
        budget = BatchCreateOperator(
            task_id="budget", requests=namespace["requests"], max_cost_usd=1.0, max_requests_per_batch=500
        )
    with pytest.raises(BatchBudgetExceededError) as info:
        budget.execute({})  # type: ignore[arg-type] - the budget is checked before the context is used
    shown = f"{type(info.value).__name__}: {info.value}\n"
    assert shown == snippet("cost-budget-output").code, (
        f"the README's message is out of date; it is now:\n{shown}"
    )
    assert emulator.stats()["batches_created"] == 0
