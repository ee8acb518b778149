"""DAGs the end-to-end tests run in real Airflow against the emulator (connection ``anthropic_default``).

Outputs go under the Airflow Variable ``e2e_output`` (set per test through ``AIRFLOW_VAR_E2E_OUTPUT``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from airflow.sdk import DAG, task

from airflow_batches.operators import (
    BatchCancelOperator,
    BatchCreateOperator,
    BatchDeleteOperator,
    BatchResultsOperator,
)
from airflow_batches.operators.create import BatchCreateOperator as _Create
from airflow_batches.sensors import BatchSensor

START = datetime(2026, 1, 1)
OUTPUT = "{{ var.value.e2e_output }}"


def requests(count: int, *, errored: int = 0, prefix: str = "req") -> list[dict[str, Any]]:
    """``count`` small requests; the first ``errored`` ones carry the emulator's errored switch."""
    out = []
    for n in range(count):
        params: dict[str, Any] = {
            "model": "claude-haiku-4-5",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": f"echo number {n}"}],
        }
        if n < errored:
            params["metadata"] = {"emulator": "error"}
        out.append({"custom_id": f"{prefix}-{n}", "params": params})
    return out


# A first try that fails is retried at once.
RETRY_ONCE: dict[str, Any] = {"retries": 1, "retry_delay": timedelta(seconds=0)}


def create_task(count: int, **kwargs: Any) -> BatchCreateOperator:
    """The ``create`` task of most DAGs here: ``count`` small requests, polled every 0.5 s."""
    kwargs.setdefault("task_id", "create")
    kwargs.setdefault("poll_interval", 0.5)
    return BatchCreateOperator(requests=requests(count), **kwargs)


