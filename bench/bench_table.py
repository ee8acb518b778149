"""Benchmark: the results table of 100,000 results joined to 100,000 records, against a naive baseline.

Prints seconds, rows/s and peak memory growth per method; no assertions. Each method runs in its own
subprocess (``bench_create.measure``), so its peak RSS growth belongs to it alone.

Methods (the input: a records CSV and a results JSONL of structured answers, as a landing leaves it):
  table-parquet   this package: ``land_table`` (rows indexed in SQLite on disk, Parquet row groups)
  table-csv       the same, written as CSV
  naive-parquet   every result parsed into a dict by custom_id, every record joined in memory, one
                  ``pyarrow.Table.from_pylist`` written at once

Usage: .venv/bin/python bench/bench_table.py [--rows 100000]
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

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["label", "score"],
}


def write_inputs(folder: Path, count: int) -> None:
    with (folder / "records.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "text"])
        writer.writerows([f"t{i:06d}", f"ticket {i} " + "x" * 400] for i in range(count))
    usage = {
        "input_tokens": 120,
        "output_tokens": 30,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    with (folder / "results.jsonl").open("w") as out:
        for i in reversed(range(count)):
            answer = {"label": "bug", "score": i % 5} if i % 10 else {"label": 7, "score": "high"}
            message = {
                "id": f"msg_{i}",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5",
                "content": [{"type": "text", "text": json.dumps(answer)}],
                "stop_reason": "end_turn",
                "usage": usage,
            }
            line = {"custom_id": f"t{i:06d}", "result": {"type": "succeeded", "message": message}}
            out.write(json.dumps(line, separators=(",", ":")) + "\n")


def worker(method: str, folder_text: str) -> dict[str, Any]:
    """One method in this process (``measure`` passes an emulator URL and key, unused here)."""
    from airflow.sdk import ObjectStoragePath

    from airflow_batches.records import RequestTemplate
    from airflow_batches.records.structured import StructuredOutput
    from airflow_batches.results.table import TableSpec, land_table

    folder = Path(folder_text)
    template = RequestTemplate(
        records=str(folder / "records.csv"), custom_id="{{ record.id }}", params={}, output_schema=SCHEMA
    )
    results_uri = (folder / "results.jsonl").as_uri()
    manifest: Any = {"files": [{"uri": results_uri, "batch_id": "b"}]}
    with tempfile.TemporaryDirectory(prefix="bench-table-") as out:
        before = maxrss_mb()
        start = time.perf_counter()
        if method.startswith("table"):
            spec = TableSpec(method.removeprefix("table-"), template.structured, template)  # type: ignore[arg-type]
            entry = land_table(
                manifest, ObjectStoragePath(Path(out).as_uri()), spec, overwrite="replace", block_size=8 << 20
            )
            rows = entry["rows"]
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            from airflow_batches.results.table_rows import result_row

            structured = StructuredOutput(SCHEMA)
            with open(folder / "results.jsonl", "rb") as source:
                by_id = {
                    row["custom_id"]: row for row in (result_row(json.loads(x), structured) for x in source)
                }
            with open(folder / "records.csv", newline="") as source:
                joined = [
                    {**by_id[r["id"]], **{f"record_{k}": v for k, v in r.items()}}
                    for r in csv.DictReader(source)
                ]
            for row in joined:
                row["answer_json"] = json.dumps(row.get("answer_json"))
                for name in ("label", "score"):
                    row[name] = str(row.get(name))
            pq.write_table(pa.Table.from_pylist(joined), Path(out) / "table.parquet")
            rows = len(joined)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "rss_growth_mb": maxrss_mb() - before}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-table-input-") as tmp:
        write_inputs(Path(tmp), args.rows)
        methods = ["table-parquet", "table-csv", "naive-parquet"]
        rows = [(m, measure(m, Path(tmp), script=__file__)) for m in methods]
    print_table(
        f"results table: {args.rows:,} results joined to records",
        [
            ("s", 7, lambda r: f"{r['seconds']:.2f}"),
            ("rows/s", 9, lambda r: f"{r['rows'] / r['seconds']:,.0f}"),
            ("peak RSS +MB", 13, lambda r: f"{r['rss_growth_mb']:.1f}"),
        ],
        rows,
    )


if __name__ == "__main__":
    run(main, worker)
