"""End-to-end harness: real Airflow (metadata DB, task runner, deferral machinery) against the real emulator.

One SQLite metadata DB per session in the test AIRFLOW_HOME; a DAGs folder holding the example DAGs and
``tests/e2e/dags``; ``run_dag`` runs a DAG with ``dag.test()`` (triggers run through Airflow's own inline
triggerer) and returns the task instances' final states.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_SOURCES = [REPO / "example_dags", Path(__file__).parent / "dags"]


@pytest.fixture(scope="session")
def dags_folder(airflow_home: str) -> Path:
    """The DAGs folder and a fresh metadata DB, set up once per session."""
    folder = Path(airflow_home) / "dags"
    folder.mkdir(exist_ok=True)
    for source in DAG_SOURCES:
        for dag_file in source.glob("*.py"):
            shutil.copy(dag_file, folder / dag_file.name)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(folder)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.utils import db

    db.resetdb()
    return folder


@dataclass
class DagResult:
    state: str
    tasks: dict[str, tuple[str, int]]  # task_id -> (state, try_number)
    xcom: dict[str, Any]  # task_id -> return value


@pytest.fixture
def run_dag(dags_folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., DagResult]:
    """Run one DAG to the end with ``dag.test()`` against ``emulator``; outputs go under ``tmp_path``."""
    monkeypatch.setenv("AIRFLOW_VAR_E2E_OUTPUT", tmp_path.as_uri())

    def run(dag_id: str, emulator: Any, **env: str) -> DagResult:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ANTHROPIC_DEFAULT",
            json.dumps({"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}),
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from airflow_lines import DagBag

        bag = DagBag(dag_folder=str(dags_folder / _file_of(dag_id, dags_folder)))
        assert not bag.import_errors, bag.import_errors
        dag_run = bag.get_dag(dag_id).test()
        with create_session() as session:
            tis = dag_run.get_task_instances(session=session)
            tasks = {ti.task_id: (str(ti.state), ti.try_number) for ti in tis}
            xcom = {}
            for ti in tis:
                row = (
                    session.query(XComModel)
                    .filter_by(dag_id=dag_id, run_id=dag_run.run_id, task_id=ti.task_id, key="return_value")
                    .one_or_none()
                )
                if row is not None:
                    xcom[ti.task_id] = XComModel.deserialize_value(row)
        return DagResult(state=str(dag_run.state), tasks=tasks, xcom=xcom)

    return run


def _file_of(dag_id: str, folder: Path) -> str:
    """Example DAGs live in a file named after them; the test DAGs share ``e2e_batches.py``."""
    return f"{dag_id}.py" if (folder / f"{dag_id}.py").exists() else "e2e_batches.py"


@pytest.fixture
def slow_emulator() -> Iterator[Any]:
    """An emulator whose batches stay in progress for 5 seconds."""
    from airflow_batches.emulator.testing import run_emulator

    with run_emulator(processing_seconds=5) as running:
        yield running
