"""The deferrable create operator under Airflow's real services: api-server, scheduler (LocalExecutor),
dag-processor and triggerer as separate processes, with the triggerer restarted in the middle of the wait.

Each service runs in its own process group (``start_new_session``) and is stopped with ``killpg``.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).parent / "dags"
DAG_ID = "e2e_triggerer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Services:
    """Airflow services of one AIRFLOW_HOME, each a process group we started."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
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

    def start(self, name: str, *args: str) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

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
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.home.glob("*.log")))


def wait_for(what: str, check: Callable[[], Any], services: Services, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}\n{services.logs()}")


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("out")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, out_dir: Path) -> Iterator[Services]:
    """One set of services for this module's tests (starting them takes most of the time)."""
    from airflow_batches.emulator.testing import run_emulator

    home = tmp_path_factory.mktemp("home")
    (home / "dags").mkdir()
    shutil.copy(DAGS / "e2e_batches.py", home / "dags")
    api_port = free_port()
    with run_emulator(processing_seconds=20) as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__API__PORT": str(api_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                # The REST API (used to mark a task failed like a user would) without a login step.
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                    {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
                ),
                "AIRFLOW_VAR_E2E_OUTPUT": out_dir.as_uri(),
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            }
        )
        running = Services(home, env)
        running.api_url = f"http://127.0.0.1:{api_port}"  # type: ignore[attr-defined]
        running.emulator = emulator  # type: ignore[attr-defined]
        running.airflow("db", "migrate")
        try:
            running.start("api-server", "api-server")
            running.start("scheduler", "scheduler")
            running.start("dag-processor", "dag-processor")
            running.start("triggerer", "triggerer")
            yield running
        finally:
            running.stop_all()


def has_task_state_store() -> bool:
    from importlib.metadata import version

    major, minor = (int(part) for part in version("apache-airflow").split(".")[:2])
    return (major, minor) >= (3, 3)


def trigger_dag(services: Services, dag_id: str) -> None:
    wait_for(
        f"{dag_id} to be parsed",
        lambda: services.query("select 1 from dag where dag_id = ? and is_stale = 0", dag_id),
        services,
    )
    services.airflow("dags", "trigger", dag_id)


def final_state(services: Services, dag_id: str) -> str:
    state: str = wait_for(
        f"the {dag_id} run to finish",
        lambda: next(
            (
                s
                for (s,) in services.query("select state from dag_run where dag_id = ?", dag_id)
                if s in ("success", "failed")
            ),
            None,
        ),
        services,
    )
    return state


def test_deferred_create_survives_a_triggerer_restart(services: Services, out_dir: Path) -> None:
    emulator: Any = services.emulator  # type: ignore[attr-defined]
    created_before = emulator.stats()["batches_created"]
    trigger_dag(services, DAG_ID)
    wait_for(
        "the create task to defer",
        lambda: services.query(
            "select 1 from task_instance where dag_id = ? and task_id = 'create' and state = 'deferred'",
            DAG_ID,
        ),
        services,
    )
    time.sleep(2)  # let the first triggerer poll a few times
    services.stop("triggerer")
    killed_at = datetime.now(UTC)
    batch = httpx.get(f"{emulator.base_url}/v1/messages/batches", headers=emulator.headers).json()["data"][0]
    assert batch["processing_status"] == "in_progress", "the batch ended before the triggerer restart"
    services.start("triggerer-2", "triggerer")

    assert final_state(services, DAG_ID) == "success", services.logs()
    tries = dict(services.query("select task_id, try_number from task_instance where dag_id = ?", DAG_ID))
    assert tries == {"create": 1, "land": 1}
    ended = httpx.get(
        f"{emulator.base_url}/v1/messages/batches/{batch['id']}", headers=emulator.headers
    ).json()
    assert datetime.fromisoformat(ended["ended_at"].replace("Z", "+00:00")) > killed_at
    assert emulator.stats()["batches_created"] == created_before + 1
    landed = list((out_dir / "triggerer").glob("*.jsonl"))
    assert [p.name for p in landed] == [f"{batch['id']}.jsonl"]
    assert len(landed[0].read_text().splitlines()) == 3


