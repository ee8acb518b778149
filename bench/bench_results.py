"""Benchmark: landing batch results from the emulator into file://, against naive baselines.

Prints a table of throughput (MB/s, lines/s) and peak memory growth for each size and method; no assertions.
Each measurement runs in its own subprocess so peak RSS (``ru_maxrss``) belongs to that method alone; the
figure shown is the growth of peak RSS during the landing (after imports and client setup).

Methods:
  land_results      this package: streamed, byte-exact, checked, atomic
  sdk_list          the official SDK's results() iterator, each result re-serialized with json.dumps into a
                    list, then written (the pattern of the official provider's example)
  sdk_stream        the official SDK's results() iterator, re-serialized and written line by line (bounded
                    memory, but not byte-exact)

Usage: .venv/bin/python bench/bench_results.py [--sizes-mb 10,200] [--repeat 1]
"""

from __future__ import annotations

import argparse
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
LINE_TEXT_BYTES = 100_000  # each request echoes ~100 KB: 10 MB = 100 requests


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(method: str, batch_id: str, base_url: str, api_key: str, out_dir: str) -> dict[str, Any]:
    """Run one landing in this process and measure it."""
    os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
        {"conn_type": "anthropic", "host": base_url, "password": api_key}
    )
    if method == "land_results":
        from airflow_batches.hooks import BatchHook

        hook = BatchHook()
        hook.retrieve(batch_id)  # connection lookup and client imports before the baseline RSS
        before = _maxrss_mb()
        start = time.perf_counter()
        manifest = hook.land_results(batch_id, f"file://{out_dir}/", progress_interval=3600)
        seconds = time.perf_counter() - start
        size, lines = manifest["bytes"], manifest["lines"]
    else:
        import anthropic

        client = anthropic.Anthropic(api_key=api_key, base_url=base_url)
        client.messages.batches.retrieve(batch_id)
        before = _maxrss_mb()
        start = time.perf_counter()
        target = Path(out_dir) / f"{batch_id}.jsonl"
        lines = 0
        if method == "sdk_list":
            rows = [json.dumps(result.model_dump()) for result in client.messages.batches.results(batch_id)]
            with target.open("w") as out:
                for row in rows:
                    out.write(row + "\n")
            lines = len(rows)
        else:
            with target.open("w") as out:
                for result in client.messages.batches.results(batch_id):
                    out.write(json.dumps(result.model_dump()) + "\n")
                    lines += 1
        seconds = time.perf_counter() - start
        size = target.stat().st_size
    return {"seconds": seconds, "bytes": size, "lines": lines, "rss_growth_mb": _maxrss_mb() - before}


def measure(method: str, batch_id: str, base_url: str, api_key: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-results-") as out_dir:
        command = [sys.executable, __file__, "--worker", method, batch_id, base_url, api_key, out_dir]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


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
    parser.add_argument("--sizes-mb", default="10,200", help="comma-separated result sizes in MB")
    parser.add_argument("--methods", default="land_results,sdk_stream,sdk_list")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the fastest is shown")
    args = parser.parse_args()

    from airflow_batches.emulator.testing import run_emulator
    from airflow_batches.hooks import BatchHook

    methods = args.methods.split(",")
    rows = []
    with run_emulator(processing_seconds=0) as emulator:
        os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
            {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
        )
        hook = BatchHook()
        for size_mb in (int(s) for s in args.sizes_mb.split(",")):
            count = max(1, size_mb * 1_000_000 // LINE_TEXT_BYTES)
            requests = (
                {
                    "custom_id": f"r{i}",
                    "params": {
                        "model": "claude-emulated",
                        "max_tokens": LINE_TEXT_BYTES,
                        "messages": [{"role": "user", "content": f"{i} " + "x" * LINE_TEXT_BYTES}],
                    },
                }
                for i in range(count)
            )
            batch = hook.create(requests)
            for method in methods:
                runs = [
                    measure(method, batch.id, emulator.base_url, emulator.api_key) for _ in range(args.repeat)
                ]
                best = min(runs, key=lambda r: r["seconds"])
                rows.append((size_mb, method, best))
            hook.delete(batch.id)

    python = sys.version.split()[0]
    print(f"\nresults landing, emulator on loopback -> file://  (python {python}, {os.cpu_count()} cpus)")
    header = f"{'size':>8} {'method':<14} {'MB':>8} {'lines':>7} {'s':>7} {'MB/s':>7} {'lines/s':>9}"
    print(f"{header} {'peak RSS +MB':>13}")
    for size_mb, method, r in rows:
        mb = r["bytes"] / 1e6
        print(
            f"{size_mb:>6}MB {method:<14} {mb:>8.1f} {r['lines']:>7} {r['seconds']:>7.2f} "
            f"{mb / r['seconds']:>7.1f} {r['lines'] / r['seconds']:>9.0f} {r['rss_growth_mb']:>13.1f}"
        )
    mbps, lps = parse_throughput()
    print(f"\nper-line checks alone (json.loads + custom_id/type/usage): {mbps:.0f} MB/s, {lps:.0f} lines/s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(*sys.argv[2:7])))
    else:
        main()
