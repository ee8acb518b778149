"""``scripts/demo.py``, the README's main command, run as users run it: a subprocess with its own home.

The terminal contract: only ``[demo]`` lines (and the result listing) on stdout, Airflow's own log in
``.airflow/demo.log``; on failure the log's tail and one ``[demo] FAILED:`` line on stderr, exit status 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def run_demo(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # The test session's Airflow settings (home, connections, variables) must not leak into the demo.
    clean = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    return subprocess.run(
        [sys.executable, str(DEMO), "--workdir", str(workdir), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_prints_progress_and_summary_and_logs_airflow_to_a_file(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--date", "2026-02-03", "--records", "3")

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = [line for line in done.stdout.splitlines() if line]
    assert all(line.startswith(("[demo] ", "  demo-output/")) for line in lines), done.stdout
    results = tmp_path / "demo-output" / "results" / "2026-02-03"
    first_batch = next(line for line in lines if line.startswith("[demo] batches: ")).split()[2].rstrip(",")
    # The example DAG resubmits failed requests, so its results land merged, under the first batch's id.
    landed = {"summary.json", "table.parquet", f"merged_{first_batch}.jsonl"}
    assert {p.name for p in results.iterdir()} >= landed
    assert {f"  demo-output/results/2026-02-03/{name}" for name in landed} <= {
        line.rsplit("  (", 1)[0] for line in lines
    }, "the listing names the files landed"
    assert "[demo] result types: {'succeeded': 3}" in lines
    assert any(line.startswith("[demo] cost at batch prices: $") for line in lines)
    # The demo's emulator breaks 10% of the answers: rec-0 is in that share (by its custom_id's hash).
    assert "[demo] table table.parquet: 2 valid / 1 invalid answers; first 3 rows" in "\n".join(lines)
    rows = [line.split() for line in lines if line.startswith("[demo]   ")]
    assert [row[1:4] for row in rows] == [
        ["0", "succeeded", "False"],
        ["1", "succeeded", "True"],
        ["2", "succeeded", "True"],
    ], "in record order, the invalid answer kept and marked"
    log = (tmp_path / ".airflow" / "demo.log").read_text()
    assert "[DAG TEST] end task task_id=summarize" in log


def test_demo_failure_shows_the_log_tail_and_one_clear_line(tmp_path: Path) -> None:
    # An empty model makes every request invalid: the create task fails before anything is sent.
    done = run_demo(tmp_path, "--date", "2026-02-04", "--records", "2", AIRFLOW_BATCHES_MODEL="")

    assert done.returncode == 1
    assert "Task failed" not in done.stdout  # Airflow's log never reaches stdout
    err = done.stderr.splitlines()
    assert err[0] == f"[demo] last 40 lines of {tmp_path / '.airflow' / 'demo.log'}:"
    assert any("params.model must be a non-empty string" in line for line in err)
    assert err[-1].startswith("[demo] FAILED: the DAG run ended failed; tasks not successful:")
    assert "create_batches=failed" in err[-1]


def test_demo_rejects_a_record_count_below_one(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--records", "0")

    assert done.returncode == 2
    assert "--records: must be at least 1, got 0" in done.stderr
    assert not (tmp_path / ".airflow").exists()
