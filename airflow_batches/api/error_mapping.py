"""Turning an error response into the matching ``APIStatusError`` subclass with a self-contained message."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx

from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    RequestTooLargeError,
)

__all__ = ["MAX_ERROR_BODY_BYTES", "error_class_for", "status_error"]

# Enough for any JSON envelope; an HTML error page from a proxy is cut here.
MAX_ERROR_BODY_BYTES = 64 * 1024
_SNIPPET_CHARS = 200

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BillingError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    413: RequestTooLargeError,
    429: RateLimitError,
    529: OverloadedError,
}

_HINTS = {
    401: "Check the API key (connection password) and that it belongs to this base URL",
    413: (
        "The request body is over the API's 256 MB limit: split the requests into smaller batches "
        "(BatchCreateOperator splits automatically; with the client use spool_batches(max_bytes=...))"
    ),
    429: "Rate limited: wait and retry later, or lower the request rate",
    529: "The API is overloaded: retry later",
}


def error_class_for(status: int) -> type[APIStatusError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return InternalServerError if status >= 500 else APIStatusError


def status_error(
    status: int,
    headers: httpx.Headers,
    body: bytes,
    *,
    method: str,
    url: str,
    secret: str | None,
) -> APIStatusError:
    """Build the error for an error response; ``secret`` (the API key) is scrubbed from everything kept."""
    text = body.decode("utf-8", errors="replace")
    if secret:
        text = text.replace(secret, "<redacted>")
    parsed: Any = None
    with contextlib.suppress(ValueError):
        parsed = json.loads(text)
    error_type: str | None = None
    api_message: str
    request_id = headers.get("request-id")
    envelope = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(envelope, dict) and isinstance(envelope.get("message"), str):
        error_type = envelope.get("type") if isinstance(envelope.get("type"), str) else None
        api_message = envelope["message"]
        if request_id is None and isinstance(parsed.get("request_id"), str):
            request_id = parsed["request_id"]
    else:
        snippet = " ".join(text.split())[:_SNIPPET_CHARS] or "<empty body>"
        content_type = headers.get("content-type", "no content-type")
        api_message = f"the response was not the API's JSON error envelope ({content_type}): {snippet}"
    hint = _HINTS.get(status)
    if 300 <= status < 400:
        # Redirects are never followed, so the key cannot travel to wherever they point.
        hint = f"Unexpected redirect to {headers.get('location', '?')}; check the base URL"
    return error_class_for(status)(
        status_code=status,
        error_type=error_type,
        api_message=api_message,
        request_id=request_id,
        body=parsed if parsed is not None else text,
        method=method,
        url=url,
        hint=hint,
    )