def test_retry_after_the_worker_was_killed_reattaches(services: Services) -> None:
    """SIGKILL the task process while it waits (blocking path) after create; the retry reattaches."""
    emulator: Any = services.emulator  # type: ignore[attr-defined]
    created_before = emulator.stats()["batches_created"]
    trigger_dag(services, "e2e_kill_worker")

    def running_pid_after_create() -> int | None:
        rows = services.query(
            "select pid from task_instance where dag_id = 'e2e_kill_worker' and state = 'running'"
        )
        created = emulator.stats()["batches_created"] > created_before
        return rows[0][0] if rows and rows[0][0] and created else None

    pid = wait_for("the task to create its batch and wait", running_pid_after_create, services)
    time.sleep(1)  # let the ledger write (right after create returns) land
    os.kill(pid, signal.SIGKILL)
    assert final_state(services, "e2e_kill_worker") == "success", services.logs()
    tries = dict(
        services.query("select task_id, try_number from task_instance where dag_id = 'e2e_kill_worker'")
    )
    assert tries == {"create": 2}
    assert emulator.stats()["batches_created"] == created_before + 1


def test_clearing_a_task_that_died_after_create_reattaches(services: Services) -> None:
    """No retries: the first try dies right after create and fails; a user clears it; the rerun reattaches."""
    emulator: Any = services.emulator  # type: ignore[attr-defined]
    dag_id = "e2e_clear_after_crash"
    created_before = emulator.stats()["batches_created"]
    trigger_dag(services, dag_id)
    assert final_state(services, dag_id) == "failed", services.logs()
    assert emulator.stats()["batches_created"] == created_before + 1
    ledger_sql = "select key from variable where key like 'airflow_batches.create_ledger.%'"
    # Before Airflow 3.3 (no task state store) the ledger is one Variable of the task instance.
    assert len(services.query(ledger_sql)) == (0 if has_task_state_store() else 1)

    services.airflow("tasks", "clear", dag_id, "-t", "create", "-y")
    assert final_state(services, dag_id) == "success", services.logs()
    tries = dict(services.query("select task_id, try_number from task_instance where dag_id = ?", dag_id))
    assert tries == {"create": 2}
    assert emulator.stats()["batches_created"] == created_before + 1
    assert services.query(ledger_sql) == []  # the ledger of a task that succeeded is gone


