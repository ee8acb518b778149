"""The README's snippets, run as written: what a newcomer pastes keeps working.

Each fenced block of README.md is named by a ``<!-- snippet: NAME -->`` comment (see ``tests/readme.py``).
This module runs every Python and shell block as written (against the emulator, and a moto S3 server for the
first DAG), compares every ``signature`` block with the real ``__init__`` defaults, regenerates sample
outputs, and fails on a block it does not know. Blocks run by other modules are listed in ``ELSEWHERE``
(the package install by ``test_packaging.py``; the records, cost and PostgreSQL sections by
``test_readme_records.py``, ``test_readme_cost.py`` and ``test_readme_postgres.py``).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from readme import README, Snippet, snippet, snippets
from s3 import aws_connection, moto_s3, no_aws_environment, s3_client  # noqa: F401 - fixture

from airflow_batches.emulator.testing import RunningEmulator, echo_request, run_emulator

pytestmark = pytest.mark.e2e

REPO = README.parent
VENV_BIN = str(Path(sys.executable).parent)

RUN = {
    "dag-s3",
    "imports",
    "connection",
    "try-emulator",
    "hook",
    "emulator",
    "python-tests",
    "api-client",
}
CHECKED = {"signature", "validation-output", "layout", "dag-fragment"}
ELSEWHERE = {
    "install": "tests/e2e/test_packaging.py::test_readme_install_commands_work_in_a_fresh_venv",
    "two-commands": "scripts/demo.sh is setup.sh + scripts/demo.py (tests/e2e/test_demo_e2e.py); "
    "scripts/test.sh is what CI runs",
    "demo-output": "tests/e2e/test_demo_e2e.py checks the demo's output lines",
    # Run as written in modules of their own; each output block is compared with what the code returns.
    "cost-dry-run": "tests/e2e/test_readme_cost.py (in a DAG, against the emulator)",
    "cost-plan-output": "tests/e2e/test_readme_cost.py (the dry run's XCom, character for character)",
    "cost-budget-output": "tests/e2e/test_readme_cost.py (the same requests with max_cost_usd=1.0)",
    "records-template": "tests/e2e/test_readme_records.py (with the next two: one DAG, records in moto S3)",
    "records-table": "tests/e2e/test_readme_records.py",
    "records-decorator": "tests/e2e/test_readme_records.py",
    "records-error-output": "tests/e2e/test_readme_records.py (the template block on a bad records.csv)",
    "records-table-columns": "tests/e2e/test_readme_records.py (the landed table's columns)",
    "postgres-triggerers": "tests/e2e/test_readme_postgres.py (all but its pip line, on pgserver)",
}


def test_every_block_is_run_or_checked() -> None:
    found = snippets()
    unnamed = [s.line for s in found if s.name is None]
    assert not unnamed, f"README.md blocks at lines {unnamed} need a <!-- snippet: NAME --> comment"
    assert {s.name for s in found} == RUN | CHECKED | set(ELSEWHERE)


# --- running blocks -------------------------------------------------------------------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A newcomer's shell: the venv on PATH, a fresh AIRFLOW_HOME, none of this test session's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ANTHROPIC", "AWS_"))}
    home = tmp_path / "airflow-home"
    home.mkdir(exist_ok=True)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", AIRFLOW_HOME=str(home), TMPDIR=str(tmp_path)
    )
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 240) -> str:
    """Run in a process group of its own, killed afterwards (a snippet may leave a server running)."""
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
    assert process.returncode == 0, f"{argv} exited {process.returncode}:\n{output[-4000:]}"
    return output


def _python(name: str, env: dict[str, str], cwd: Path) -> str:
    code = snippet(name).code
    assert snippet(name).language == "python"
    return _run([sys.executable, "-c", code], env, cwd)


def _connection(emulator: RunningEmulator) -> str:
    return json.dumps({"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key})


@pytest.fixture
def slow_emulator() -> Iterator[RunningEmulator]:
    with run_emulator(processing_seconds=1) as running:
        yield running


def test_dag_s3(
    run_dag: Any,
    emulator: Any,
    dags_folder: Path,
    moto_s3: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first snippet reads its requests from S3 and lands the results in S3, with the credentials only
    in the ``aws_default`` connection (the scheme's usual one: neither the URIs nor the operators name it)."""
    from airflow.sdk.io import store

    day = datetime(2026, 11, 27, tzinfo=UTC)
    s3 = s3_client(moto_s3)
    s3.create_bucket(Bucket="bucket")
    requests = [echo_request(f"q{n}", f"answer {n}") for n in range(3)]
    for request in requests:
        del request["params"]["model"]  # default_model fills it, as in the snippet
    body = "".join(json.dumps(r) + "\n" for r in requests).encode()
    s3.put_object(Bucket="bucket", Key="in/2026-11-27/requests.jsonl", Body=body)

    no_aws_environment(monkeypatch)  # no credentials but the Airflow connection
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(moto_s3))
    store._STORE_CACHE.clear()
    (dags_folder / "claude_daily.py").write_text(snippet("dag-s3").code)
    try:
        result = run_dag("claude_daily", emulator, logical_date=day)
    finally:
        store._STORE_CACHE.clear()

    assert result.state == "success", result.tasks
    (batch_id,) = result.xcom["create"]["batch_ids"]
    manifest = result.xcom["land"]
    assert manifest["destination"] == "s3://bucket/out/2026-11-27"
    assert manifest["counts"]["succeeded"] == 3
    landed = s3.get_object(Bucket="bucket", Key=f"out/2026-11-27/{batch_id}.jsonl")["Body"].read()
    replies = {
        json.loads(line)["custom_id"]: json.loads(line)["result"]["message"]["content"][0]["text"]
        for line in landed.splitlines()
    }
    assert replies == {f"q{n}": f"answer {n}" for n in range(3)}


