"""``python -m airflow_batches.emulator``: listening line, clean shutdown, flag errors, run_emulator."""

from __future__ import annotations

import gc
import re
import signal
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator

import httpx
import pytest

from airflow_batches.emulator.testing import EmulatorStartupError, run_emulator

LINE = re.compile(r"^airflow-batches emulator listening on (http://127\.0\.0\.1:(\d+))\n$")


@pytest.fixture
def process() -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-m", "airflow_batches.emulator", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as started:  # leaving the block closes the pipes and waits for the process
        yield started
        if started.poll() is None:
            started.kill()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_prints_one_line_once_listening_and_exits_cleanly(
    process: subprocess.Popen[str], stop_signal: signal.Signals
) -> None:
    assert process.stdout is not None
    match = LINE.match(process.stdout.readline())
    assert match, "the first line announces the base URL"
    assert int(match.group(2)) > 0, "port 0 was replaced by the real port"
    # No retry loop: the line promises that the socket already accepts connections.
    response = httpx.get(f"{match.group(1)}/v1/messages/batches")
    assert response.status_code == 401
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert out == "", "exactly one line is printed"
    assert "Traceback" not in err


def test_explicit_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with run_emulator(port=port) as running:
        assert running.base_url == f"http://127.0.0.1:{port}"
        assert (
            httpx.get(f"{running.base_url}/v1/messages/batches", headers=running.headers).status_code == 200
        )


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "airflow_batches.emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert result.stdout == ""


def test_invalid_flag_value_names_the_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_batches.emulator", "--fail-rate", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "fail_rate" in result.stderr and "less than or equal to 1" in result.stderr


def test_run_emulator_reports_a_failed_start_with_the_output() -> None:
    expected = r"(?s)exited before listening, exit code 2.*unknown operation\(s\) bogus"
    with pytest.raises(EmulatorStartupError, match=expected), run_emulator(fail_ops=["create", "bogus"]):
        pass


def test_run_emulator_passes_flags_and_stops_the_process() -> None:
    with run_emulator(
        processing_seconds=7, require_version=False, fail_ops=["create", "list"], seed=3
    ) as running:
        config = running.admin("GET", "config")
        faults = running.admin("GET", "faults")
        process = running.process
    assert config["processing_seconds"] == 7 and config["require_version"] is False
    assert faults["fail_ops"] == ["create", "list"] and faults["seed"] == 3
    assert process.poll() == 0, "terminated cleanly on exit"


def test_help_lists_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_batches.emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for flag in (
        "--api-key",
        "--processing-seconds",
        "--latency-ms",
        "--fail-rate",
        "--fail-status",
        "--fail-first",
        "--seed",
        "--cut-results-after",
        "--slow-results-ms",
        "--max-body-bytes",
        "--html-413",
        "--require-version",
    ):
        assert flag in result.stdout


def resource_warnings_of(action: Callable[[], None]) -> list[str]:
    """The ResourceWarnings (unclosed pipes and the like) raised while ``action`` runs and is collected."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        action()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_run_emulator_closes_its_output_pipe() -> None:
    kept: list[subprocess.Popen[str]] = []

    def start_and_stop() -> None:
        with run_emulator() as running:
            kept.append(running.process)

    assert resource_warnings_of(start_and_stop) == []
    assert kept[0].stdout is not None and kept[0].stdout.closed


def test_a_failed_start_closes_its_output_pipe() -> None:
    def fail_to_start() -> None:
        with pytest.raises(EmulatorStartupError), run_emulator(fail_ops=["bogus"]):
            pass

    assert resource_warnings_of(fail_to_start) == []
