"""A scheduled daily ETL through Message Batches, reading and writing object storage.

Each day:

1. ``build_requests`` reads that day's input records ``{base}/input/{ds}/records.jsonl`` (one JSON object per
   line: ``{"id": ..., "text": ...}``) and writes one Messages request per record next to it, as
   ``requests.jsonl``, streaming line by line.
2. ``create_batches`` checks that the file's requests cannot cost more than ``AIRFLOW_BATCHES_MAX_COST_USD``
   (default $25) at batch prices, submits them (validated and split into batches as needed) and waits in the
   triggerer (deferrable); requests that come back errored for a reason a second try fixes (overloaded,
   api, rate-limit, timeout errors) or expired are sent again, up to two follow-up rounds
   (``resubmit_rounds=2``).
3. ``land_results`` streams one final line per request (the last round's) to ``{base}/results/{ds}/``.
4. ``summarize`` turns the results into ``table.csv`` (custom_id, result type, text, tokens) and
   ``summary.json`` (token totals and the cost at batch prices, both from the landing's manifest).

``{base}`` is the Airflow Variable ``airflow_batches_base`` if set, else ``$AIRFLOW_BATCHES_BASE``, else a
folder in ``$AIRFLOW_HOME``; any object storage URI works (``file://``, ``s3://bucket/prefix``, ...).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, ObjectStoragePath, task

from airflow_batches.operators import BatchCreateOperator, BatchResultsOperator

DEFAULT_BASE = os.environ.get(
    "AIRFLOW_BATCHES_BASE",
    (Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "airflow-batches-data").as_uri(),
)
BASE = "{{ var.value.get('airflow_batches_base', '" + DEFAULT_BASE + "') }}"
MODEL = os.environ.get("AIRFLOW_BATCHES_MODEL", "claude-haiku-4-5")
POLL_INTERVAL = float(os.environ.get("AIRFLOW_BATCHES_POLL_INTERVAL", "300"))

# The most the daily batch may cost (input plus every max_tokens, at batch prices) before it is sent.
MAX_COST_USD = float(os.environ.get("AIRFLOW_BATCHES_MAX_COST_USD", "25"))


def build_request(record: Mapping[str, Any], model: str) -> dict[str, Any]:
    """One Messages request for one input record; the record id becomes the custom_id."""
    return {
        "custom_id": f"rec-{record['id']}",
        "params": {
            "model": model,
            "max_tokens": 512,
            "messages": [{"role": "user", "content": f"Summarize in one sentence:\n\n{record['text']}"}],
        },
    }


def iter_result_rows(lines: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """One table row per results line: custom_id, result type, reply text and token counts."""
    for raw in lines:
        line = json.loads(raw)
        result = line["result"]
        message = result.get("message") or {}
        usage = message.get("usage") or {}
        if result["type"] == "errored":
            text = (result.get("error") or {}).get("error", {}).get("message", "")
        else:
            text = "".join(b.get("text", "") for b in message.get("content", []) if b.get("type") == "text")
        yield {
            "custom_id": line["custom_id"],
            "result_type": result["type"],
            "model": message.get("model", ""),
            "text": text,
            "input_tokens": int(usage.get("input_tokens") or 0),
            "output_tokens": int(usage.get("output_tokens") or 0),
            "cache_creation_input_tokens": int(usage.get("cache_creation_input_tokens") or 0),
            "cache_read_input_tokens": int(usage.get("cache_read_input_tokens") or 0),
        }


with DAG(
    dag_id="example_batches_etl",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["example", "anthropic", "batches"],
    doc_md=__doc__,
):

    @task
    def build_requests(base: str, ds: str | None = None) -> str:
        day = ObjectStoragePath(f"{base}/input/{ds}")
        source, target = day / "records.jsonl", day / "requests.jsonl"
        if not source.exists():
            raise FileNotFoundError(f"no input for {ds}: {source} does not exist")
        count = 0
        with source.open("rb") as records, target.open("wb") as requests:
            for number, raw in enumerate(records, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                    request = build_request(record, MODEL)
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{source} line {number}: not a record with 'id' and 'text' ({exc})"
                    ) from None
                requests.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
                count += 1
        print(f"Wrote {count} requests to {target}")
        return str(target)

    requests_uri = build_requests(BASE)

    create = BatchCreateOperator(
        task_id="create_batches",
        requests=requests_uri,
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
    )

    @task
    def summarize(manifest: dict[str, Any], base: str, ds: str | None = None) -> dict[str, Any]:
        out = ObjectStoragePath(f"{base}/results/{ds}")
        types: dict[str, int] = {}
        fields = [
            "custom_id",
            "result_type",
            "model",
            "text",
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ]
        with (out / "table.csv").open("wb") as raw_table:
            table = io.TextIOWrapper(raw_table, encoding="utf-8", newline="")
            writer = csv.DictWriter(table, fieldnames=fields)
            writer.writeheader()
            for item in manifest["files"]:
                with ObjectStoragePath(item["uri"]).open("rb") as lines:
                    for row in iter_result_rows(lines):
                        writer.writerow(row)
                        types[row["result_type"]] = types.get(row["result_type"], 0) + 1
            table.flush()
            table.detach()
        cost = manifest["cost"]  # at batch prices, from the usage the results reported
        summary = {
            "date": ds,
            "batch_ids": manifest["batch_ids"],
            "result_types": types,
            "tokens_by_model": {model: c["usage"] for model, c in cost["by_model"].items()},
            "cost_usd": cost["usd"],  # None when a model has no price (see unpriced_models)
            "unpriced_models": cost["unpriced_models"],
            "table": str(out / "table.csv"),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
        return summary

    summarize(land.output, BASE)