def test_imports(tmp_path: Path) -> None:
    _python("imports", _env(tmp_path), tmp_path)


def test_connection(tmp_path: Path) -> None:
    """The exported connection is read as the table says (the key itself is a placeholder)."""
    check = (
        "from airflow_batches.hooks import BatchHook; s = BatchHook().get_settings(); "
        "print('READ', s.base_url, s.api_version, s.timeout, s.max_retries)"
    )
    script = snippet("connection").code + f'python -c "{check}"\n'
    output = _run(["bash", "-c", script], _env(tmp_path), tmp_path)
    assert "READ https://api.anthropic.com 2023-06-01 600.0 2" in output


def test_try_emulator(tmp_path: Path) -> None:
    """Run as written (the quick start, then the ETL on the records it writes), but on a free port instead of
    8765 (another test may hold it); ``mktemp -d`` makes AIRFLOW_HOME under this test's directory (TMPDIR)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    code = snippet("try-emulator").code
    assert code.count("8765") == 2
    output = _run(["bash", "-c", code.replace("8765", port)], _env(tmp_path), REPO)
    finished = re.findall(r"DagRun Finished: dag_id=(\w+), .* state=success", output)
    assert finished == ["example_batches_quickstart", "example_batches_etl"], output[-4000:]
    (data,) = tmp_path.glob("tmp.*/airflow-batches-data")
    landed = list(data.glob("quickstart/*/msgbatch_*.jsonl"))
    assert len(landed) == 1, output[-4000:]
    assert len(landed[0].read_bytes().splitlines()) == 3
    import pyarrow.parquet as pq

    rows = pq.read_table(data / "results/2026-12-01/table.parquet").to_pylist()
    assert [(row["record_id"], row["valid"]) for row in rows] == [("1", True), ("2", True)]
    summary = json.loads((data / "results/2026-12-01/summary.json").read_text())
    assert summary["result_types"] == {"succeeded": 2}


def test_hook(tmp_path: Path, slow_emulator: RunningEmulator) -> None:
    env = _env(tmp_path, AIRFLOW_CONN_ANTHROPIC_DEFAULT=_connection(slow_emulator))
    output = _python("hook", env, tmp_path)
    assert "{'succeeded': 1, 'errored': 0, 'canceled': 0, 'expired': 0}" in output
    assert slow_emulator.stats()["batches_created"] == 1


def test_emulator(tmp_path: Path) -> None:
    """The command prints the line shown, with the port it picked, and serves until terminated."""
    code = snippet("emulator").code
    command, shown = code.splitlines()
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        pattern = re.escape(shown.removeprefix("# ")).replace("41234", r"\d+")
        assert re.fullmatch(pattern, line), (line, shown)
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_python_tests(tmp_path: Path) -> None:
    """On a fresh AIRFLOW_HOME, from the clone's root (the snippet names ``example_dags/...``)."""
    output = _python("python-tests", _env(tmp_path), REPO)
    assert "state=success" in output


def test_api_client(tmp_path: Path, slow_emulator: RunningEmulator) -> None:
    env = _env(tmp_path, ANTHROPIC_API_KEY=slow_emulator.api_key, ANTHROPIC_BASE_URL=slow_emulator.base_url)
    output = _python("api-client", env, tmp_path)
    assert "a succeeded" in output
    assert slow_emulator.stats()["batches_created"] == 1


# --- checked blocks -------------------------------------------------------------------------------------


