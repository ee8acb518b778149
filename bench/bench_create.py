"""Benchmark: the create path's validation and spooling, against a naive baseline measured in the same run.

Prints throughput (requests/s, MB/s of JSONL input) and peak memory growth; no assertions. The input is a
generated JSONL file (default 100,000 requests of about 2 KB, ~200 MB). Each measurement runs in its own
subprocess, so its peak RSS (``ru_maxrss``, which also counts memory allocated outside Python) belongs to that
method alone; the figure shown is the growth of peak RSS over the process after its imports.

Methods:
  spool             this package: ``spool_batches`` over the file's lines (validate, encode compactly,
                    write ready-to-send bodies to temp files, in one pass)
  naive             all lines into a list with ``json.loads``, the same rules checked in a plain loop, one
                    ``{"requests": [...]}`` body built with ``json.dumps``
  spool+create      ``spool`` then ``BatchServiceAsync.create`` of the spooled body into the emulator
                    (streamed from the temp file)
  naive+create      ``naive`` then one ``httpx`` POST of the body held in memory into the emulator

Usage: .venv/bin/python bench/bench_create.py [--requests 100000] [--request-bytes 2000] [--no-create]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_runs import maxrss_mb, measure, print_table, run


def write_input(path: Path, count: int, request_bytes: int) -> int:
    """A JSONL file of ``count`` valid requests of about ``request_bytes`` each; returns its size."""
    filler = "lorem ipsum dolor sit amet " * (request_bytes // 27 + 1)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            request: dict[str, Any] = {
                "custom_id": f"req-{i:06d}",
                "params": {
                    "model": "claude-emulated",
                    "max_tokens": 1024,
                    "system": "Summarize the text in one sentence.",
                    "messages": [{"role": "user", "content": ""}],
                },
            }
            skeleton = len(json.dumps(request)) + 1
            request["params"]["messages"][0]["content"] = filler[: max(0, request_bytes - skeleton)]
            out.write(json.dumps(request) + "\n")
    return path.stat().st_size


_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def naive_body(path: Path) -> tuple[bytes, int]:
    """The baseline: every request in memory, checked in a plain loop, then one ``json.dumps`` body."""
    with path.open("rb") as source:
        requests = [json.loads(line) for line in source.readlines() if line.strip()]
    seen: set[str] = set()
    for number, request in enumerate(requests, start=1):
        custom_id = request.get("custom_id")
        params = request.get("params")
        problem = None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id) or custom_id in seen:
            problem = "custom_id"
        elif not isinstance(params, dict) or not all(
            k in params for k in ("model", "max_tokens", "messages")
        ):
            problem = "params"
        elif not isinstance(params["max_tokens"], int) or params["max_tokens"] < 1 or params.get("stream"):
            problem = "max_tokens/stream"
        if problem:
            raise ValueError(f"line {number}: {problem}")
        seen.add(custom_id)
    return json.dumps({"requests": requests}, separators=(",", ":")).encode(), len(requests)


def worker(method: str, input_path: str, base_url: str, api_key: str) -> dict[str, Any]:
    """Run one method in this process and measure it."""
    import asyncio

    import httpx

    from airflow_batches.api import BatchServiceAsync, spool_batches

    path = Path(input_path)
    with tempfile.TemporaryDirectory(prefix="bench-create-") as spool_dir:
        before = maxrss_mb()
        start = time.perf_counter()
        body_bytes = 0
        batch_id = ""
        if method.startswith("spool"):
            with path.open("rb") as source:
                batches = spool_batches(source, spool_dir=spool_dir)
            count = sum(b.request_count for b in batches)
            body_bytes = sum(b.nbytes for b in batches)
            if method == "spool+create":

                async def create_all() -> list[str]:
                    async with BatchServiceAsync(
                        api_key=api_key, base_url=base_url, max_retries=0
                    ) as service:
                        return [(await service.create(batch)).id for batch in batches]

                batch_id = ",".join(asyncio.run(create_all()))
            for batch in batches:
                batch.cleanup()
        else:
            body, count = naive_body(path)
            body_bytes = len(body)
            if method == "naive+create":
                headers = {"x-api-key": api_key, "anthropic-version": "2023-06-01"}
                response = httpx.post(
                    f"{base_url}/v1/messages/batches",
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                    timeout=600,
                )
                response.raise_for_status()
                batch_id = response.json()["id"]
            del body
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "requests": count,
        "body_bytes": body_bytes,
        "batches": batch_id,
        "rss_growth_mb": maxrss_mb() - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--request-bytes", type=int, default=2_000, help="size of each JSONL line")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the fastest is shown")
    parser.add_argument(
        "--no-create", action="store_true", help="skip the end-to-end create into the emulator"
    )
    args = parser.parse_args()

    from airflow_batches.emulator.testing import run_emulator

    methods = ["spool", "naive"] + ([] if args.no_create else ["spool+create", "naive+create"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-create-input-") as tmp:
        input_path = Path(tmp) / "requests.jsonl"
        input_bytes = write_input(input_path, args.requests, args.request_bytes)
        with run_emulator(processing_seconds=3600) as emulator:
            for method in methods:
                runs = []
                for _ in range(args.repeat):
                    runs.append(
                        measure(method, input_path, emulator.base_url, emulator.api_key, script=__file__)
                    )
                    emulator.reset()  # each create's batch state is dropped before the next run
                rows.append((method, min(runs, key=lambda r: r["seconds"])))

    mb = input_bytes / 1e6
    print_table(
        f"create path: {args.requests:,} requests, {mb:.1f} MB of JSONL",
        [
            ("s", 7, lambda r: f"{r['seconds']:.2f}"),
            ("requests/s", 11, lambda r: f"{r['requests'] / r['seconds']:,.0f}"),
            ("MB/s", 7, lambda r: f"{mb / r['seconds']:.1f}"),
            ("body MB", 8, lambda r: f"{r['body_bytes'] / 1e6:.1f}"),
            ("peak RSS +MB", 13, lambda r: f"{r['rss_growth_mb']:.1f}"),
        ],
        rows,
    )


if __name__ == "__main__":
    run(main, worker)
