"""Quick start: send a few Messages requests as one batch, wait in the triggerer, land the results locally.

Needs a connection ``anthropic_default`` (API key in the password field). To try it without a key against the
local emulator, see the README's "Connection" section (``airflow dags test example_batches_quickstart``). It
polls every 5 seconds (``$AIRFLOW_BATCHES_POLL_INTERVAL``): a quick start is watched, and a poll is free.

Results land under ``$AIRFLOW_BATCHES_BASE/quickstart/<run id>/`` (default: a folder in
``$AIRFLOW_HOME``); the Airflow Variable ``airflow_batches_base`` overrides it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_batches.operators import BatchCreateOperator, BatchResultsOperator

DEFAULT_BASE = os.environ.get(
    "AIRFLOW_BATCHES_BASE",
    (Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "airflow-batches-data").as_uri(),
)
BASE = "{{ var.value.get('airflow_batches_base', '" + DEFAULT_BASE + "') }}"
MODEL = os.environ.get("AIRFLOW_BATCHES_MODEL", "claude-haiku-4-5")
POLL_INTERVAL = float(os.environ.get("AIRFLOW_BATCHES_POLL_INTERVAL", "5"))

QUESTIONS = {
    "capital-france": "What is the capital of France? Answer in one word.",
    "haiku-airflow": "Write a haiku about data pipelines.",
    "sum-2-3": "What is 2 + 3? Answer with the number only.",
}

with DAG(
    dag_id="example_batches_quickstart",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "anthropic", "batches"],
    doc_md=__doc__,
):
    create = BatchCreateOperator(
        task_id="create_batch",
        requests=[
            {
                "custom_id": custom_id,
                "params": {"max_tokens": 256, "messages": [{"role": "user", "content": question}]},
            }
            for custom_id, question in QUESTIONS.items()
        ],
        default_model=MODEL,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        retries=2,
    )
    BatchResultsOperator(
        task_id="land_results",
        batch_id=create.output,
        destination=BASE + "/quickstart/{{ run_id }}/",
    )