def _classes() -> dict[str, type]:
    from airflow_batches.operators import (
        BatchCancelOperator,
        BatchCreateOperator,
        BatchDeleteOperator,
        BatchResultsOperator,
    )
    from airflow_batches.sensors import BatchSensor
    from airflow_batches.triggers import BatchTrigger

    classes = [
        BatchCancelOperator,
        BatchCreateOperator,
        BatchDeleteOperator,
        BatchResultsOperator,
        BatchSensor,
        BatchTrigger,
    ]
    return {cls.__name__: cls for cls in classes}


def _parameters(cls: type) -> tuple[dict[str, inspect.Parameter], set[str]]:
    """Every keyword ``cls`` accepts through its ``__init__`` chain, and the names this package defines."""
    accepted: dict[str, inspect.Parameter] = {}
    ours: set[str] = set()
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            accepted[name] = parameter
            if klass.__module__.startswith("airflow_batches"):
                ours.add(name)
    return accepted, ours


def _signature_calls() -> Iterator[tuple[Snippet, ast.Call]]:
    for block in snippets():
        if block.name == "signature":
            for node in ast.walk(ast.parse(block.code)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    yield block, node


def test_signature_blocks_show_every_argument_with_its_real_default() -> None:
    classes = _classes()
    shown_classes = set()
    for block, call in _signature_calls():
        cls = classes[call.func.id]  # type: ignore[attr-defined]
        shown_classes.add(cls.__name__)
        accepted, ours = _parameters(cls)
        shown = {keyword.arg: keyword.value for keyword in call.keywords}
        where = f"README.md line {block.line}, {cls.__name__}"
        assert ours <= set(shown), f"{where} misses {sorted(ours - set(shown))}"
        for name, node in shown.items():
            assert name in accepted, f"{where}: {name} is not an argument"
            default = accepted[name].default
            value = _evaluate(node)
            if value is _UNKNOWN:
                continue
            if value is Ellipsis:
                assert default is inspect.Parameter.empty, f"{where}: {name} is optional, shown as required"
            elif default is not inspect.Parameter.empty and value != default:
                # A default resolved in the body (a sensor's timeout=None means [sensors] default_timeout).
                actual = getattr(_instance(cls), name)
                assert value == actual, (
                    f"{where}: {name}={value!r} but the default is {default!r} ({actual!r})"
                )
    assert shown_classes == set(classes)


def _instance(cls: type) -> Any:
    required = {"task_id": "t", "requests": [], "batch_id": "msgbatch_x", "destination": "file:///tmp/x/"}
    accepted, _ = _parameters(cls)
    return cls(**{k: v for k, v in required.items() if k in accepted})


_UNKNOWN = object()


def _evaluate(node: ast.expr) -> Any:
    """The value of a literal or of arithmetic on literals; ``conf.getboolean(...)`` is read from Airflow's
    config like the code's default; anything else (``create.output``) is unknown."""
    text = ast.unparse(node)
    if text.startswith("conf."):
        from airflow.providers.common.compat.sdk import conf

        return eval(text, {"conf": conf})
    try:
        return eval(compile(ast.Expression(node), "<readme>", "eval"), {"__builtins__": {}})
    except NameError:
        return _UNKNOWN


def test_dag_fragments_build_inside_a_dag() -> None:
    """A fragment (operators without their DAG) builds inside one: it passes the parse-time checks."""
    from airflow.sdk import DAG

    for block in snippets():
        if block.name == "dag-fragment":
            namespace: dict[str, Any] = {}
            exec("from airflow_batches.operators import *\n", namespace)
            with DAG(f"readme_line_{block.line}", schedule=None) as dag:
                exec(block.code, namespace)
            assert dag.task_ids, f"README.md line {block.line} builds no task"


def test_validation_output_is_what_the_validation_says() -> None:
    from airflow_batches.api import RequestValidationError, spool_batches

    ok = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    lines = [
        json.dumps({"custom_id": "q0", "params": ok}),
        json.dumps({"custom_id": "q 1", "params": ok}),
        json.dumps({"custom_id": "q2", "params": ok}),
        json.dumps({"custom_id": "q2", "params": ok}),
        json.dumps({"custom_id": "q9", "params": {**ok, "max_tokens": 0}}),
        json.dumps({"custom_id": "q10", "params": {**ok, "messages": [], "stream": True}}),
        "not json",
    ]
    with pytest.raises(RequestValidationError) as info:
        spool_batches([(line + "\n").encode() for line in lines], max_requests=10, max_bytes=10**6)
    assert str(info.value) + "\n" == snippet("validation-output").code


def test_layout_names_files_that_exist() -> None:
    for line in snippet("layout").code.splitlines():
        if not line.strip():
            continue
        names = [line.split()[0], *re.findall(r"; (\S+\.py)", line)]
        base = REPO / "airflow_batches" if line.startswith("  ") else REPO
        for name in names:
            assert (base / name).exists(), f"README layout names {name}, which is not in {base}"
