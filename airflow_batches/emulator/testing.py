"""Run the emulator as a subprocess in your own tests.

Example (pytest)::

    from airflow_batches.emulator.testing import run_emulator

    @pytest.fixture
    def emulator():
        with run_emulator(processing_seconds=0) as running:
            yield running

    def test_something(emulator):
        client = anthropic.Anthropic(api_key=emulator.api_key, base_url=emulator.base_url)
        ...
        emulator.advance_clock(24 * 3600)   # reach expiry
        assert emulator.stats()["batches_created"] == 1

Keyword arguments of :func:`run_emulator` are the command-line flags with ``_`` for ``-``
(``processing_seconds=0`` -> ``--processing-seconds 0``; ``True``/``False`` -> ``--flag``/``--no-flag``;
lists are comma-joined).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

__all__ = [
    "DEFAULT_API_KEY",
    "EmulatorAdminError",
    "EmulatorStartupError",
    "RunningEmulator",
    "echo_request",
    "run_emulator",
]

DEFAULT_API_KEY = "sk-emulator-test-key"
_LISTENING_PREFIX = "airflow-batches emulator listening on "
_KEPT_OUTPUT_LINES = 200


class EmulatorStartupError(RuntimeError):
    """The emulator process did not start listening; the message includes its output."""


class EmulatorAdminError(RuntimeError):
    """An admin endpoint refused a call (for example an invalid setting)."""


def echo_request(custom_id: str, text: str = "hello", **params: Any) -> dict[str, Any]:
    """One batch request whose reply from the emulator's fake model is ``text``, whole.

    ``params`` override or add fields of the Messages body. The default ``max_tokens`` is always enough for
    the echo (the fake model counts four characters per token), so the size of ``text`` sets the size of
    the result line.
    """
    body: dict[str, Any] = {
        "model": "claude-emulated",
        "max_tokens": len(text) // 2 + 16,
        "messages": [{"role": "user", "content": text}],
    }
    body.update(params)
    return {"custom_id": custom_id, "params": body}


def _command_line(flags: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in flags.items():
        option = "--" + name.replace("_", "-")
        if value is None:
            continue
        if value is True:
            args.append(option)
        elif value is False:
            args.append("--no-" + name.replace("_", "-"))
        elif isinstance(value, list | tuple):
            args += [option, ",".join(map(str, value))]
        else:
            args += [option, str(value)]
    return args


class RunningEmulator:
    """A started emulator: where it listens, the key to use, and helpers for its admin endpoints."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        base_url: str,
        api_key: str,
        output: deque[str],
        pump: threading.Thread,
    ) -> None:
        self.process = process
        self.base_url = base_url
        self.api_key = api_key
        self._output = output
        self._pump = pump
        self._admin = httpx.Client(base_url=base_url, timeout=30)

    def __repr__(self) -> str:
        return f"RunningEmulator(base_url={self.base_url!r}, pid={self.process.pid})"

    @property
    def headers(self) -> dict[str, str]:
        """Headers for raw HTTP calls to the API: the key and a current ``anthropic-version``."""
        return {"x-api-key": self.api_key, "anthropic-version": "2023-06-01"}

    def output(self) -> str:
        """The last lines the process printed (stdout and stderr)."""
        return "".join(self._output)

    def admin(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        """Call ``/_emulator/<path>`` and return its JSON answer."""
        response = self._admin.request(method, f"/_emulator/{path.lstrip('/')}", json=json)
        if response.status_code != 200:
            status = response.status_code
            raise EmulatorAdminError(f"{method} /_emulator/{path} -> HTTP {status}: {response.text}")
        return response.json()

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "clock/advance", {"seconds": seconds})
        return result

    def reset(self) -> None:
        """Drop all batches and return clock, counters and settings to how the process started."""
        self.admin("POST", "reset")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Change fault settings (``fail_first=2``, ``fail_status=529``, ``cut_results_after=100``, ...)."""
        result: dict[str, Any] = self.admin("POST", "faults", faults)
        return result

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change behaviour settings (``processing_seconds=5``, ``require_version=False``, ...)."""
        result: dict[str, Any] = self.admin("POST", "config", settings)
        return result

    def stats(self) -> dict[str, Any]:
        """Counters: ``batches_created``, ``batches_stored``, ``requests`` (per operation),
        ``faults_injected``, ``results_cut``."""
        result: dict[str, Any] = self.admin("GET", "stats")
        return result

    def close(self) -> None:
        self._admin.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _close_output(self.process, self._pump)


def _close_output(process: subprocess.Popen[str], pump: threading.Thread) -> None:
    """Close the output pipe of an exited process once the pump has read it to the end.

    Never closed under a read in progress: if a grandchild inherited the pipe and keeps it open, the pump is
    still reading after the timeout and the pipe is left to it.
    """
    pump.join(timeout=10)
    if process.stdout is not None and not pump.is_alive():
        process.stdout.close()


def _pump(
    process: subprocess.Popen[str], output: deque[str], found: list[str], ready: threading.Event
) -> None:
    """Keep reading the process output so it never blocks on a full pipe; note the listening line."""
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if not found and line.startswith(_LISTENING_PREFIX):
            found.append(line[len(_LISTENING_PREFIX) :].strip())
            ready.set()
    ready.set()


@contextmanager
def run_emulator(
    *,
    api_key: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 30.0,
    **flags: Any,
) -> Iterator[RunningEmulator]:
    """Start ``python -m airflow_batches.emulator`` with ``flags``, wait until it listens, stop it on exit.

    With ``api_key`` the emulator requires that key; without, it accepts any key and
    :attr:`RunningEmulator.api_key` is :data:`DEFAULT_API_KEY`.
    """
    command = [sys.executable, "-m", "airflow_batches.emulator", "--host", host, "--port", str(port)]
    command += _command_line({"api_key": api_key, **flags})
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    )
    output: deque[str] = deque(maxlen=_KEPT_OUTPUT_LINES)
    found: list[str] = []
    ready = threading.Event()
    pump = threading.Thread(target=_pump, args=(process, output, found, ready), daemon=True)
    pump.start()
    ready.wait(startup_timeout)
    if not found:
        reason = "exited before listening" if ready.is_set() else f"timed out after {startup_timeout}s"
        process.kill()
        reason += f", exit code {process.wait()}"
        _close_output(process, pump)
        shown = "".join(output).replace(api_key, "***") if api_key else "".join(output)
        raise EmulatorStartupError(f"the emulator did not start ({reason}); its output:\n{shown or '(none)'}")
    running = RunningEmulator(process, found[0], api_key or DEFAULT_API_KEY, output, pump)
    try:
        yield running
    finally:
        running.close()
