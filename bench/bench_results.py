"""Benchmark: landing batch results from the emulator into file:// and s3://, against naive baselines.

Prints a table of throughput (MB/s, lines/s) and peak memory growth for each case and method; no assertions.
Each measurement runs in its own subprocess so peak RSS (``ru_maxrss``) belongs to that method alone; the
figure shown is the growth of peak RSS during the landing (after imports and client setup).

Cases: results of ``--sizes-mb`` made of ~100 KB lines (few, big answers), and ``--small-lines`` lines of
~1 KB (the common shape of real results, where lines/s matters; more than 100,000 lines land as a group of
batches). ``--destinations file,s3``: s3 is a moto server on loopback (in its own process, so what it stores
does not count against the landing's memory; its own speed bounds the s3 rows).

Methods:
  land_results      this package: streamed, byte-exact, checked, atomic
  sdk_list          the official SDK's results() iterator, each result re-serialized with json.dumps into a
                    list, then written (the pattern of the official provider's example)
  sdk_stream        the official SDK's results() iterator, re-serialized and written line by line (bounded
                    memory, but not byte-exact)

The SDK baselines write to file:// only.

Usage: .venv/bin/python bench/bench_results.py [--sizes-mb 10,200] [--small-lines 200000]
       [--destinations file,s3] [--repeat 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIG_TEXT_BYTES = 100_000  # each request echoes ~100 KB: 10 MB = 100 requests
SMALL_TEXT_BYTES = 600  # with the result's JSON around it, a line of ~1 KB
MAX_REQUESTS_PER_BATCH = 100_000


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(method: str, batch_ids_json: str, base_url: str, api_key: str, destination: str) -> dict[str, Any]:
    """Run one landing in this process and measure it."""
    os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
        {"conn_type": "anthropic", "host": base_url, "password": api_key}
    )
    batch_ids: list[str] = json.loads(batch_ids_json)
    if method == "land_results":
        from airflow_batches.hooks import BatchHook

        hook = BatchHook()
        hook.retrieve(batch_ids[0])  # connection lookup and client imports before the baseline RSS
        options: dict[str, Any] = {"progress_interval": 3600}
        if destination.startswith("s3://"):
            # Build the S3 filesystem and load botocore's service model (tens of MB, once per process).
            from airflow.sdk import ObjectStoragePath

            ObjectStoragePath(destination, conn_id="aws_default").exists()
            options["destination_conn_id"] = "aws_default"
        before = _maxrss_mb()
        start = time.perf_counter()
        manifest = hook.land_results(batch_ids, destination, **options)
        seconds = time.perf_counter() - start
        size, lines = manifest["bytes"], manifest["lines"]
    else:
        import anthropic

        client = anthropic.Anthropic(api_key=api_key, base_url=base_url)
        client.messages.batches.retrieve(batch_ids[0])
        before = _maxrss_mb()
        start = time.perf_counter()
        lines = size = 0
        for batch_id in batch_ids:
            target = Path(destination.removeprefix("file://")) / f"{batch_id}.jsonl"
            if method == "sdk_list":
                rows = [
                    json.dumps(result.model_dump()) for result in client.messages.batches.results(batch_id)
                ]
                with target.open("w") as out:
                    for row in rows:
                        out.write(row + "\n")
                lines += len(rows)
                del rows
            else:
                with target.open("w") as out:
                    for result in client.messages.batches.results(batch_id):
                        out.write(json.dumps(result.model_dump()) + "\n")
                        lines += 1
            size += target.stat().st_size
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": size, "lines": lines, "rss_growth_mb": _maxrss_mb() - before}


def measure(
    method: str, batch_ids: list[str], base_url: str, api_key: str, destination: str
) -> dict[str, Any]:
    """One measurement in a fresh process; ``destination`` is ``file`` or an ``s3://bucket`` URI."""
    with tempfile.TemporaryDirectory(prefix="bench-results-") as out_dir:
        unique = Path(out_dir).name
        target = f"file://{out_dir}/" if destination == "file" else f"{destination}/{unique}/"
        command = [
            sys.executable,
            __file__,
            "--worker",
            method,
            json.dumps(batch_ids),
            base_url,
            api_key,
            target,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def create_batches(hook: Any, count: int, text_bytes: int) -> list[str]:
    """``count`` requests echoing ~``text_bytes`` each, in as many batches as the API's limit needs."""
    batch_ids = []
    for first in range(0, count, MAX_REQUESTS_PER_BATCH):
        requests = (
            {
                "custom_id": f"r{i}",
                "params": {
                    "model": "claude-emulated",
                    "max_tokens": text_bytes,
                    "messages": [{"role": "user", "content": f"{i} " + "x" * text_bytes}],
                },
            }
            for i in range(first, min(count, first + MAX_REQUESTS_PER_BATCH))
        )
        batch_ids.append(hook.create(requests).id)
    return batch_ids


def parse_throughput(megabytes: int = 50) -> tuple[float, float]:
    """The per-line check alone (the landing's hot path), on lines shaped like the emulator's."""
    from airflow_batches.results.checker import ResultChecker

    line_template = {
        "custom_id": "",
        "result": {
            "type": "succeeded",
            "message": {
                "id": "msg_x",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [{"type": "text", "text": "x" * 5_000}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1250, "output_tokens": 1250},
            },
        },
    }
    lines = []
    total = 0
    while total < megabytes * 1_000_000:
        line_template["custom_id"] = f"r{len(lines)}"
        line = (json.dumps(line_template, separators=(",", ":")) + "\n").encode()
        lines.append(line)
        total += len(line)
    checker = ResultChecker("bench")
    start = time.perf_counter()
    for line in lines:
        checker.check(line)
    seconds = time.perf_counter() - start
    return total / seconds / 1e6, len(lines) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes-mb", default="10,200", help="results sizes in MB made of ~100 KB lines")
    parser.add_argument("--small-lines", type=int, default=200_000, help="lines of ~1 KB (0: none)")
    parser.add_argument("--destinations", default="file,s3", help="file and/or s3 (moto on loopback)")
    parser.add_argument("--methods", default="land_results,sdk_stream,sdk_list")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the fastest is shown")
    args = parser.parse_args()

    from airflow_batches.emulator.testing import run_emulator
    from airflow_batches.hooks import BatchHook

    sys.path.insert(0, str(REPO / "tests"))
    from s3 import aws_connection, run_moto_s3

    cases = [
        (f"{int(mb)} MB", int(mb) * 1_000_000 // BIG_TEXT_BYTES, BIG_TEXT_BYTES)
        for mb in args.sizes_mb.split(",")
    ]
    if args.small_lines:
        cases.append((f"{args.small_lines:,} x 1 KB", args.small_lines, SMALL_TEXT_BYTES))
    destinations = args.destinations.split(",")
    methods = args.methods.split(",")
    rows = []
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(run_emulator(processing_seconds=0))
        os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
            {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
        )
        targets = {"file": "file"}
        if "s3" in destinations:
            import boto3

            endpoint = stack.enter_context(run_moto_s3())
            os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(endpoint)
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ).create_bucket(Bucket="bench")
            targets["s3"] = "s3://bench"
        hook = BatchHook()
        for label, count, text_bytes in cases:
            batch_ids = create_batches(hook, max(1, count), text_bytes)
            for destination in destinations:
                for method in methods:
                    if destination != "file" and method != "land_results":
                        continue
                    runs = [
                        measure(method, batch_ids, emulator.base_url, emulator.api_key, targets[destination])
                        for _ in range(args.repeat)
                    ]
                    rows.append((label, destination, method, min(runs, key=lambda r: r["seconds"])))
            for batch_id in batch_ids:
                hook.delete(batch_id)

    python = sys.version.split()[0]
    print(f"\nresults landing, emulator on loopback  (python {python}, {os.cpu_count()} cpus)")
    header = (
        f"{'case':>17} {'to':<4} {'method':<13} {'MB':>7} {'lines':>7} {'s':>7} {'MB/s':>6} {'lines/s':>8}"
    )
    print(f"{header} {'peak RSS +MB':>12}")
    for label, destination, method, r in rows:
        mb = r["bytes"] / 1e6
        print(
            f"{label:>17} {destination:<4} {method:<13} {mb:>7.1f} {r['lines']:>7} {r['seconds']:>7.2f} "
            f"{mb / r['seconds']:>6.1f} {r['lines'] / r['seconds']:>8.0f} {r['rss_growth_mb']:>12.1f}"
        )
    mbps, lps = parse_throughput()
    print(f"\nper-line checks alone (json.loads + custom_id/type/usage): {mbps:.0f} MB/s, {lps:.0f} lines/s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(*sys.argv[2:7])))
    else:
        main()
