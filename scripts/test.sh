#!/usr/bin/env bash
# The whole test suite from a fresh clone, on every supported Airflow line:
# - Airflow 3.3 (.venv): ruff, mypy and every test (unit, integration against the emulator over loopback,
#   S3 through a moto server, end-to-end in real Airflow, the README's snippets as written, and the wheel
#   built and installed in a fresh venv: tests/e2e/test_packaging.py).
# - Airflow 3.1 and 3.2 (.venv-airflow-3.x, each pinned by its own constraints file): the tests listed in
#   tests/lines.txt (unit, emulator, integration and the reattach end-to-end tests). Their venvs and their
#   tests outside tests/e2e run in the background while 3.3 runs; their end-to-end tests, which measure time
#   (execution timeouts, killed workers), run after it, one line at a time, so they never share the 2 cores.
# Extra arguments go to pytest on 3.3, e.g. `bash scripts/test.sh -m "not e2e"`. AIRFLOW_LINES chooses the
# other lines: AIRFLOW_LINES="" runs 3.3 only, AIRFLOW_LINES="3.1" adds only 3.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
read -r -a lines <<< "${AIRFLOW_LINES-3.1 3.2}"
logs=$(mktemp -d -t airflow-batches-lines-XXXXXX)
mapfile -t line_tests < <(grep -v '^\s*\(#\|$\)' tests/lines.txt | grep -v '^tests/e2e')
mapfile -t line_e2e_tests < <(grep '^tests/e2e' tests/lines.txt)

line_pytest() {  # pytest on one line ($1) with its own AIRFLOW_HOME; the rest are pytest's arguments
  local line=$1
  shift
  AIRFLOW_HOME=$(mktemp -d -t "airflow-batches-home-$line-XXXXXX") \
    ".venv-airflow-$line/bin/python" -m pytest -p no:cacheprovider "$@"
}

background_lines() {  # set every line up (in parallel: mostly downloads), then test each one in turn
  local line failed=0
  for line in "${lines[@]}"; do
    bash scripts/setup.sh "$line" > "$logs/setup-$line.log" 2>&1 &
  done
  wait
  for line in "${lines[@]}"; do
    if [ ! -f ".venv-airflow-$line/.installed" ]; then
      grep -v "is ignored: it is neither a file nor a directory" "$logs/setup-$line.log" > "$logs/$line.log" || true
      failed=1
      continue
    fi
    line_pytest "$line" "${line_tests[@]}" > "$logs/$line.log" 2>&1 || failed=1
  done
  return $failed
}

pytest_to() {  # run a command to the terminal and into the log file $1; the command's exit status
  local log=$1
  shift
  set +e
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

verdict() {  # pytest's closing line in a log, or why there is none
  local closing
  closing=$(grep -E '(passed|failed|errors?|no tests ran).* in [0-9.]+s' "$1" | tail -n 1 | tr -d '=' || true)
  echo "${closing:-no pytest summary (see its output above)}" | sed 's/^ *//; s/ *$//'
}

background=
if [ ${#lines[@]} -gt 0 ]; then
  background_lines &
  background=$!
fi

export AIRFLOW_HOME="${AIRFLOW_HOME_FOR_TESTS:-$(mktemp -d -t airflow-batches-home-XXXXXX)}"
status=0
check() { "$@" || status=$?; }
echo "== ruff"
check .venv/bin/ruff check airflow_batches tests example_dags bench scripts
check .venv/bin/ruff format --check airflow_batches tests example_dags bench scripts
echo "== mypy (strict, public package; and the benchmarks)"
check .venv/bin/mypy airflow_batches
check .venv/bin/mypy bench
echo "== pytest on Airflow $(.venv/bin/python -c 'import airflow; print(airflow.__version__)')"
check pytest_to "$logs/3.3.log" .venv/bin/python -m pytest -p no:cacheprovider "$@"
summary=("Airflow 3.3: $(verdict "$logs/3.3.log")")

if [ -n "$background" ]; then
  wait "$background" || status=1
fi
for line in "${lines[@]}"; do
  echo "== pytest on Airflow $line: tests/lines.txt outside tests/e2e"
  cat "$logs/$line.log"
  summary+=("Airflow $line: $(verdict "$logs/$line.log")")
  [ -f ".venv-airflow-$line/.installed" ] || continue
  echo "== pytest on Airflow $line: tests/lines.txt in tests/e2e"
  check pytest_to "$logs/$line-e2e.log" line_pytest "$line" "${line_e2e_tests[@]}"
  summary+=("Airflow $line, end-to-end: $(verdict "$logs/$line-e2e.log")")
done
echo "== every line"
printf '%s\n' "${summary[@]}"
# One closing line for the whole run: the tests of every line added up.
printf '%s\n' "${summary[@]}" | awk '{ for (i = 1; i < NF; i++) { n = $i + 0; w = $(i + 1); gsub(/,/, "", w);
    if (w == "passed") p += n; if (w == "failed" || w == "errors" || w == "error") f += n;
    if (w == "skipped") s += n } }
  END { printf "total: %d passed, %d failed", p, f; if (s) printf ", %d skipped", s; print "" }'
rm -rf "$logs"
exit $status
