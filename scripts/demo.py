"""The main job, end to end, with no API key: the daily ETL example DAG in real Airflow against the emulator.

Steps: use ``.airflow/`` in the repository as AIRFLOW_HOME, migrate its SQLite metadata DB, start the local
Message Batches emulator, write sample input records for the day, point the ``anthropic_default`` connection
at the emulator (environment variable), run ``example_batches_etl`` with ``dag.test()`` (the deferrable
sensor really defers and resumes through Airflow's trigger machinery), then print where the results are and
the usage/cost summary. Output goes to ``demo-output/``. Exits non-zero with a clear message on any failure.

Usage: ``python scripts/demo.py [--date YYYY-MM-DD] [--records N]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = REPO / ".airflow"
OUTPUT = REPO / "demo-output"
DAG_ID = "example_batches_etl"

TOPICS = [
    "how tides follow the moon",
    "why bread dough rises",
    "how a bicycle stays upright",
    "what makes the sky blue",
    "how bees find flowers",
    "why ice floats on water",
    "how vaccines train the immune system",
    "what a compiler does",
]


class DemoError(Exception):
    """A step failed; the message says which and what to check."""


def configure_environment(records_day: date) -> None:
    """Everything Airflow and the example DAG read, set before Airflow is imported."""
    AIRFLOW_HOME.mkdir(exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW_BATCHES_BASE": OUTPUT.as_uri(),
            "AIRFLOW_BATCHES_POLL_INTERVAL": "1",
        }
    )
    os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)


def migrate_db() -> None:
    print(f"[demo] migrating the metadata DB in {AIRFLOW_HOME} ...", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DemoError(f"`airflow db migrate` failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def write_records(day: date, count: int) -> Path:
    # A rerun for the same day starts clean, so the listing shows only this run's results.
    shutil.rmtree(OUTPUT / "results" / day.isoformat(), ignore_errors=True)
    folder = OUTPUT / "input" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.jsonl"
    with path.open("w") as out:
        for n in range(count):
            topic = TOPICS[n % len(TOPICS)]
            text = f"Record {n}: a short note on {topic}, written for the {day.isoformat()} batch."
            out.write(json.dumps({"id": n, "text": text}) + "\n")
    print(f"[demo] wrote {count} input records to {path}", flush=True)
    return path


def run_dag(day: date) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "example_dags"))
    if bag.import_errors:
        raise DemoError(f"the example DAGs do not import: {bag.import_errors}")
    dag = bag.get_dag(DAG_ID)
    if dag is None:
        raise DemoError(f"DAG {DAG_ID} not found in {REPO / 'example_dags'}")
    print(f"[demo] running {DAG_ID} for {day} with dag.test() ...", flush=True)
    dag_run = dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=UTC))
    failed = [f"{ti.task_id}={ti.state}" for ti in dag_run.get_task_instances() if str(ti.state) != "success"]
    if str(dag_run.state) != "success" or failed:
        raise DemoError(f"the DAG run ended {dag_run.state}; tasks not successful: {failed or 'none'}")


def report(day: date) -> None:
    results = OUTPUT / "results" / day.isoformat()
    summary_path = results / "summary.json"
    if not summary_path.exists():
        raise DemoError(f"the run succeeded but {summary_path} is missing")
    summary = json.loads(summary_path.read_text())
    print("\n[demo] done. Results:")
    for path in sorted(results.iterdir()):
        print(f"  {path.relative_to(REPO)}  ({path.stat().st_size} bytes)")
    print(f"[demo] batches: {', '.join(summary['batch_ids'])}")
    print(f"[demo] result types: {summary['result_types']}")
    for model, tokens in summary["tokens_by_model"].items():
        print(f"[demo] {model}: {tokens['input_tokens']} input / {tokens['output_tokens']} output tokens")
    print(f"[demo] estimated cost at the batch discount: ${summary['estimated_usd']:.6f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=date.fromisoformat, default=datetime.now(UTC).date())
    parser.add_argument("--records", type=int, default=24)
    args = parser.parse_args()
    configure_environment(args.date)
    try:
        migrate_db()
        from airflow_batches.emulator.testing import run_emulator

        with run_emulator(processing_seconds=3) as emulator:
            print(f"[demo] emulator listening at {emulator.base_url}", flush=True)
            os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
                {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
            )
            write_records(args.date, args.records)
            run_dag(args.date)
        report(args.date)
    except DemoError as exc:
        print(f"\n[demo] FAILED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the demo's contract is one clear line, not a traceback, on any failure
        print(f"\n[demo] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
