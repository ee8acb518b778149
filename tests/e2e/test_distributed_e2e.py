"""Airflow's distributed setup, for real: PostgreSQL, LocalExecutor, scheduler, dag-processor, api-server and
two ``airflow triggerer`` processes. A DAG of mapped deferrable tasks (creates, and sensors on batches a task
submitted) all wait at once; one triggerer is SIGKILLed; the other adopts its triggers and every task ends.

Proved from the emulator's counters and the metadata DB: one batch per create task and no create sent twice,
each task resumed exactly once (on its first try), and no trigger left behind.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2e_services import Services, airflow_services

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_distributed"
MAPS = 50  # the DAG's DISTRIBUTED_MAPS: mapped creates, and as many mapped sensors (100 deferrable tasks)


@pytest.fixture
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home = tmp_path_factory.mktemp("home-distributed")
    # Batches stay in progress until the test moves the emulator's clock past their processing time.
    with airflow_services(
        home, "postgres", triggerers=0, parallelism=8, processing_seconds=3600, latency_ms=20
    ) as running:
        yield running


def start_triggerer(services: Services, name: str, known: set[int]) -> int:
    """Start a triggerer and return the id of its job (the one that was not there before)."""
    services.start_triggerer(name)
    new: set[int] = services.wait_for(
        f"{name} to register",
        lambda: (
            {
                job_id
                for (job_id,) in services.query(
                    "select id from job where job_type = 'TriggererJob' and state = 'running'"
                )
            }
            - known
        ),
    )
    assert len(new) == 1
    return new.pop()


def triggers_by_triggerer(services: Services) -> Counter[int | None]:
    rows = services.query(
        "select trigger.triggerer_id from task_instance "
        "join trigger on task_instance.trigger_id = trigger.id where task_instance.dag_id = ?",
        DAG_ID,
    )
    return Counter(triggerer_id for (triggerer_id,) in rows)


def test_a_sigkilled_triggerer_s_waits_are_adopted_and_every_task_resumes_once(services: Services) -> None:
    emulator: Any = services.emulator
    jobs = {"triggerer-1": start_triggerer(services, "triggerer-1", set())}
    jobs["triggerer-2"] = start_triggerer(services, "triggerer-2", set(jobs.values()))
    services.trigger_dag(DAG_ID)

    def all_deferred_and_held() -> Counter[int | None] | None:
        held = triggers_by_triggerer(services)
        return held if sum(held.values()) == 2 * MAPS and None not in held else None

    held = services.wait_for("every mapped task to defer and be picked up", all_deferred_and_held, 600)
    victim = max(jobs, key=lambda name: held[jobs[name]])
    survivor = next(name for name in jobs if name != victim)
    assert held[jobs[victim]] > 0
    services.stop(victim, signal.SIGKILL)

    services.wait_for(
        f"{survivor} to adopt every trigger",
        lambda: triggers_by_triggerer(services) == Counter({jobs[survivor]: 2 * MAPS}),
        120,
    )
    listed = httpx.get(
        f"{emulator.base_url}/v1/messages/batches", params={"limit": 1000}, headers=emulator.headers
    ).json()["data"]
    assert len(listed) == 2 * MAPS and {b["processing_status"] for b in listed} == {"in_progress"}
    emulator.advance_clock(3600)  # every batch ends now

    assert services.final_state(DAG_ID, timeout=600) == "success", services.logs()
    tis = services.query(
        "select task_id, map_index, state, try_number from task_instance where dag_id = ?", DAG_ID
    )
    mapped = [(task_id, index) for task_id, index, _, _ in tis if task_id in ("create", "sense")]
    assert sorted(mapped) == sorted(
        [("create", n) for n in range(MAPS)] + [("sense", n) for n in range(MAPS)]
    )
    assert {(state, tries) for _, _, state, tries in tis} == {("success", 1)}

    # One batch per create task, none sent twice (the submit task made one batch per request).
    stats = emulator.stats()
    assert stats["batches_created"] == 2 * MAPS and stats["requests"]["create"] == 2 * MAPS
    groups = services.query(
        "select map_index, value from xcom where dag_id = ? and task_id = 'create' and key = 'return_value'",
        DAG_ID,
    )
    batch_ids = [_json(value)["batch_ids"] for _, value in groups]
    assert len(batch_ids) == MAPS and all(len(ids) == 1 for ids in batch_ids)
    assert len({ids[0] for ids in batch_ids}) == MAPS

    # Each deferred task resumed exactly once.
    resumed = Counter((services.out_dir / "resumed.txt").read_text().splitlines())
    assert resumed == Counter([f"create {n}" for n in range(MAPS)] + [f"sense {n}" for n in range(MAPS)])

    # No trigger left behind: the survivor removes the fired triggers.
    services.wait_for(
        "every trigger to be cleaned up",
        lambda: services.query("select count(*) from trigger")[0][0] == 0,
        120,
    )
    assert services.query("select count(*) from task_instance where trigger_id is not null") == [(0,)]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
