"""The deferrable create operator under Airflow's real services: api-server, scheduler (LocalExecutor),
dag-processor and triggerer as separate processes, with the triggerer restarted in the middle of the wait.

Every test runs on both metadata databases users run: SQLite, and PostgreSQL (with a distributed setup).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from e2e_services import Services, airflow_services

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_triggerer"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def services(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """One set of services per database for this module's tests (starting them takes most of the time)."""
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    with airflow_services(home, request.param, processing_seconds=20) as running:
        yield running


def has_task_state_store() -> bool:
    from importlib.metadata import version

    major, minor = (int(part) for part in version("apache-airflow").split(".")[:2])
    return (major, minor) >= (3, 3)


def test_deferred_create_survives_a_triggerer_restart(services: Services) -> None:
    emulator: Any = services.emulator
    created_before = emulator.stats()["batches_created"]
    services.trigger_dag(DAG_ID)
    services.wait_for(
        "the create task to defer",
        lambda: services.query(
            "select 1 from task_instance where dag_id = ? and task_id = 'create' and state = 'deferred'",
            DAG_ID,
        ),
    )
    time.sleep(2)  # let the first triggerer poll a few times
    services.stop("triggerer")
    killed_at = datetime.now(UTC)
    batch = httpx.get(f"{emulator.base_url}/v1/messages/batches", headers=emulator.headers).json()["data"][0]
    assert batch["processing_status"] == "in_progress", "the batch ended before the triggerer restart"
    services.start_triggerer("triggerer-2")

    assert services.final_state(DAG_ID) == "success", services.logs()
    tries = dict(services.query("select task_id, try_number from task_instance where dag_id = ?", DAG_ID))
    assert tries == {"create": 1, "land": 1}
    ended = httpx.get(
        f"{emulator.base_url}/v1/messages/batches/{batch['id']}", headers=emulator.headers
    ).json()
    assert datetime.fromisoformat(ended["ended_at"].replace("Z", "+00:00")) > killed_at
    assert emulator.stats()["batches_created"] == created_before + 1
    landed = list((services.out_dir / "triggerer").glob("*.jsonl"))
    assert [p.name for p in landed] == [f"{batch['id']}.jsonl"]
    assert len(landed[0].read_text().splitlines()) == 3


def test_retry_after_the_worker_was_killed_reattaches(services: Services) -> None:
    """SIGKILL the task process while it waits (blocking path) after create; the retry reattaches."""
    emulator: Any = services.emulator
    created_before = emulator.stats()["batches_created"]
    services.trigger_dag("e2e_kill_worker")

    def running_pid_after_create() -> int | None:
        rows = services.query(
            "select pid from task_instance where dag_id = 'e2e_kill_worker' and state = 'running'"
        )
        created = emulator.stats()["batches_created"] > created_before
        return rows[0][0] if rows and rows[0][0] and created else None

    pid = services.wait_for("the task to create its batch and wait", running_pid_after_create)
    time.sleep(1)  # let the ledger write (right after create returns) land
    os.kill(pid, signal.SIGKILL)
    assert services.final_state("e2e_kill_worker") == "success", services.logs()
    tries = dict(
        services.query("select task_id, try_number from task_instance where dag_id = 'e2e_kill_worker'")
    )
    assert tries == {"create": 2}
    assert emulator.stats()["batches_created"] == created_before + 1


def test_marking_a_deferred_task_failed_cancels_its_batch_and_a_rerun_submits_anew(
    services: Services,
) -> None:
    """cancel_on_kill=True while deferred: a user marking the task failed makes the triggerer run on_kill,
    which cancels the batch; clearing the task afterwards runs it again with a new batch."""
    emulator: Any = services.emulator
    api_url: str = services.api_url
    dag_id = "e2e_cancel_deferred"
    created_before = emulator.stats()["batches_created"]
    services.trigger_dag(dag_id)
    services.wait_for(
        "the create task to defer",
        lambda: services.query(
            "select 1 from task_instance where dag_id = ? and task_id = 'create' and state = 'deferred'",
            dag_id,
        ),
    )
    # on_kill runs only for a trigger a triggerer is running: wait until one has picked it up.
    services.wait_for(
        "a triggerer to pick up the trigger",
        lambda: services.query(
            "select 1 from trigger join task_instance on task_instance.trigger_id = trigger.id "
            "where task_instance.dag_id = ? and trigger.triggerer_id is not null",
            dag_id,
        ),
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

    services.wait_for("the trigger's on_kill to cancel the batch", cancelled, timeout=60)
    assert services.final_state(dag_id) == "failed"

    services.airflow("tasks", "clear", dag_id, "-t", "create", "-y")
    assert services.final_state(dag_id) == "success", services.logs()
    assert emulator.stats()["batches_created"] == created_before + 2


def test_clearing_a_task_that_died_after_create_reattaches(services: Services) -> None:
    """No retries: the first try dies right after create and fails; a user clears it; the rerun reattaches."""
    emulator: Any = services.emulator
    dag_id = "e2e_clear_after_crash"
    created_before = emulator.stats()["batches_created"]
    services.trigger_dag(dag_id)
    assert services.final_state(dag_id) == "failed", services.logs()
    assert emulator.stats()["batches_created"] == created_before + 1
    ledger_sql = "select key from variable where key like 'airflow_batches.create_ledger.%'"
    # Before Airflow 3.3 (no task state store) the ledger is one Variable of the task instance.
    assert len(services.query(ledger_sql)) == (0 if has_task_state_store() else 1)

    services.airflow("tasks", "clear", dag_id, "-t", "create", "-y")
    assert services.final_state(dag_id) == "success", services.logs()
    tries = dict(services.query("select task_id, try_number from task_instance where dag_id = ?", dag_id))
    assert tries == {"create": 2}
    assert emulator.stats()["batches_created"] == created_before + 1
    assert services.query(ledger_sql) == []  # the ledger of a task that succeeded is gone


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
    emulator: Any = services.emulator
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
    emulator: Any = services.emulator
    dag_id = "e2e_kill_worker_rounds"
    with transient_failures(emulator, "killround", seed=5) as failing:
        created_before = emulator.stats()["batches_created"]
        services.trigger_dag(dag_id)

        def running_pid_in_round_two() -> int | None:
            rows = services.query(
                "select pid from task_instance where dag_id = ? and state = 'running'", dag_id
            )
            created = emulator.stats()["batches_created"] - created_before
            return rows[0][0] if rows and rows[0][0] and created >= 2 else None

        pid = services.wait_for("the task to create round 2 and wait", running_pid_in_round_two)
        time.sleep(1)  # let the ledger write (right after create returns) land
        os.kill(pid, signal.SIGKILL)
        assert services.final_state(dag_id) == "success", services.logs()
    check_two_rounds(services, dag_id, created_before, failing, tries=2)


def test_a_deferred_create_defers_again_for_each_follow_up_round(services: Services) -> None:
    emulator: Any = services.emulator
    dag_id = "e2e_deferred_rounds"
    with transient_failures(emulator, "deferround", seed=6) as failing:
        created_before = emulator.stats()["batches_created"]
        services.trigger_dag(dag_id)
        services.wait_for(
            "round 2 to be created while the task is deferred again",
            lambda: (
                emulator.stats()["batches_created"] - created_before >= 2
                and services.query(
                    "select 1 from task_instance where dag_id = ? and state = 'deferred'", dag_id
                )
            ),
        )
        assert services.final_state(dag_id) == "success", services.logs()
    check_two_rounds(services, dag_id, created_before, failing, tries=1)
