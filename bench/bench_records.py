"""Benchmark: 100,000 records -> requests through ``RequestTemplate``, against a naive baseline (same run).

Prints throughput (records/s) and peak memory growth per method; no assertions. Each method runs in its own
subprocess, so its peak RSS growth (over the process after its imports) belongs to it alone.

Methods (the input is a generated file of records, default 100,000 rows of about 1 KB of text):
  template-csv      this package: ``spool_batches(RequestTemplate(records=<csv>).requests())``, streamed
  template-parquet  the same from a Parquet file (row groups of 10,000 rows, read 1,024 rows at a time)
  naive-csv         every record into a list, each rendered with a plain Jinja template into a list of
                    request dicts, one ``json.dumps`` body (what a hand-written ``@task`` usually does)

Usage: .venv/bin/python bench/bench_records.py [--records 100000] [--text-bytes 1000]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runs import maxrss_mb, measure, print_table, run

SYSTEM = [{"type": "text", "text": "Label the ticket. " * 50, "cache_control": {"type": "ephemeral"}}]
PARAMS = {
    "model": "claude-haiku-4-5",
    "max_tokens": 256,
    "system": SYSTEM,
    "messages": [
        {"role": "user", "content": "Ticket {{ record.id }} ({{ record.product }}):\n{{ record.text }}"}
    ],
}
SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "urgent": {"type": "boolean"}},
    "required": ["label", "urgent"],
    "additionalProperties": False,
}


def write_inputs(folder: Path, count: int, text_bytes: int) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    filler = ("lorem ipsum dolor sit amet " * (text_bytes // 27 + 1))[:text_bytes]
    rows = ({"id": f"t{i:06d}", "product": f"p{i % 7}", "text": filler} for i in range(count))
    csv_path, parquet_path = folder / "records.csv", folder / "records.parquet"
    with csv_path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["id", "product", "text"])
        writer.writeheader()
        writer.writerows(rows)
    with pq.ParquetWriter(
        parquet_path, pa.schema([(n, pa.string()) for n in ("id", "product", "text")])
    ) as pw:
        for start in range(0, count, 10_000):
            chunk = [
                {"id": f"t{i:06d}", "product": f"p{i % 7}", "text": filler}
                for i in range(start, min(count, start + 10_000))
            ]
            pw.write_table(pa.Table.from_pylist(chunk))
    return csv_path, parquet_path


def worker(method: str, path: str) -> dict[str, Any]:
    """One method in this process (``bench_create.measure`` passes an emulator URL and key, unused here)."""
    from airflow_batches.api import spool_batches
    from airflow_batches.records import RequestTemplate

    with tempfile.TemporaryDirectory(prefix="bench-records-") as spool_dir:
        before = maxrss_mb()
        start = time.perf_counter()
        if method.startswith("template"):
            template = RequestTemplate(
                records=path, custom_id="{{ record.id }}", params=PARAMS, output_schema=SCHEMA
            )
            batches = spool_batches(template.requests(), spool_dir=spool_dir)
            count, body_bytes = sum(b.request_count for b in batches), sum(b.nbytes for b in batches)
            for batch in batches:
                batch.cleanup()
        else:
            import jinja2

            content = jinja2.Environment().from_string(PARAMS["messages"][0]["content"])  # type: ignore[index]
            with open(path, newline="") as source:
                records = list(csv.DictReader(source))
            requests = [
                {
                    "custom_id": r["id"],
                    "params": {
                        **PARAMS,
                        "messages": [{"role": "user", "content": content.render(record=r)}],
                        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
                    },
                }
                for r in records
            ]
            body = json.dumps({"requests": requests}, separators=(",", ":")).encode()
            count, body_bytes = len(requests), len(body)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "requests": count,
        "body_bytes": body_bytes,
        "rss_growth_mb": maxrss_mb() - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--text-bytes", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-records-input-") as tmp:
        csv_path, parquet_path = write_inputs(Path(tmp), args.records, args.text_bytes)
        inputs = {"template-csv": csv_path, "template-parquet": parquet_path, "naive-csv": csv_path}
        rows = [(m, measure(m, path, script=__file__)) for m, path in inputs.items()]
    print_table(
        f"records -> requests: {args.records:,} records",
        [
            ("s", 7, lambda r: f"{r['seconds']:.2f}"),
            ("records/s", 10, lambda r: f"{r['requests'] / r['seconds']:,.0f}"),
            ("body MB", 8, lambda r: f"{r['body_bytes'] / 1e6:.1f}"),
            ("peak RSS +MB", 13, lambda r: f"{r['rss_growth_mb']:.1f}"),
        ],
        rows,
    )


if __name__ == "__main__":
    run(main, worker)
