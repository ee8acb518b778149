"""The example DAGs import cleanly in a DagBag (what the scheduler's DAG processor does)."""

from __future__ import annotations

from pathlib import Path

from airflow_lines import DagBag

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


def test_example_dags_parse_without_import_errors() -> None:
    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert {"example_batches_quickstart", "example_batches_etl"} <= set(bag.dag_ids)
    etl = bag.dags["example_batches_etl"]
    assert [t.task_id for t in etl.topological_sort()] == ["create_batches", "land_results", "summarize"]
    assert etl.get_task("create_batches").resubmit_rounds == 2
    land = etl.get_task("land_results")
    assert land.destination.endswith("/results/{{ ds }}/")
    # The fixed name its docstring and the README give downstream DAGs to schedule on.
    assert [outlet.name for outlet in land.outlets] == ["example_batches_etl_results"]
    assert 'AssetAlias("example_batches_etl_results")' in (etl.doc_md or "")
