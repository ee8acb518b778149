"""The README's PostgreSQL block, run as written after its ``pip install`` line (this venv has what it
installs): on a ``pgserver`` PostgreSQL, with the placeholders filled in, its commands start the api-server,
scheduler, dag-processor and two triggerers; both triggerers register, and the quick start DAG's create task
defers to one of them and the DAG succeeds."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_services import MetadataDB, free_port, metadata_db
from readme import README, snippet

from airflow_batches.emulator.testing import run_emulator

pytestmark = pytest.mark.e2e

REPO = README.parent


def _filled_in(code: str, db: MetadataDB, api_port: int, connection: str) -> str:
    """The block after its install line, with every placeholder replaced (and nothing else)."""
    install, rest = code.split("\n", 1)
    assert install.startswith("pip install ")
    replacements = {
        "postgresql+psycopg2://USER:PASSWORD@HOST:5432/airflow": db.url,
        "JWT_SECRET=...": "JWT_SECRET=readme-" + os.urandom(8).hex(),
        "http://API_HOST:8080/": f"http://127.0.0.1:{api_port}/",
        '\'{"conn_type": "anthropic", "password": "sk-ant-..."}\'': f"'{connection}'",
        "PORT=8794": f"PORT={free_port()}",
        "PORT=8795": f"PORT={free_port()}",
    }
    for placeholder, value in replacements.items():
        assert rest.count(placeholder) == 1, placeholder
        rest = rest.replace(placeholder, value)
    return rest


def test_the_install_line_installs_pinned_packages() -> None:
    install = snippet("postgres-triggerers").code.splitlines()[0].split("#")[0].split()
    assert install[:4] == ["pip", "install", "-c", "constraints/constraints-py3.11.txt"]
    pinned = {
        line.split("==")[0].lower() for line in (REPO / install[3]).read_text().splitlines() if "==" in line
    }
    assert install[4] == "dist/airflow_batches-*.whl"
    assert set(install[5:]) == {"psycopg2-binary", "asyncpg"} and set(install[5:]) <= pinned
    assert "apache-airflow" in pinned


def _wait(what: str, check: Callable[[], Any], home: Path, timeout: float = 240) -> Any:
    import psycopg2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except psycopg2.errors.UndefinedTable:  # ``airflow db migrate`` has not made it yet
            value = None
        if value:
            return value
        time.sleep(1)
    logs = (home / "services.log").read_text()[-6000:]
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def test_the_block_runs_airflow_on_postgresql_with_two_triggerers(tmp_path: Path) -> None:
    home = tmp_path / "airflow-home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    shutil.copy(REPO / "example_dags" / "example_batches_quickstart.py", dags)  # the ETL needs input first
    api_port = free_port()
    with run_emulator(processing_seconds=10) as emulator, metadata_db("postgres", tmp_path) as db:
        connection = json.dumps(
            {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
        )
        script = _filled_in(snippet("postgres-triggerers").code, db, api_port, connection)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ANTHROPIC"))}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            # What the block leaves to the host: the api-server's port, the worker log server's port.
            AIRFLOW__API__PORT=str(api_port),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="1",
            AIRFLOW_BATCHES_POLL_INTERVAL="1",
        )
        with (home / "services.log").open("wb") as log:
            shell = subprocess.Popen(
                ["bash", "-c", script], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait(
                "two triggerers to register",
                lambda: (
                    len(db.query("select id from job where job_type = 'TriggererJob' and state = 'running'"))
                    == 2
                ),
                home,
            )
            _wait(
                "the quick start to be parsed",
                lambda: db.query("select 1 from dag where dag_id = 'example_batches_quickstart'"),
                home,
            )
            done = subprocess.run(
                [sys.executable, "-m", "airflow", "dags", "trigger", "example_batches_quickstart"],
                env={**env, **_exports(script)},
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            triggerers = {
                job_id for (job_id,) in db.query("select id from job where job_type = 'TriggererJob'")
            }
            holder = _wait(
                "the create task to defer to one of the triggerers",
                lambda: db.query(
                    "select trigger.triggerer_id from task_instance ti"
                    " join trigger on ti.trigger_id = trigger.id"
                    " where ti.task_id = 'create_batch' and ti.state = 'deferred'"
                    " and trigger.triggerer_id is not null"
                ),
                home,
            )
            assert holder[0][0] in triggerers
            state = _wait(
                "the quick start to finish",
                lambda: next(
                    (s for (s,) in db.query("select state from dag_run") if s in ("success", "failed")), None
                ),
                home,
            )
            assert state == "success", (home / "services.log").read_text()[-6000:]
            assert emulator.stats()["batches_created"] == 1
        finally:
            shell.wait(timeout=60)  # the block backgrounds its services and returns
            _stop_group(shell.pid)


def _stop_group(pgid: int) -> None:
    """Stop every process the block started (its process group): its ``&`` jobs outlive the shell."""
    for sig, grace in ((signal.SIGTERM, 60.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


def _exports(script: str) -> dict[str, str]:
    """The block's ``export NAME=value`` lines, for a command run next to its services."""
    found = {}
    for name, value in re.findall(r"^export (\w+)=(.*)$", script, flags=re.MULTILINE):
        value = value.split("  #")[0].strip()
        found[name] = value[1:-1] if value.startswith("'") else value
    return found
