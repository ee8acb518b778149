"""What the one-method-per-process benchmarks share: measuring a method in a fresh process, and the table.

Each benchmark script is both the parent (``main``: runs every method, prints the table) and the worker
(``script --worker method arg...``: runs one method and prints its figures as one JSON line), so that a
method's peak RSS (``ru_maxrss``) belongs to it alone.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

Figures = dict[str, Any]
Column = tuple[str, int, Callable[[Figures], str]]
"""A column: its title, its width, and the text of a row's cell (right-aligned to the width)."""


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(method: str, *args: str | Path, script: str) -> Figures:
    """Run ``script --worker method args...`` in a subprocess and return the figures it printed."""
    command = [sys.executable, script, "--worker", method, *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    result: Figures = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def print_table(title: str, columns: Sequence[Column], rows: Sequence[tuple[str, Figures]]) -> None:
    """``title`` with the interpreter and cores, then one line per method: its name and each column."""
    print(f"\n{title} (python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    name_width = max(len("method"), *(len(method) for method, _ in rows))
    print(" ".join([f"{'method':<{name_width}}", *(f"{name:>{width}}" for name, width, _ in columns)]))
    for method, figures in rows:
        print(
            " ".join(
                [f"{method:<{name_width}}", *(f"{cell(figures):>{width}}" for _, width, cell in columns)]
            )
        )


def run(main: Callable[[], None], worker: Callable[..., Figures]) -> None:
    """The script's entry point: the worker when called with ``--worker``, else ``main``."""
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(*sys.argv[2:])))
    else:
        main()
