"""Run your DAG files with ``dag.test()`` in your own tests, on a fresh ``AIRFLOW_HOME``.

``dag.test()`` needs a migrated metadata database and the DAG file inside the configured DAGs folder (else
"the dag is not serialized"); :func:`dag_for_test` prepares both and returns the parsed DAG::

    from airflow_batches.emulator.testing import run_emulator
    from airflow_batches.testing import dag_for_test

    dag = dag_for_test("dags/my_batches.py", "my_batches")
    with run_emulator(processing_seconds=0) as emu:
        os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
            {"conn_type": "anthropic", "host": emu.base_url, "password": emu.api_key})
        assert dag.test().state == "success"

Set ``AIRFLOW_HOME`` (e.g. to a temporary directory) before anything imports Airflow: the database is the
SQLite file in it unless ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["dag_for_test"]


def dag_for_test(dag_file: str | os.PathLike[str], dag_id: str) -> Any:
    """Point the DAGs folder at ``dag_file``'s directory, migrate the metadata DB, parse the file and
    return the DAG ``dag_id`` (an ``airflow.sdk.DAG``); raises ``ValueError`` naming any import error."""
    path = Path(dag_file).resolve()
    if not path.is_file():
        raise ValueError(f"DAG file {dag_file} does not exist (resolved to {path})")
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(path.parent)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    settings.DAGS_FOLDER = str(path.parent)  # read once when Airflow was imported
    db.initdb()  # migrates a fresh database; a no-op on one that is up to date
    bag = DagBag(dag_folder=str(path))
    if bag.import_errors:
        raise ValueError(f"{path} does not import: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise ValueError(f"{path} defines no DAG {dag_id!r}; it defines {sorted(bag.dag_ids)}")
    return dag
