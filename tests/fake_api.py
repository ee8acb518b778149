"""The one fake Message Batches API of the unit tests: scripted answers through ``httpx.MockTransport``.

Answers are given per route (``FakeAPI({(method, path): answer})`` or ``route(method, path, ...)``), per
batch for ``retrieve``
(``script(batch_id, ...)``) or for any request in order (``queue(...)``); for each, the answers are used one
per request and the last one repeats (a queue is used up, then a request without an answer fails the test).
An answer is an ``httpx.Response``; a ``dict`` (200 with that JSON); an ``int`` (that error status with the
API's error envelope); an exception class such as ``httpx.ConnectError`` (raised, as a transport failure);
or a callable ``request -> answer``. Every request is recorded. Tests that need the real server's behaviour
use the emulator (tests/integration).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import httpx

Answer: TypeAlias = (
    httpx.Response | dict[str, Any] | int | type[httpx.TransportError] | Callable[[httpx.Request], Any]
)

BATCHES_PATH = "/v1/messages/batches"

# The API's error type for each status (docs.anthropic.com/en/api/errors); anything else is an api_error.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_response(status: int, message: str = "nope", **headers: str) -> httpx.Response:
    """An error answer as the API sends it: the JSON envelope and a ``request-id``."""
    body = {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": f"req_{status}",
    }
    return httpx.Response(status, json=body, headers={"request-id": f"req_{status}", **headers})


class FakeAPI:
    """Scripted answers, recorded requests; use :meth:`transport` (or ``handle``) as the HTTP layer."""

    def __init__(
        self, routes: Mapping[tuple[str, str], Answer] | None = None, *, default: Answer | None = None
    ) -> None:
        self.requests: list[httpx.Request] = []
        self._routes: dict[tuple[str, str], deque[Answer]] = {
            key: deque([answer]) for key, answer in (routes or {}).items()
        }
        self._queue: deque[Answer] = deque()
        self._default = default

    def route(self, method: str, path: str, *answers: Answer) -> FakeAPI:
        self._routes[(method, path)] = deque(answers)
        return self

    def script(self, batch_id: str, *answers: Answer) -> FakeAPI:
        """Answers to ``GET /v1/messages/batches/<batch_id>`` (retrieve)."""
        return self.route("GET", f"{BATCHES_PATH}/{batch_id}", *answers)

    def queue(self, *answers: Answer) -> FakeAPI:
        """Answers to the next requests, whatever they are, each used once (before any route)."""
        self._queue.extend(answers)
        return self

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        request.read()
        if self._queue:
            answer: Answer = self._queue.popleft()
        else:
            answers = self._routes.get((request.method, request.url.path))
            if answers:
                answer = answers.popleft() if len(answers) > 1 else answers[0]
            elif self._default is not None:
                answer = self._default
            else:
                raise AssertionError(f"no answer scripted for {request.method} {request.url.path}")
        return _respond(answer, request)

    def paths(self, method: str | None = None) -> list[str]:
        """The paths requested so far (of one method, if given)."""
        return [r.url.path for r in self.requests if method is None or r.method == method]


def _respond(answer: Answer, request: httpx.Request) -> httpx.Response:
    if isinstance(answer, httpx.Response):
        return answer
    if isinstance(answer, dict):
        return httpx.Response(200, json=answer)
    if isinstance(answer, int):
        return error_response(answer)
    if isinstance(answer, type) and issubclass(answer, httpx.TransportError):
        raise answer("injected", request=request)
    return _respond(answer(request), request)
