"""A scheduled daily ETL through Message Batches: records in, a table out, nothing converted by hand.

Input: each day's records in ``{base}/input/{ds}/records.jsonl``, one JSON object per line::

    {"id": "1042", "text": "Bread dough rises because yeast turns sugar into gas ..."}

``id`` (a string or a number, unique within the day, of letters, digits, ``_`` and ``-``: it becomes the
request's ``custom_id``, ``rec-<id>``, at most 64 characters) and ``text`` (what to summarize) are required;
the table gets a ``record_<field>`` text column for each field of the first record. A ``records.csv`` with
the header ``id,text`` or a ``records.parquet`` with those columns works the same (change the file name
below).

Each day:

1. ``create_batches`` turns each record into one request with a ``RequestTemplate``: a shared, cached
   instruction and the record's text, asking for a structured answer (``Summary``). The requests are
   validated and split into batches, checked not to cost more than ``AIRFLOW_BATCHES_MAX_COST_USD`` (default
   $25) at batch prices, submitted, and waited for in the triggerer; requests that errored transiently or
   expired are sent again, up to two more rounds (``resubmit_rounds=2``); the landing keeps each request's
   final line.
2. ``land_results`` streams the raw results to ``{base}/results/{ds}/`` and writes ``table.parquet`` next to
   them: one row per record, in record order, joined to the record (``record_id``, ``record_text``), with the
   answer's fields (``summary``, ``topic``) as columns; an answer that breaks the schema is kept and marked
   ``valid = false``.
3. ``summarize`` writes ``summary.json`` from the landing's manifest: result types, valid and invalid answers,
   token usage and the cost at batch prices (both from the manifest).

Downstream DAGs: schedule on ``AssetAlias("example_batches_etl_results")`` (``RESULTS_ALIAS``). Each run
attaches two assets to it, the day's results folder (``{base}/results/{ds}``) and its table
(``.../table.parquet``), each event's ``extra`` holding the landing's counts and files (the table's: its
``table`` entry).

Settings (environment of the DAG processor and workers): ``{base}`` is the Airflow Variable
``airflow_batches_base`` if set, else ``$AIRFLOW_BATCHES_BASE``, else a folder in ``$AIRFLOW_HOME``; any
object storage URI works (``file://``, ``s3://bucket/prefix``, ...). ``AIRFLOW_BATCHES_POLL_INTERVAL``
(default 30 s; a poll is one free ``retrieve``) sets how often the batches are checked: against the local
emulator, which ends a batch in 2 s, set it to 1. ``AIRFLOW_BATCHES_MODEL`` (default ``claude-haiku-4-5``).
The Parquet table needs ``pip install "airflow-batches[parquet]"`` (or set
``AIRFLOW_BATCHES_TABLE_FORMAT=csv``).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, ObjectStoragePath, task
from pydantic import BaseModel, Field

from airflow_batches.operators import BatchCreateOperator, BatchResultsOperator
from airflow_batches.records import RequestTemplate

DEFAULT_BASE = os.environ.get(
    "AIRFLOW_BATCHES_BASE",
    (Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "airflow-batches-data").as_uri(),
)
BASE = "{{ var.value.get('airflow_batches_base', '" + DEFAULT_BASE + "') }}"
MODEL = os.environ.get("AIRFLOW_BATCHES_MODEL", "claude-haiku-4-5")
POLL_INTERVAL = float(os.environ.get("AIRFLOW_BATCHES_POLL_INTERVAL", "30"))
TABLE_FORMAT: Any = os.environ.get("AIRFLOW_BATCHES_TABLE_FORMAT", "parquet")

# The name downstream DAGs schedule on: AssetAlias(RESULTS_ALIAS).
RESULTS_ALIAS = "example_batches_etl_results"

# The most the daily batch may cost (input plus every max_tokens, at batch prices) before it is sent.
MAX_COST_USD = float(os.environ.get("AIRFLOW_BATCHES_MAX_COST_USD", "25"))

INSTRUCTIONS = (
    "You summarize short notes for a daily digest. Answer with one sentence that keeps the note's main "
    "point, and the note's topic in at most three words."
)


class Summary(BaseModel):
    """The structured answer each request asks for; one table column per field."""

    summary: str = Field(description="one sentence")
    topic: str = Field(description="at most three words")


RECORDS = RequestTemplate(
    records=BASE + "/input/{{ ds }}/records.jsonl",
    custom_id="rec-{{ record.id }}",
    params={
        "model": MODEL,
        "max_tokens": 512,
        # The same instruction for every record: cached once, read at a tenth of the input price after.
        "system": [{"type": "text", "text": INSTRUCTIONS, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "{{ record.text }}"}],
    },
    output_schema=Summary,
)


with DAG(
    dag_id="example_batches_etl",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["example", "anthropic", "batches"],
    doc_md=__doc__,
):
    create = BatchCreateOperator(
        task_id="create_batches",
        requests=RECORDS,
        max_cost_usd=MAX_COST_USD,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        resubmit_rounds=2,
        # A round can take up to the API's 24 h expiry: room for the first round and two follow-ups.
        timeout=3 * 24 * 3600,
        retries=2,
    )
    land = BatchResultsOperator(
        task_id="land_results",
        batch_id=create.output,
        destination=BASE + "/results/{{ ds }}/",
        table=TABLE_FORMAT,
        join_records=RECORDS,
        asset_alias=RESULTS_ALIAS,
    )

    @task
    def summarize(manifest: dict[str, Any], base: str, ds: str | None = None) -> dict[str, Any]:
        table = manifest["table"]
        cost = manifest["cost"]  # at batch prices, from the usage the results reported
        summary = {
            "date": ds,
            "batch_ids": manifest["batch_ids"],
            "result_types": table["result_types"],
            "valid_answers": table["valid"],
            "invalid_answers": table["invalid"],
            "tokens_by_model": {model: c["usage"] for model, c in cost["by_model"].items()},
            "cost_usd": cost["usd"],  # None when a model has no price (see unpriced_models)
            "unpriced_models": cost["unpriced_models"],
            "table": table["uri"],
        }
        (ObjectStoragePath(f"{base}/results/{ds}") / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
        return summary

    summarize(land.output, BASE)
