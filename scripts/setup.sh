#!/usr/bin/env bash
# Creates .venv (Python 3.11+) and installs the package with its test extras, pinned by the constraints file
# so pip's resolver does not backtrack (aiobotocore/botocore) for minutes.
# `bash scripts/setup.sh 3.1` (or 3.2) makes .venv-airflow-3.1 instead: the same install on that Airflow
# line, pinned by constraints/constraints-airflow-3.1-py3.11.txt (the test script tests every line).
set -euo pipefail
cd "$(dirname "$0")/.."
line=${1:-}
if [ -n "$line" ]; then
  venv=.venv-airflow-$line
  constraints=constraints/constraints-airflow-$line-py3.11.txt
  [ -f "$constraints" ] || { echo "setup: no constraints for Airflow $line ($constraints)" >&2; exit 1; }
else
  venv=.venv
  constraints=constraints/constraints-py3.11.txt
fi
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python 3.11 or newer is required" >&2; exit 1; }
stamp=$venv/.installed
want=$(cat pyproject.toml "$constraints" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -c "$constraints" -e ".[test]"
echo "$want" > "$stamp"