class CrashOnFirstTryCreateOperator(_Create):
    """Dies on its first try right after its batches were created (and recorded), like a killed worker.

    ``crash_at="defer"`` dies instead of deferring; ``crash_at="resume"`` dies in ``execute_complete`` after
    the trigger fired. Only the first try crashes, so the retry shows whether it reattaches.
    """

    def __init__(self, *, crash_at: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crash_at = crash_at

    def defer(self, **kwargs: Any) -> Any:
        from airflow.sdk import get_current_context

        if self.crash_at == "defer" and get_current_context()["ti"].try_number == 1:
            raise RuntimeError("simulated worker crash after create, before deferring")
        return super().defer(**kwargs)

    def execute_complete(self, context: Any, event: Any, group: Any = None, **kwargs: Any) -> dict[str, Any]:
        if self.crash_at == "resume" and context["ti"].try_number == 1:
            raise RuntimeError("simulated worker crash after the trigger fired")
        return super().execute_complete(context, event, group=group, **kwargs)


with DAG("e2e_split_group", schedule=None, start_date=START, catchup=False):
    create = create_task(10, max_requests_per_batch=3, deferrable=True)
    BatchResultsOperator(task_id="land", batch_id=create.output, destination=OUTPUT + "/split/")

with DAG("e2e_partial_failure", schedule=None, start_date=START, catchup=False):
    # 2 of 5 requests error (40%): tolerated up to 50%, not up to 20%.
    for task_id, ratio in (("tolerant", 0.5), ("strict", 0.2)):
        BatchCreateOperator(
            task_id=task_id,
            requests=requests(5, errored=2, prefix=task_id),
            max_failure_ratio=ratio,
            deferrable=True,
            poll_interval=0.5,
        )

with DAG("e2e_blocking", schedule=None, start_date=START, catchup=False):
    create = create_task(4, deferrable=False)
    BatchResultsOperator(task_id="land", batch_id=create.output, destination=OUTPUT + "/blocking/")

with DAG("e2e_retry_after_timeout", schedule=None, start_date=START, catchup=False):
    # The emulator keeps batches in progress for 5 s from their creation, and the execution timeout is as
    # long, counted from before create: the first try always times out while waiting (the batch ends the
    # create call's duration after it), and the retry finds it ended or ending, with 5 s of slack on a busy
    # machine.
    create_task(3, deferrable=False, execution_timeout=timedelta(seconds=5), **RETRY_ONCE)

for crash_at in ("defer", "resume"):
    with DAG(f"e2e_retry_deferrable_crash_at_{crash_at}", schedule=None, start_date=START, catchup=False):
        CrashOnFirstTryCreateOperator(
            task_id="create",
            crash_at=crash_at,
            requests=requests(6),
            max_requests_per_batch=4,
            deferrable=True,
            poll_interval=0.5,
            **RETRY_ONCE,
        )

with DAG("e2e_clear_after_crash", schedule=None, start_date=START, catchup=False):
    # Run by the real scheduler; no retries: the first try dies after create, then the test clears the task.
    CrashOnFirstTryCreateOperator(
        task_id="create", crash_at="defer", requests=requests(3), deferrable=True, poll_interval=1
    )

with DAG("e2e_cancel_on_kill", schedule=None, start_date=START, catchup=False):
    # The emulator keeps batches in progress for a long time; the execution timeout kills the task.
    create_task(3, deferrable=False, cancel_on_kill=True, execution_timeout=timedelta(seconds=2))

with DAG("e2e_triggerer", schedule=None, start_date=START, catchup=False):
    # Run by the real scheduler + triggerer; the test restarts the triggerer while this waits.
    create = create_task(3, deferrable=True, poll_interval=1)
    BatchResultsOperator(task_id="land", batch_id=create.output, destination=OUTPUT + "/triggerer/")

with DAG("e2e_kill_worker", schedule=None, start_date=START, catchup=False):
    # Run by the real scheduler; the test SIGKILLs the task process while it waits after create.
    create_task(2, deferrable=False, poll_interval=1, retries=1, retry_delay=timedelta(seconds=1))

with DAG("e2e_cancel_then_delete", schedule=None, start_date=START, catchup=False):
    # Two running batches: one cancelled on its own, then the group deleted (cancel first, wait deferred).
    create = create_task(4, max_requests_per_batch=2, wait_for_completion=False)
    cancel = BatchCancelOperator(
        task_id="cancel",
        batch_id="{{ ti.xcom_pull('create')['batch_ids'][0] }}",
        wait_for_cancel=True,
        deferrable=True,
        poll_interval=0.5,
    )
    delete = BatchDeleteOperator(
        task_id="delete", batch_id=create.output, cancel_if_running=True, deferrable=True, poll_interval=0.5
    )
    create >> cancel >> delete

with DAG("e2e_cancel_deferred", schedule=None, start_date=START, catchup=False):
    # Run by the real scheduler + triggerer; the test clears the task while it is deferred.
    create_task(3, deferrable=True, poll_interval=1, cancel_on_kill=True)


def record_resume(context: Any) -> None:
    """Append ``task_id map_index`` to ``resumed.txt`` in the output folder: one line per resume."""
    ti = context["ti"]
    folder = Path(urlparse(os.environ["AIRFLOW_VAR_E2E_OUTPUT"]).path)
    with (folder / "resumed.txt").open("a") as out:
        out.write(f"{ti.task_id} {ti.map_index}\n")


class ResumeCountingCreate(_Create):
    def execute_complete(self, context: Any, event: Any, **kwargs: Any) -> dict[str, Any]:
        record_resume(context)
        return super().execute_complete(context, event, **kwargs)


class ResumeCountingSensor(BatchSensor):
    def execute_complete(self, context: Any, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        record_resume(context)
        return super().execute_complete(context, event, **kwargs)


# Run by the real scheduler with two triggerers on PostgreSQL; the test SIGKILLs one while all of these wait.
DISTRIBUTED_MAPS = 50
with DAG("e2e_distributed", schedule=None, start_date=START, catchup=False):
    ResumeCountingCreate.partial(task_id="create", deferrable=True, poll_interval=2).expand(
        requests=[requests(1, prefix=f"create-{n}") for n in range(DISTRIBUTED_MAPS)]
    )
    # One task submits a batch per request without waiting; a mapped sensor waits on each of them.
    submit = BatchCreateOperator(
        task_id="submit",
        requests=requests(DISTRIBUTED_MAPS, prefix="submit"),
        max_requests_per_batch=1,
        wait_for_completion=False,
    )

    @task
    def batch_ids(group: dict[str, Any]) -> list[str]:
        ids: list[str] = group["batch_ids"]
        return ids

    ResumeCountingSensor.partial(task_id="sense", deferrable=True, poke_interval=2).expand(
        batch_id=batch_ids(submit.output)
    )


# --- resubmit rounds (tests/e2e/test_resubmit_e2e.py: an emulator failing requests transiently) ---------


class CrashInRoundTwoOperator(_Create):
    """Dies on its first try right after round 2 was created (and recorded), like a killed worker."""

    def _wait(self, context: Any, hook: Any, group: Any, deadline: float | None) -> Any:
        if len(group.get("rounds", [])) >= 2 and context["ti"].try_number == 1:
            raise RuntimeError("simulated worker crash after round 2 was created")
        return super()._wait(context, hook, group, deadline)


with DAG("e2e_resubmit", schedule=None, start_date=START, catchup=False):

    @task
    def make_requests() -> list[dict[str, Any]]:
        return requests(30, errored=2, prefix="xcom")

    from_file = BatchCreateOperator(
        task_id="from_file",
        requests=OUTPUT + "/requests.jsonl",
        max_requests_per_batch=15,
        resubmit_rounds=2,
        # Round 1 fails ~15% of requests; the policy judges the final results, where none failed.
        max_failure_ratio=0.0,
        deferrable=True,
        poll_interval=0.5,
    )
    from_xcom = BatchCreateOperator(
        task_id="from_xcom",
        requests=make_requests(),
        resubmit_rounds=2,
        deferrable=False,
        poll_interval=0.5,
    )
    BatchResultsOperator(task_id="land_file", batch_id=from_file.output, destination=OUTPUT + "/file/")
    BatchResultsOperator(
        task_id="land_xcom", batch_id=from_xcom.output, destination=OUTPUT + "/xcom/", split_by_type=True
    )

with DAG("e2e_resubmit_crash", schedule=None, start_date=START, catchup=False):
    CrashInRoundTwoOperator(
        task_id="create",
        requests=requests(40, prefix="crash"),
        max_requests_per_batch=25,
        resubmit_rounds=2,
        deferrable=True,
        poll_interval=0.5,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )

# Run by the real scheduler + triggerer with the emulator failing requests transiently. Blocking: the test
# SIGKILLs the task process while it waits for round 2. Deferrable: the task defers for round 1, resumes to
# create round 2 and defers again.
for dag_id, prefix, deferrable in (
    ("e2e_kill_worker_rounds", "killround", False),
    ("e2e_deferred_rounds", "deferround", True),
):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        BatchCreateOperator(
            task_id="create",
            requests=requests(12, prefix=prefix),
            resubmit_rounds=2,
            deferrable=deferrable,
            poll_interval=1,
            retries=1,
            retry_delay=timedelta(seconds=1),
        )
