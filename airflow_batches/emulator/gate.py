"""The ASGI gate in front of every route: ids and headers, then latency, faults, auth and version checks.

Order for an API request: count it, wait ``latency_ms``, maybe answer with an injected fault, then check the
credential, then ``anthropic-version``. Faults come before auth because in the real service overload and
rate limiting happen at the edge. ``/_emulator/`` admin requests only get the headers.
"""

from __future__ import annotations

import asyncio
import hmac
import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_batches.emulator.faults import FAULT_MESSAGES
from airflow_batches.emulator.ids import random_id
from airflow_batches.emulator.responses import error_response
from airflow_batches.emulator.settings import Operation
from airflow_batches.emulator.state import EmulatorState

__all__ = ["ACCEPTED_VERSIONS", "ADMIN_PREFIX", "ORGANIZATION_ID", "ApiGate", "operation_of"]

ADMIN_PREFIX = "/_emulator/"
ACCEPTED_VERSIONS = ("2023-06-01", "2026-10-21")
ORGANIZATION_ID = "5e0f6a1c-0000-4000-8000-000000e3a1a7"
_API_PATH = re.compile(r"^/v1/messages/batches(?:/(?P<id>[^/]+)(?:/(?P<action>cancel|results))?)?/?$")


def operation_of(method: str, path: str) -> Operation | None:
    """Which batch operation a request is, or None for anything else."""
    if path.rstrip("/") == "/v1/messages/count_tokens":
        return "count_tokens" if method == "POST" else None
    match = _API_PATH.match(path)
    if match is None:
        return None
    batch_id, action = match.group("id"), match.group("action")
    table: dict[tuple[str, bool, str | None], Operation] = {
        ("POST", False, None): "create",
        ("GET", False, None): "list",
        ("GET", True, None): "retrieve",
        ("DELETE", True, None): "delete",
        ("POST", True, "cancel"): "cancel",
        ("GET", True, "results"): "results",
    }
    return table.get((method, batch_id is not None, action))


def _credential(headers: Headers) -> tuple[str | None, str | None]:
    """The ``x-api-key`` value and the ``Authorization: Bearer`` token, each None when absent."""
    api_key = headers.get("x-api-key") or None
    scheme, _, token = headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return api_key, bearer


class ApiGate:
    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = random_id("req_")
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["request-id"] = request_id
                headers["anthropic-organization-id"] = ORGANIZATION_ID
            await send(message)

        if scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send_with_headers)
            return
        refusal = await self._refusal(scope, request_id)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _refusal(self, scope: Scope, request_id: str) -> Response | None:
        state = self.state
        operation = operation_of(scope["method"], scope["path"])
        state.stats.requests[operation or "other"] += 1
        latency_ms = state.faults.settings.latency_ms
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        if operation is not None and state.faults.should_fail(operation):
            state.stats.faults_injected += 1
            status = state.faults.settings.fail_status
            return error_response(status, FAULT_MESSAGES[status], request_id, state.faults.failure_headers())
        headers = Headers(scope=scope)
        api_key, bearer = _credential(headers)
        if api_key is None and bearer is None:
            return error_response(
                401, "x-api-key header is required (or send 'Authorization: Bearer <key>')", request_id
            )
        expected = state.settings.api_key
        if expected is not None and not any(
            given is not None and hmac.compare_digest(given.encode(), expected.encode())
            for given in (api_key, bearer)
        ):
            return error_response(401, "invalid x-api-key", request_id)
        version = headers.get("anthropic-version")
        if version is None:
            if state.settings.require_version:
                return error_response(
                    400,
                    f"anthropic-version: header is required; send one of {', '.join(ACCEPTED_VERSIONS)}",
                    request_id,
                )
        elif version not in ACCEPTED_VERSIONS:
            choices = ", ".join(ACCEPTED_VERSIONS)
            message = f"anthropic-version: {version!r} is not a valid version; use one of {choices}"
            return error_response(400, message, request_id)
        return None
