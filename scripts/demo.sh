#!/usr/bin/env bash
# The main job from a fresh clone: set up .venv, start the emulator, run the scheduled ETL example DAG end to
# end in real Airflow (SQLite metadata DB in .airflow/), land the results under demo-output/ and print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
