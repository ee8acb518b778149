"""Benchmark: the cost plan of a dry run (``BatchCreateOperator(dry_run=True)``) against the spooling every
real run does anyway, measured in the same run.

Prints seconds, requests/s and peak memory growth; no assertions. The input is a generated JSONL file
(default 100,000 requests of about 1 KB). Each method runs in its own subprocess (peak RSS of that method
alone, as in ``bench_create.py``).

Methods:
  spool        validation and spooling alone (``spool_batches``): the baseline, part of every run
  plan-local   ``spool`` plus the per-model tally and the local token estimate (no request)
  plan-count   ``spool`` plus the tally, ``count_tokens`` for the sample (100 requests, 8 at a time) on the
               emulator over loopback, the estimate scaled by bytes, and the plan

Usage: .venv/bin/python bench/bench_plan.py [--requests 100000] [--request-bytes 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_create import write_input
from bench_runs import maxrss_mb, measure, print_table, run

METHODS = ("spool", "plan-local", "plan-count")


def worker(method: str, input_path: str, base_url: str, api_key: str) -> dict[str, Any]:
    import asyncio

    from airflow_batches.api import BatchServiceAsync, spool_batches
    from airflow_batches.cost.input_tokens import count_samples, estimate_from_counts, estimate_locally
    from airflow_batches.cost.plan import build_plan
    from airflow_batches.cost.prices import PriceTable
    from airflow_batches.cost.tally import RequestTally

    with tempfile.TemporaryDirectory(prefix="bench-plan-") as spool_dir:
        before = maxrss_mb()
        start = time.perf_counter()
        tally = RequestTally() if method != "spool" else None
        with Path(input_path).open("rb") as source:
            batches = spool_batches(source, spool_dir=spool_dir, observe=tally)
        plan: dict[str, Any] = {}
        if tally is not None:
            if method == "plan-local":
                estimates = {m: estimate_locally(t) for m, t in tally.models.items()}
            else:

                async def count() -> dict[str, list[int]]:
                    async with BatchServiceAsync(api_key=api_key, base_url=base_url) as service:
                        return await count_samples(service, tally.models)

                counts = asyncio.run(count())
                estimates = {m: estimate_from_counts(t, counts[m]) for m, t in tally.models.items()}
            plan = build_plan(batches, tally.models, estimates, PriceTable())
        seconds = time.perf_counter() - start
        for batch in batches:
            batch.cleanup()
    return {
        "seconds": seconds,
        "requests": sum(b.request_count for b in batches),
        "input_tokens": sum(m["input_tokens"] for m in plan.get("models", {}).values()),
        "rss_growth_mb": maxrss_mb() - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--request-bytes", type=int, default=1_000, help="size of each JSONL line")
    args = parser.parse_args()

    from airflow_batches.emulator.testing import run_emulator

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-plan-input-") as tmp:
        input_path = Path(tmp) / "requests.jsonl"
        input_bytes = write_input(input_path, args.requests, args.request_bytes)
        with run_emulator() as emulator:
            for method in METHODS:
                figures = measure(method, input_path, emulator.base_url, emulator.api_key, script=__file__)
                rows.append((method, figures))

    baseline = rows[0][1]["seconds"]
    print_table(
        f"cost plan: {args.requests:,} requests, {input_bytes / 1e6:.1f} MB of JSONL",
        [
            ("s", 7, lambda r: f"{r['seconds']:.2f}"),
            ("x spool", 8, lambda r: f"{r['seconds'] / baseline:.2f}"),
            ("requests/s", 11, lambda r: f"{r['requests'] / r['seconds']:,.0f}"),
            ("input tokens", 13, lambda r: f"{r['input_tokens']:,}"),
            ("peak RSS +MB", 13, lambda r: f"{r['rss_growth_mb']:.1f}"),
        ],
        rows,
    )


if __name__ == "__main__":
    run(main, worker)
