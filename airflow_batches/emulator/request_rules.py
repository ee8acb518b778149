"""The rules one batch request must follow, and the per-request emulator switches.

Problems are reported the way the API does (``<location>: <what is wrong>``, with pydantic-style wording),
plus a hint on how to fix them where the API's wording alone would leave a user guessing.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any

__all__ = [
    "CUSTOM_ID_PATTERN",
    "SWITCHES",
    "RequestKind",
    "RequestProblem",
    "custom_id_problem",
    "messages_problem",
    "params_problem",
    "request_kind",
]

CUSTOM_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_PATTERN_TEXT = "^[a-zA-Z0-9_-]{1,64}$"


class RequestKind(IntEnum):
    """What a request does in the emulator; stored as one byte per request."""

    NORMAL = 0
    ERROR = 1
    EXPIRE = 2
    UNCANCELABLE = 3
    INVALID = 4  # bad params under params_validation="per_request": an errored result, not a 400
    # Set by the transient_* faults on a request's first submission (emulator/transient.py).
    TRANSIENT_ERROR = 5
    TRANSIENT_EXPIRE = 6


SWITCHES: dict[str, RequestKind] = {
    "error": RequestKind.ERROR,
    "expire": RequestKind.EXPIRE,
    "uncancelable": RequestKind.UNCANCELABLE,
}


class RequestProblem(ValueError):
    """One broken rule; ``str()`` is ``<location>: <message>`` relative to the request."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def custom_id_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "custom_id: Input should be a valid string"
    if not value:
        return "custom_id: String should have at least 1 character"
    if len(value) > 64:
        return "custom_id: String should have at most 64 characters"
    if not CUSTOM_ID_PATTERN.match(value):
        return (
            f"custom_id: String should match pattern '{_PATTERN_TEXT}' "
            f"(got {value!r}; use only letters, digits, '_' and '-')"
        )
    return None


def messages_problem(messages: object) -> str | None:
    if not isinstance(messages, list):
        return "params.messages: Input should be a valid list"
    if not messages:
        return "params.messages: at least one message is required"
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"params.messages.{index}: Input should be a valid dictionary"
        if message.get("role") not in ("user", "assistant"):
            return f"params.messages.{index}.role: Input should be 'user' or 'assistant'"
        if "content" not in message:
            return f"params.messages.{index}.content: Field required"
        if not isinstance(message["content"], str | list):
            return f"params.messages.{index}.content: Input should be a string or a list of content blocks"
    return None


def params_problem(params: object) -> str | None:
    """The first broken rule of a request's ``params``, or None when they are acceptable."""
    if not isinstance(params, dict):
        return "params: Input should be a valid dictionary"
    for field in ("model", "max_tokens", "messages"):
        if field not in params:
            return f"params.{field}: Field required"
    if not isinstance(params["model"], str) or not params["model"]:
        return "params.model: Input should be a non-empty string"
    max_tokens = params["max_tokens"]
    if not _is_int(max_tokens):
        return "params.max_tokens: Input should be a valid integer"
    if max_tokens < 1:
        return "params.max_tokens: Input should be greater than or equal to 1 (batches reject max_tokens=0)"
    if params.get("stream") not in (None, False):
        return "params.stream: streaming is not supported in batch requests; remove it or set it to false"
    system = params.get("system")
    if system is not None and not isinstance(system, str | list):
        return "params.system: Input should be a valid string or a list of text blocks"
    return messages_problem(params["messages"])


def _switch(params: dict[str, Any]) -> RequestKind:
    metadata = params.get("metadata")
    if not isinstance(metadata, dict) or "emulator" not in metadata:
        return RequestKind.NORMAL
    value = metadata["emulator"]
    kind = SWITCHES.get(value) if isinstance(value, str) else None
    if kind is None:
        choices = ", ".join(repr(name) for name in SWITCHES)
        raise RequestProblem(f"params.metadata.emulator: unknown switch {value!r}; use one of {choices}")
    return kind


def request_kind(element: dict[str, Any], *, params_in_results: bool) -> tuple[str, RequestKind]:
    """Check one (object) element of ``requests`` and return its ``(custom_id, kind)``.

    Raises :class:`RequestProblem` for anything that must fail the create call. With ``params_in_results``
    a problem in ``params`` does not fail the call: the request becomes :attr:`RequestKind.INVALID`.
    """
    if "custom_id" not in element:
        raise RequestProblem("custom_id: Field required")
    problem = custom_id_problem(element["custom_id"])
    if problem:
        raise RequestProblem(problem)
    custom_id: str = element["custom_id"]
    if "params" not in element:
        raise RequestProblem("params: Field required")
    params = element["params"]
    problem = params_problem(params)
    if problem:
        if params_in_results and isinstance(params, dict):
            return custom_id, RequestKind.INVALID
        raise RequestProblem(problem)
    return custom_id, _switch(params)
