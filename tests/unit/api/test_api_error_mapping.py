"""Error responses become the right exception class with status, type, message and request id."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from api_helpers import API_KEY

from airflow_batches.api import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BatchServiceAsync,
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
from airflow_batches.api.error_mapping import status_error


def envelope(error_type: str, message: str) -> dict[str, object]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_body"}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, BillingError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (408, RequestTimeoutError),
        (409, ConflictError),
        (413, RequestTooLargeError),
        (422, APIStatusError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
        (529, OverloadedError),
    ],
)
async def test_each_status_maps_to_its_class(
    status: int, cls: type[APIStatusError], make_service: Callable[..., BatchServiceAsync]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, json=envelope("some_error", "it went wrong"), headers={"request-id": "req_header"}
        )

    async with make_service(handler, max_retries=0) as service:
        with pytest.raises(APIStatusError) as info:
            await service.retrieve("msgbatch_1")
    error = info.value
    assert type(error) is cls
    assert (error.status_code, error.error_type, error.api_message) == (status, "some_error", "it went wrong")
    assert error.request_id == "req_header"
    text = str(error)
    assert f"HTTP {status}" in text and "it went wrong" in text and "req_header" in text
    assert "GET https://api.anthropic.com/v1/messages/batches/msgbatch_1" in text


def test_request_id_falls_back_to_the_body() -> None:
    body = b'{"type":"error","error":{"type":"not_found_error","message":"gone"},"request_id":"req_in_body"}'
    error = status_error(404, httpx.Headers(), body, method="GET", url="u", secret=None)
    assert error.request_id == "req_in_body"


def test_413_html_page_from_the_edge() -> None:
    page = b"<html>\n<head><title>413 Request Entity Too Large</title></head>\n<body>cloudflare</body></html>"
    error = status_error(
        413,
        httpx.Headers({"content-type": "text/html", "request-id": "req_edge"}),
        page,
        method="POST",
        url="https://api.anthropic.com/v1/messages/batches",
        secret=API_KEY,
    )
    assert isinstance(error, RequestTooLargeError)
    text = str(error)
    assert "HTTP 413" in text
    assert "413 Request Entity Too Large" in text  # a snippet of the body
    assert "text/html" in text
    assert "req_edge" in text
    assert "256 MB" in text and "split" in text
    assert error.body == page.decode()


def test_non_json_body_is_reported_with_a_snippet_and_no_request_id() -> None:
    error = status_error(
        502, httpx.Headers(), b"Bad Gateway" + b" x" * 500, method="GET", url="u", secret=None
    )
    assert isinstance(error, InternalServerError)
    assert "Bad Gateway" in str(error)
    assert "request-id: none" in str(error)
    assert len(str(error)) < 600


def test_empty_body() -> None:
    error = status_error(500, httpx.Headers(), b"", method="GET", url="u", secret=None)
    assert "<empty body>" in str(error)


def test_key_echoed_by_the_server_is_scrubbed() -> None:
    body = (
        f'{{"type":"error","error":{{"type":"authentication_error","message":"bad key {API_KEY}"}}}}'.encode()
    )
    error = status_error(401, httpx.Headers(), body, method="GET", url="u", secret=API_KEY)
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert API_KEY not in repr(error.body)
    assert "<redacted>" in str(error)
    assert "API key" in str(error)  # the 401 hint says what to check


def test_redirects_are_errors_not_followed() -> None:
    error = status_error(
        307,
        httpx.Headers({"location": "https://elsewhere.example/x"}),
        b"",
        method="GET",
        url="u",
        secret=None,
    )
    assert type(error) is APIStatusError
    assert "https://elsewhere.example/x" in str(error)
