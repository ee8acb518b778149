#!/usr/bin/env bash
# The whole test suite from a fresh clone: set up .venv, then lint, type-check and run every test
# (unit, integration against the emulator over loopback, S3 through a moto server, end-to-end in real Airflow,
# the README's snippets as written, and the wheel built and installed in a fresh venv: tests/e2e/test_packaging.py).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not e2e"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export AIRFLOW_HOME="${AIRFLOW_HOME_FOR_TESTS:-$(mktemp -d -t airflow-batches-home-XXXXXX)}"
echo "== ruff"
.venv/bin/ruff check airflow_batches tests example_dags bench scripts
.venv/bin/ruff format --check airflow_batches tests example_dags bench scripts
echo "== mypy (strict, public package)"
.venv/bin/mypy airflow_batches
echo "== pytest"
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
