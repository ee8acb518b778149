"""The API key never lands anywhere Airflow keeps things: metadata DB (XCom, rendered fields, trigger rows,
task state store), task logs, landed files, or the console output of a whole run."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from airflow_batches.emulator.testing import run_emulator

pytestmark = pytest.mark.e2e

KEY = "sk-ant-e2e-Zq81vXk3cM0tPl7Ww2Rr9NbHs"


def _files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_a_whole_run_leaves_the_key_nowhere(
    run_dag: Any, airflow_home: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with run_emulator(api_key=KEY, processing_seconds=1) as emulator:
        result = run_dag(
            "example_batches_quickstart",
            emulator,
            AIRFLOW_BATCHES_BASE=tmp_path.as_uri(),
            AIRFLOW_BATCHES_POLL_INTERVAL="0.5",
        )
        created = emulator.stats()["batches_created"]
    assert result.state == "success", result.tasks
    # The run really authenticated with the key (the emulator requires it) and deferred through a trigger.
    assert created == 1

    captured = capfd.readouterr()
    assert KEY not in captured.out and KEY not in captured.err

    db_path = Path(airflow_home) / "airflow.db"
    assert db_path.exists()
    with sqlite3.connect(db_path) as db:
        dump = "\n".join(db.iterdump())
    # Sanity: the dump holds this run's rows, so searching it means something.
    assert "example_batches_quickstart" in dump and "BatchTrigger" in dump
    assert KEY not in dump

    for path in _files_under(Path(airflow_home) / "logs") + _files_under(tmp_path):
        assert KEY.encode() not in path.read_bytes(), path
