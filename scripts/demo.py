"""The main job, end to end, with no API key: the daily ETL example DAG in real Airflow against the emulator.

Steps: use ``.airflow/`` (in the repository) as AIRFLOW_HOME, migrate its SQLite metadata DB, start the local
Message Batches emulator, write sample input records for the day, point the ``anthropic_default`` connection
at the emulator (environment variable), run ``example_batches_etl`` with ``dag.test()`` (the deferrable
create task really defers and resumes through Airflow's trigger machinery), then print where the results
are, the usage/cost summary and the first rows of the results table. Output goes to ``demo-output/``.

The terminal shows only short ``[demo]`` progress lines and the summary: everything Airflow, the task code and
the subprocesses write (file descriptors 1 and 2) goes to ``.airflow/demo.log``. On failure the last lines of
that log and one clear error line are printed, and the exit status is 1.

Usage: ``python scripts/demo.py [--date YYYY-MM-DD] [--records N] [--workdir DIR]`` (``--workdir``, default
the repository, holds ``.airflow/`` and ``demo-output/``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "example_batches_etl"
# Lines of Airflow's log shown on failure: enough for the task's error and its context.
LOG_TAIL_LINES = 40
TABLE_ROWS_SHOWN = 5
INVALID_OUTPUT_RATE = 0.1

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


class Console:
    """The terminal, kept apart from Airflow's output, which :meth:`capture` sends to the log file.

    Redirecting the file descriptors (not ``sys.stdout``) also catches what Airflow's structlog handlers, the
    task code and the ``airflow db migrate`` subprocess write.
    """

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._out: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
        self._err: TextIO = os.fdopen(os.dup(2), "w", buffering=1)

    def say(self, text: str) -> None:
        """A progress line on the terminal, mirrored into the log so its tail shows where the demo was."""
        self._out.write(text + "\n")
        print(text, flush=True)

    def fail(self, error: str) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        if lines:
            self._err.write(f"[demo] last {min(len(lines), LOG_TAIL_LINES)} lines of {self.log_path}:\n")
            self._err.write("\n".join(lines[-LOG_TAIL_LINES:]) + "\n\n")
        self._err.write(f"[demo] FAILED: {error}\n")

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Send file descriptors 1 and 2 to the log (a fresh one per run) until the block ends."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with self.log_path.open("wb") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)


def configure_environment(workdir: Path) -> None:
    """Everything Airflow and the example DAG read, set before Airflow is imported."""
    home = workdir / ".airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW_BATCHES_BASE": (workdir / "demo-output").as_uri(),
            "AIRFLOW_BATCHES_POLL_INTERVAL": "1",
        }
    )
    os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)


def migrate_db(console: Console) -> None:
    console.say(f"[demo] migrating the metadata DB in {os.environ['AIRFLOW_HOME']} ...")
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=False)
    if done.returncode != 0:
        raise DemoError(
            f"`airflow db migrate` failed (exit {done.returncode}); its output is in the log above"
        )


def write_records(console: Console, output: Path, day: date, count: int) -> Path:
    # A rerun for the same day starts clean, so the listing shows only this run's results.
    shutil.rmtree(output / "results" / day.isoformat(), ignore_errors=True)
    folder = output / "input" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.jsonl"
    with path.open("w") as out:
        for n in range(count):
            topic = TOPICS[n % len(TOPICS)]
            text = f"Record {n}: a short note on {topic}, written for the {day.isoformat()} batch."
            out.write(json.dumps({"id": n, "text": text}) + "\n")
    console.say(f"[demo] wrote {count} input records to {path}")
    return path


def run_dag(console: Console, day: date) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "example_dags"))
    if bag.import_errors:
        raise DemoError(f"the example DAGs do not import: {bag.import_errors}")
    dag = bag.get_dag(DAG_ID)
    if dag is None:
        raise DemoError(f"DAG {DAG_ID} not found in {REPO / 'example_dags'}")
    console.say(f"[demo] running {DAG_ID} for {day} with dag.test() (Airflow's log: {console.log_path}) ...")
    dag_run = dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=UTC))
    failed = [f"{ti.task_id}={ti.state}" for ti in dag_run.get_task_instances() if str(ti.state) != "success"]
    if str(dag_run.state) != "success" or failed:
        raise DemoError(f"the DAG run ended {dag_run.state}; tasks not successful: {failed or 'none'}")


def report(console: Console, workdir: Path, day: date) -> None:
    results = workdir / "demo-output" / "results" / day.isoformat()
    summary_path = results / "summary.json"
    if not summary_path.exists():
        raise DemoError(f"the run succeeded but {summary_path} is missing")
    summary = json.loads(summary_path.read_text())
    console.say("\n[demo] done. Results:")
    for path in sorted(results.iterdir()):
        shown = path.relative_to(workdir) if path.is_relative_to(workdir) else path
        console.say(f"  {shown}  ({path.stat().st_size} bytes)")
    console.say(f"[demo] batches: {', '.join(summary['batch_ids'])}")
    console.say(f"[demo] result types: {summary['result_types']}")
    for model, tokens in summary["tokens_by_model"].items():
        console.say(
            f"[demo] {model}: {tokens['input_tokens']} input / {tokens['output_tokens']} output tokens"
        )
    cost = summary["cost_usd"]
    shown = f"${cost:.6f}" if cost is not None else f"unknown (no price for {summary['unpriced_models']})"
    console.say(f"[demo] cost at batch prices: {shown}")
    show_table(console, Path(summary["table"].removeprefix("file://")), summary)


def show_table(console: Console, path: Path, summary: dict[str, object]) -> None:
    """The first rows of the table the landing wrote, a few columns of each."""
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(path).iter_batches(batch_size=TABLE_ROWS_SHOWN)
    first = next(rows).to_pylist() if path.stat().st_size else []
    console.say(
        f"[demo] table {path.name}: {summary['valid_answers']} valid / {summary['invalid_answers']} "
        f"invalid answers; first {len(first)} rows (record_id, result_type, valid, topic, summary):"
    )
    for row in first:
        topic, text = (" ".join(str(row[name]).split()) for name in ("topic", "summary"))
        console.say(
            f"[demo]   {row['record_id']:>4}  {row['result_type']}  {row['valid']!s:<5}  "
            f"{topic[:22]:<22}  {text[:60]}"
        )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=date.fromisoformat, default=datetime.now(UTC).date())
    parser.add_argument("--records", type=positive_int, default=24)
    parser.add_argument("--workdir", type=Path, default=REPO, help="holds .airflow/ and demo-output/")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    configure_environment(workdir)
    console = Console(workdir / ".airflow" / "demo.log")
    try:
        with console.capture():
            migrate_db(console)
            from airflow_batches.emulator.testing import run_emulator

            # A tenth of the structured answers break the schema on purpose, to show how the table marks them.
            with run_emulator(processing_seconds=3, invalid_output_rate=INVALID_OUTPUT_RATE) as emulator:
                console.say(
                    f"[demo] emulator listening at {emulator.base_url} (breaking "
                    f"{INVALID_OUTPUT_RATE:.0%} of structured answers on purpose)"
                )
                os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
                    {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
                )
                write_records(console, workdir / "demo-output", args.date, args.records)
                run_dag(console, args.date)
            report(console, workdir, args.date)
    except DemoError as exc:
        console.fail(str(exc))
        return 1
    except Exception as exc:  # the demo's contract is one clear line, not a traceback, on any failure
        console.fail(f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
