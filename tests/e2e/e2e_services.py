"""Airflow's real services as separate processes, on SQLite or PostgreSQL, for the end-to-end tests.

``airflow_services(...)`` starts an emulator-backed AIRFLOW_HOME with api-server, scheduler (LocalExecutor),
dag-processor and one or more ``airflow triggerer`` processes. Each service runs in its own process group
(``start_new_session``) and is stopped with ``killpg``. PostgreSQL is a ``pgserver`` instance (a PostgreSQL
build from PyPI, which also starts as root) in a temporary directory, reached over its Unix socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DAGS = Path(__file__).parent / "dags"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MetadataDB:
    """The metadata DB: its SQLAlchemy URL for Airflow, and plain queries (``?`` placeholders) for tests."""

    def __init__(self, kind: str, home: Path, socket_dir: Path | None = None) -> None:
        self.kind = kind
        self.home = home
        self.socket_dir = socket_dir

    @property
    def url(self) -> str:
        if self.kind == "postgres":
            return f"postgresql+psycopg2://postgres@/postgres?host={self.socket_dir}"
        return f"sqlite:///{self.home / 'airflow.db'}"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            import psycopg2

            connection = psycopg2.connect(host=str(self.socket_dir), user="postgres", dbname="postgres")
            try:
                with connection.cursor() as cursor:
                    # psycopg2's placeholders are %s, so a literal % (LIKE patterns) is written %%.
                    cursor.execute(sql.replace("%", "%%").replace("?", "%s"), params)
                    rows: list[tuple[Any, ...]] = cursor.fetchall()
                    return rows
            finally:
                connection.close()
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, params).fetchall()


@contextlib.contextmanager
def metadata_db(kind: str, home: Path) -> Iterator[MetadataDB]:
    if kind == "sqlite":
        yield MetadataDB(kind, home)
        return
    import pgserver

    server = pgserver.get_server(home / "pgdata", cleanup_mode="stop")
    try:
        socket_dir = server.get_postmaster_info().socket_dir
        yield MetadataDB(kind, home, Path(socket_dir))
    finally:
        server.cleanup()


class Services:
    """Airflow services of one AIRFLOW_HOME, each a process group we started."""

    def __init__(self, home: Path, env: dict[str, str], db: MetadataDB, emulator: Any, api_url: str) -> None:
        self.home = home
        self.env = env
        self.db = db
        self.emulator = emulator
        self.api_url = api_url
        self.out_dir = home / "out"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def airflow(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, *args: str, **env: str) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_triggerer(self, name: str) -> None:
        """A triggerer with a log server port of its own (two on one host must not share one)."""
        self.start(name, "triggerer", AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()))

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.db.query(sql, *params)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.home.glob("*.log")))

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def trigger_dag(self, dag_id: str) -> None:
        self.wait_for(
            f"{dag_id} to be parsed",
            lambda: self.query("select 1 from dag where dag_id = ? and not is_stale", dag_id),
        )
        self.airflow("dags", "trigger", dag_id)

    def final_state(self, dag_id: str, timeout: float = 180) -> str:
        state: str = self.wait_for(
            f"the {dag_id} run to finish",
            lambda: next(
                (
                    s
                    for (s,) in self.query("select state from dag_run where dag_id = ?", dag_id)
                    if s in ("success", "failed")
                ),
                None,
            ),
            timeout,
        )
        return state


@contextlib.contextmanager
def airflow_services(
    home: Path,
    db_kind: str,
    *,
    triggerers: int = 1,
    parallelism: int = 2,
    **emulator_flags: Any,
) -> Iterator[Services]:
    """An emulator, then api-server, scheduler, dag-processor and ``triggerers`` triggerers on ``db_kind``.

    DAG outputs (the ``e2e_output`` Variable) go to ``Services.out_dir``.
    """
    from airflow_batches.emulator.testing import run_emulator

    (home / "dags").mkdir()
    out_dir = home / "out"
    out_dir.mkdir()
    shutil.copy(DAGS / "e2e_batches.py", home / "dags")
    api_port = free_port()
    with run_emulator(**emulator_flags) as emulator, metadata_db(db_kind, home) as db:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.url,
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "256",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__API__PORT": str(api_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
                # Separate processes must sign and accept the same task tokens.
                "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-secret-" + os.urandom(8).hex(),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                # A SIGKILLed triggerer's triggers move to a live one after this long without a heartbeat.
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                # The REST API (used to mark a task failed like a user would) without a login step.
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                    {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
                ),
                "AIRFLOW_VAR_E2E_OUTPUT": out_dir.as_uri(),
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            }
        )
        running = Services(home, env, db, emulator, f"http://127.0.0.1:{api_port}")
        running.airflow("db", "migrate")
        try:
            running.start("api-server", "api-server")
            running.start("scheduler", "scheduler")
            running.start("dag-processor", "dag-processor")
            for number in range(1, triggerers + 1):
                running.start_triggerer(f"triggerer-{number}" if triggerers > 1 else "triggerer")
            yield running
        finally:
            running.stop_all()
