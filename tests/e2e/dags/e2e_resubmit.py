"""DAGs for resubmit rounds (``resubmit_rounds``), run against an emulator failing requests transiently.

The requests come from a JSONL file (``requests.jsonl`` under the ``e2e_output`` Variable, written by the
test), from XCom and inline; ``e2e_resubmit_crash`` dies once right after its second round was created.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_batches.operators import BatchCreateOperator
from airflow_batches.operators.create import BatchCreateOperator as _Create

START = datetime(2026, 1, 1)
OUTPUT = "{{ var.value.e2e_output }}"


def requests(count: int, prefix: str, *, invalid: int = 0) -> list[dict[str, Any]]:
    """``count`` small requests; the first ``invalid`` ones always end ``errored`` (invalid_request_error)."""
    out = []
    for n in range(count):
        params: dict[str, Any] = {
            "model": "claude-haiku-4-5",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": f"echo {prefix} number {n}"}],
        }
        if n < invalid:
            params["metadata"] = {"emulator": "error"}
        out.append({"custom_id": f"{prefix}-{n}", "params": params})
    return out


class CrashInRoundTwoOperator(_Create):
    """Dies on its first try right after round 2 was created (and recorded), like a killed worker."""

    def _wait(self, context: Any, hook: Any, group: Any, deadline: float | None) -> Any:
        if len(group.get("rounds", [])) >= 2 and context["ti"].try_number == 1:
            raise RuntimeError("simulated worker crash after round 2 was created")
        return super()._wait(context, hook, group, deadline)


with DAG("e2e_resubmit", schedule=None, start_date=START, catchup=False):

    @task
    def make_requests() -> list[dict[str, Any]]:
        return requests(30, "xcom", invalid=2)

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

with DAG("e2e_resubmit_crash", schedule=None, start_date=START, catchup=False):
    CrashInRoundTwoOperator(
        task_id="create",
        requests=requests(40, "crash"),
        max_requests_per_batch=25,
        resubmit_rounds=2,
        deferrable=True,
        poll_interval=0.5,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
