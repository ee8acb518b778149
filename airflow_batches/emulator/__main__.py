"""``python -m airflow_batches.emulator``: serve the emulator until SIGTERM or SIGINT.

The listening line is printed only after the socket is bound and the server has started, so whoever
reads it can connect at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

import uvicorn

from airflow_batches.emulator.app import create_app
from airflow_batches.emulator.results_stream import ResultsStreamCut
from airflow_batches.emulator.settings import (
    FAULT_STATUSES,
    OPERATIONS,
    RESULT_ERROR_TYPES,
    RETRY_AFTER_MODES,
    FaultSettings,
    ServerSettings,
)
from airflow_batches.emulator.state import EmulatorState

LISTENING_PREFIX = "airflow-batches emulator listening on "


def _operations(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(OPERATIONS))
    if unknown:
        choices = ", ".join(OPERATIONS)
        raise argparse.ArgumentTypeError(f"unknown operation(s) {', '.join(unknown)}; use {choices}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_batches.emulator",
        description="A local Anthropic Message Batches API for tests and demos (loopback only).",
    )
    add = parser.add_argument
    flag = argparse.BooleanOptionalAction
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default 0)")
    add("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])

    server = parser.add_argument_group("behaviour")
    server.add_argument("--api-key", help="require this key; default: any non-empty key")
    server.add_argument("--processing-seconds", type=float, help="in_progress time (default 2)")
    server.add_argument("--cancel-seconds", type=float, help="canceling time (default 1)")
    server.add_argument("--require-version", action=flag, help="400 without anthropic-version (default on)")
    server.add_argument("--max-body-bytes", type=int, help="413 above this (default 256000000)")
    server.add_argument("--html-413", action=flag, help="413 as an HTML edge page (default off)")
    server.add_argument(
        "--params-validation",
        choices=["sync", "per_request"],
        help="bad params fail the create call (sync, default) or become errored results (per_request)",
    )
    server.add_argument("--cancel-ended-status", type=int, choices=[400, 409], help="cancel when ended")
    server.add_argument(
        "--archived-results-status", type=int, choices=[400, 404], help="results when archived"
    )
    server.add_argument("--clear-results-url-on-archive", action=flag, help="null results_url once archived")
    server.add_argument(
        "--invalid-output-rate", type=float, help="share (0..1) of structured answers breaking their schema"
    )
    server.add_argument(
        "--results-base-url", help="results_url names this origin instead of the server (as behind a gateway)"
    )

    faults = parser.add_argument_group("fault injection (API requests only)")
    faults.add_argument("--latency-ms", type=float, help="delay added before every API response")
    faults.add_argument("--fail-rate", type=float, help="share (0..1) of requests to fail")
    faults.add_argument("--fail-status", type=int, choices=FAULT_STATUSES, help="status of injected failures")
    faults.add_argument("--fail-first", type=int, help="fail exactly the next N requests")
    faults.add_argument("--fail-ops", type=_operations, help=f"comma list from {OPERATIONS}")
    faults.add_argument("--seed", type=int, help="seed of the --fail-rate draws (deterministic runs)")
    faults.add_argument("--retry-after-seconds", type=float, help="retry-after on failures (default 1)")
    faults.add_argument(
        "--retry-after-mode",
        choices=RETRY_AFTER_MODES,
        help="retry headers on failures: both (default), seconds (retry-after), ms (retry-after-ms), "
        "date (retry-after as an HTTP-date)",
    )
    faults.add_argument("--should-retry", action=flag, help="x-should-retry on failures")
    faults.add_argument("--cut-results-after", type=int, help="cut results after N bytes")
    faults.add_argument("--cut-results-times", type=int, help="cut only the next N results downloads")
    faults.add_argument("--slow-results-ms", type=float, help="pause before each results line")
    faults.add_argument("--results-drop-lines", type=int, help="leave out the last N results lines")
    faults.add_argument("--results-duplicate-line", action=flag, help="send the first results line twice")
    faults.add_argument(
        "--transient-errored-rate", type=float, help="share (0..1) errored on first submission only"
    )
    faults.add_argument(
        "--transient-error-type",
        choices=RESULT_ERROR_TYPES,
        help="their error type (default overloaded_error)",
    )
    faults.add_argument(
        "--transient-expired-rate", type=float, help="share (0..1) expired on first submission only"
    )
    faults.add_argument("--transient-seed", type=int, help="seed of the transient draws (default 0)")
    return parser


def _given(args: argparse.Namespace, fields: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in fields if getattr(args, name, None) is not None}


def _settings(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[ServerSettings, FaultSettings]:
    try:
        return (
            ServerSettings(**_given(args, list(ServerSettings.model_fields))),
            FaultSettings(**_given(args, list(FaultSettings.model_fields))),
        )
    except ValueError as exc:
        parser.error(str(exc))


class _HideInjectedCuts(logging.Filter):
    """A cut results stream is a requested fault, not a server error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        return not isinstance(error, ResultsStreamCut)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets that say so, and without it every
    # response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _AnnouncingServer(uvicorn.Server):
    """Prints the listening line once uvicorn has started serving the already bound socket."""

    def __init__(self, config: uvicorn.Config, base_url: str) -> None:
        super().__init__(config)
        self.base_url = base_url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"{LISTENING_PREFIX}{self.base_url}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings, faults = _settings(args, parser)
    app = create_app(settings, faults)
    state: EmulatorState = app.state.emulator
    logging.getLogger("uvicorn.error").addFilter(_HideInjectedCuts())
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        parser.error(f"cannot listen on {args.host}:{args.port}: {exc}")
    host, port = sock.getsockname()[:2]
    base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    config = uvicorn.Config(app, log_level=args.log_level, access_log=False, lifespan="off")
    server = _AnnouncingServer(config, base_url)

    def stop(signum: int, frame: FrameType | None) -> None:
        # uvicorn handles these signals while it serves; this covers the moments before and after, including
        # the signal uvicorn re-raises once it has shut down (the default handler would kill the process).
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        state.store.close()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