def test_marking_a_deferred_task_failed_cancels_its_batch_and_a_rerun_submits_anew(
    services: Services,
) -> None:
    """cancel_on_kill=True while deferred: a user marking the task failed makes the triggerer run on_kill,
    which cancels the batch; clearing the task afterwards runs it again with a new batch."""
    emulator: Any = services.emulator  # type: ignore[attr-defined]
    api_url: str = services.api_url  # type: ignore[attr-defined]
    dag_id = "e2e_cancel_deferred"
    created_before = emulator.stats()["batches_created"]
    trigger_dag(services, dag_id)
    wait_for(
        "the create task to defer",
        lambda: services.query(
            "select 1 from task_instance where dag_id = ? and task_id = 'create' and state = 'deferred'",
            dag_id,
        ),
        services,
    )
    # on_kill runs only for a trigger a triggerer is running: wait until one has picked it up.
    wait_for(
        "a triggerer to pick up the trigger",
        lambda: services.query(
            "select 1 from trigger join task_instance on task_instance.trigger_id = trigger.id "
            "where task_instance.dag_id = ? and trigger.triggerer_id is not null",
            dag_id,
        ),
        services,
    )
    time.sleep(2)
    (run_id,) = services.query("select run_id from dag_run where dag_id = ?", dag_id)[0]
    first = httpx.get(f"{emulator.base_url}/v1/messages/batches", headers=emulator.headers).json()["data"][0]
    token = httpx.get(f"{api_url}/auth/token").json()["access_token"]
    marked = httpx.patch(
        f"{api_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/create",
        json={"new_state": "failed"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert marked.status_code == 200, marked.text

    def cancelled() -> Any:
        url = f"{emulator.base_url}/v1/messages/batches/{first['id']}"
        return httpx.get(url, headers=emulator.headers).json()["cancel_initiated_at"]

    wait_for("the trigger's on_kill to cancel the batch", cancelled, services, timeout=60)
    assert final_state(services, dag_id) == "failed"

    services.airflow("tasks", "clear", dag_id, "-t", "create", "-y")
    assert final_state(services, dag_id) == "success", services.logs()
    assert emulator.stats()["batches_created"] == created_before + 2


@contextlib.contextmanager
def transient_failures(emulator: Any, prefix: str, seed: int) -> Iterator[list[int]]:
    """The emulator fails ~30% of the 12 requests ``<prefix>-N`` on their first submission (set at run time);
    yields the numbers of those that fail."""
    from airflow_batches.emulator.transient import draw

    failing = [n for n in range(12) if draw(seed, f"{prefix}-{n}") < 0.3]
    assert failing, "the draw must fail at least one request for round 2 to exist"
    emulator.set_faults(transient_errored_rate=0.3, transient_seed=seed)
    try:
        yield failing
    finally:
        emulator.set_faults(transient_errored_rate=0.0)


def check_two_rounds(
    services: Services, dag_id: str, created_before: int, failing: list[int], tries: int
) -> None:
    """One batch for round 1 and one for round 2, which resent exactly the failures; no round 3."""
    emulator: Any = services.emulator  # type: ignore[attr-defined]
    ran = dict(services.query("select task_id, try_number from task_instance where dag_id = ?", dag_id))
    assert ran == {"create": tries}
    assert emulator.stats()["batches_created"] == created_before + 2, "one batch per round, none twice"
    newest = httpx.get(f"{emulator.base_url}/v1/messages/batches?limit=1", headers=emulator.headers).json()
    (round_two,) = newest["data"]
    assert round_two["request_counts"]["succeeded"] == len(failing), "round 2 resent the failures only"


def test_a_worker_killed_while_waiting_for_a_follow_up_round_reattaches_to_every_round(
    services: Services,
) -> None:
    """SIGKILL the task process once round 2 was created; the retry reattaches to round 1 and round 2."""
    emulator: Any = services.emulator  # type: ignore[attr-defined]
    dag_id = "e2e_kill_worker_rounds"
    with transient_failures(emulator, "killround", seed=5) as failing:
        created_before = emulator.stats()["batches_created"]
        trigger_dag(services, dag_id)

        def running_pid_in_round_two() -> int | None:
            rows = services.query(
                "select pid from task_instance where dag_id = ? and state = 'running'", dag_id
            )
            created = emulator.stats()["batches_created"] - created_before
            return rows[0][0] if rows and rows[0][0] and created >= 2 else None

        pid = wait_for("the task to create round 2 and wait", running_pid_in_round_two, services)
        time.sleep(1)  # let the ledger write (right after create returns) land
        os.kill(pid, signal.SIGKILL)
        assert final_state(services, dag_id) == "success", services.logs()
    check_two_rounds(services, dag_id, created_before, failing, tries=2)


def test_a_deferred_create_defers_again_for_each_follow_up_round(services: Services) -> None:
    emulator: Any = services.emulator  # type: ignore[attr-defined]
    dag_id = "e2e_deferred_rounds"
    with transient_failures(emulator, "deferround", seed=6) as failing:
        created_before = emulator.stats()["batches_created"]
        trigger_dag(services, dag_id)
        wait_for(
            "round 2 to be created while the task is deferred again",
            lambda: (
                emulator.stats()["batches_created"] - created_before >= 2
                and services.query(
                    "select 1 from task_instance where dag_id = ? and state = 'deferred'", dag_id
                )
            ),
            services,
        )
        assert final_state(services, dag_id) == "success", services.logs()
    check_two_rounds(services, dag_id, created_before, failing, tries=1)
