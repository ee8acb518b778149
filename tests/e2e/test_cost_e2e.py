"""Dry run, budget guard and landed cost in real Airflow (dag.test: metadata DB, task runner, deferral)
against the emulator; bad prices and budgets as DAG import errors."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag

from airflow_batches.cost.prices import PriceTable

pytestmark = pytest.mark.e2e


def test_dry_run_budget_and_landed_cost(run_dag: Any, emulator: Any) -> None:
    result = run_dag("e2e_cost", emulator)

    assert result.tasks["plan"][0] == "success"
    assert result.tasks["over_budget"][0] == "failed"
    assert result.tasks["create"][0] == "success" and result.tasks["land"][0] == "success"
    # Only the within-budget task created a batch: the dry run and the over-budget task sent none.
    stats = emulator.stats()
    assert stats["batches_created"] == 1 and stats["requests"]["create"] == 1
    assert stats["requests"]["count_tokens"] == 6 * 3  # every small input counted, once per planning task

    plan = result.xcom["plan"]
    assert plan["total_requests"] == 6 and plan["models"]["claude-haiku-4-5"]["method"] == "counted"
    assert "over_budget" not in result.xcom

    manifest = result.xcom["land"]
    usage = manifest["cost"]["by_model"]["claude-haiku-4-5"]["usage"]
    price = PriceTable().price("claude-haiku-4-5")
    assert price is not None
    expected = (usage["input_tokens"] * price.input + usage["output_tokens"] * price.output) / 1e6
    assert usage["input_tokens"] == plan["models"]["claude-haiku-4-5"]["input_tokens"]  # same counting
    assert manifest["cost"]["usd"] == pytest.approx(expected, abs=1e-6)
    assert result.xcom["create"]["cost"] == manifest["cost"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("max_cost_usd=-1", "max_cost_usd must be a finite number of US dollars above 0"),
        ("max_cost_usd=float('nan')", "max_cost_usd must be a finite number of US dollars above 0"),
        ("prices={'m': {'input': -2, 'output': 1}}", "prices['m']['input'] must be a finite number >= 0"),
        ("prices={'m': {'input': 1, 'outptu': 1}}", "prices['m'] has unknown key(s) outptu"),
    ],
)
def test_bad_budgets_and_prices_are_dag_import_errors(tmp_path: Path, arguments: str, message: str) -> None:
    dag_file = tmp_path / "bad_cost.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime
            from airflow.sdk import DAG
            from airflow_batches.operators import BatchCreateOperator

            with DAG("bad_cost", schedule=None, start_date=datetime(2026, 1, 1)):
                BatchCreateOperator(task_id="create", requests="file:///in.jsonl", {arguments})
            """
        )
    )
    bag = DagBag(dag_folder=str(dag_file))
    (error,) = bag.import_errors.values()
    assert message in error
