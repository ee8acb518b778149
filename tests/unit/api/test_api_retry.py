"""Retry decisions and delays on a fake clock: the policy alone, then through the service."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable

import httpx
import pytest
from api_helpers import FakeClock, batch_json, request
from fake_api import FakeAPI, error_response

from airflow_batches.api import (
    AmbiguousCreateError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    BatchServiceAsync,
    InternalServerError,
    InvalidBatchIdError,
    OverloadedError,
    RateLimitError,
    RetryPolicy,
    is_transient,
)
from airflow_batches.api.retry import Decision

NOW = 1_000_000.0


def policy(random: float = 0.0, **kwargs: float) -> RetryPolicy:
    return RetryPolicy(random=lambda: random, now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


# --- delays -----------------------------------------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_and_caps_at_eight() -> None:
    assert [policy().delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


@pytest.mark.parametrize("random", [0.0, 0.3, 0.999999])
def test_jitter_takes_off_at_most_a_quarter(random: float) -> None:
    for n in range(6):
        full = min(0.5 * 2**n, 8.0)
        delay = policy(random).delay(n)
        assert full * 0.75 <= delay <= full
        assert delay == pytest.approx(full * (1 - 0.25 * random))


def test_retry_after_ms_wins_over_retry_after() -> None:
    headers = httpx.Headers({"retry-after-ms": "1500", "retry-after": "30"})
    assert policy().delay(0, headers) == 1.5


def test_retry_after_seconds() -> None:
    assert policy().delay(3, httpx.Headers({"retry-after": "2.5"})) == 2.5


def test_retry_after_http_date() -> None:
    date = email.utils.formatdate(NOW + 10, usegmt=True)
    assert policy().delay(0, httpx.Headers({"retry-after": date})) == pytest.approx(10.0)


def test_server_delay_is_capped() -> None:
    assert policy().delay(0, httpx.Headers({"retry-after": "86400"})) == 60.0
    assert policy(max_retry_delay=5.0).delay(0, httpx.Headers({"retry-after-ms": "9000"})) == 5.0


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf", "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_unusable_retry_after_falls_back_to_backoff(value: str) -> None:
    assert policy().delay(1, httpx.Headers({"retry-after": value})) == 1.0


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


# --- decisions --------------------------------------------------------------------------------------------

NO_HEADERS = httpx.Headers()


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retried(status: int) -> None:
    assert policy().decide_status(status, NO_HEADERS) is Decision.RETRY


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    assert policy().decide_status(status, NO_HEADERS) is Decision.RAISE


def test_x_should_retry_overrides_both_ways() -> None:
    assert policy().decide_status(400, httpx.Headers({"x-should-retry": "true"})) is Decision.RETRY
    assert policy().decide_status(529, httpx.Headers({"x-should-retry": "false"})) is Decision.RAISE


@pytest.mark.parametrize("status", [429, 529])
def test_create_retries_only_what_proves_no_batch_was_made(status: int) -> None:
    assert policy().decide_status(status, NO_HEADERS, creates=True) is Decision.RETRY
    assert policy().decide_status(status, httpx.Headers({"x-should-retry": "false"}), creates=True) is (
        Decision.RAISE
    )


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504])
def test_create_is_ambiguous_on_server_failures(status: int) -> None:
    assert policy().decide_status(status, NO_HEADERS, creates=True) is Decision.AMBIGUOUS
    # The server's hint cannot undo the doubt: the body may have been acted on.
    assert policy().decide_status(status, httpx.Headers({"x-should-retry": "true"}), creates=True) is (
        Decision.AMBIGUOUS
    )


def test_create_rejected_outright_is_a_plain_error() -> None:
    assert policy().decide_status(400, NO_HEADERS, creates=True) is Decision.RAISE


def test_transport_decisions() -> None:
    req = httpx.Request("GET", "https://api.anthropic.com/")
    connect = httpx.ConnectError("refused", request=req)
    read_timeout = httpx.ReadTimeout("slow", request=req)
    reset = httpx.RemoteProtocolError("peer closed", request=req)
    assert policy().decide_transport(connect) is Decision.RETRY
    assert policy().decide_transport(connect, creates=True) is Decision.RETRY
    assert policy().decide_transport(read_timeout) is Decision.RETRY
    assert policy().decide_transport(read_timeout, creates=True) is Decision.AMBIGUOUS
    assert policy().decide_transport(reset, creates=True) is Decision.AMBIGUOUS
    assert policy().decide_transport(httpx.UnsupportedProtocol("ftp", request=req)) is Decision.RAISE


# --- through the service ----------------------------------------------------------------------------------


def ok(status: str = "in_progress") -> httpx.Response:
    return httpx.Response(200, json=batch_json(status=status))


def fail(status: int, **headers: str) -> httpx.Response:
    return error_response(status, **{name.replace("_", "-"): value for name, value in headers.items()})


async def test_get_honours_retry_after_ms(
    make_service: Callable[..., BatchServiceAsync], clock: FakeClock
) -> None:
    script = FakeAPI().queue(fail(529, retry_after_ms="1200"), fail(429, retry_after="3"), ok())
    async with make_service(script) as service:
        batch = await service.retrieve("msgbatch_01")
    assert batch.id == "msgbatch_01"
    assert len(script.requests) == 3
    assert clock.sleeps == [1.2, 3.0]


async def test_get_gives_up_after_max_retries(
    make_service: Callable[..., BatchServiceAsync], clock: FakeClock
) -> None:
    script = FakeAPI().queue(fail(500), fail(502), fail(503))
    async with make_service(script) as service:
        with pytest.raises(InternalServerError) as info:
            await service.retrieve("msgbatch_01")
    assert info.value.status_code == 503
    assert len(script.requests) == 3
    assert clock.sleeps == [0.5, 1.0]


async def test_max_retries_zero_means_one_attempt(
    make_service: Callable[..., BatchServiceAsync], clock: FakeClock
) -> None:
    script = FakeAPI().queue(fail(529))
    async with make_service(script, max_retries=0) as service:
        with pytest.raises(OverloadedError):
            await service.retrieve("msgbatch_01")
    assert len(script.requests) == 1 and clock.sleeps == []


async def test_bogus_retry_after_is_capped(
    make_service: Callable[..., BatchServiceAsync], clock: FakeClock
) -> None:
    script = FakeAPI().queue(fail(429, retry_after="999999"), ok())
    async with make_service(script) as service:
        await service.retrieve("msgbatch_01")
    assert clock.sleeps == [60.0]


async def test_x_should_retry_true_retries_a_400(
    make_service: Callable[..., BatchServiceAsync], clock: FakeClock
) -> None:
    script = FakeAPI().queue(fail(400, x_should_retry="true"), ok())
    async with make_service(script) as service:
        await service.retrieve("msgbatch_01")
    assert len(script.requests) == 2


async def test_a_plain_400_is_not_retried(make_service: Callable[..., BatchServiceAsync]) -> None:
    script = FakeAPI().queue(fail(400))
    async with make_service(script) as service:
        with pytest.raises(BadRequestError):
            await service.cancel("msgbatch_01")
    assert len(script.requests) == 1


async def test_connection_errors_are_retried_then_wrapped(
    make_service: Callable[..., BatchServiceAsync], clock: FakeClock
) -> None:
    script = FakeAPI().queue(httpx.ConnectError, httpx.ReadError, httpx.ConnectError)
    async with make_service(script) as service:
        with pytest.raises(APIConnectionError) as info:
            await service.delete("msgbatch_01")
    assert len(script.requests) == 3
    assert "after 3 attempts" in str(info.value) and "ConnectError" in str(info.value)
    assert info.value.__cause__ is None  # not chained: httpx errors carry the request headers


async def test_timeouts_become_api_timeout_error(make_service: Callable[..., BatchServiceAsync]) -> None:
    script = FakeAPI().queue(httpx.ReadTimeout)
    async with make_service(script, max_retries=0) as service:
        with pytest.raises(APITimeoutError):
            await service.retrieve("msgbatch_01")


async def test_create_retries_429_and_resends_the_same_body(
    make_service: Callable[..., BatchServiceAsync], clock: FakeClock
) -> None:
    script = FakeAPI().queue(fail(429, retry_after="2"), fail(529), ok())
    async with make_service(script) as service:
        batch = await service.create([request("a"), request("b")])
    assert batch.id == "msgbatch_01"
    assert len(script.requests) == 3
    assert script.requests[0].content == script.requests[1].content == script.requests[2].content
    assert [r["custom_id"] for r in json.loads(script.requests[0].content)["requests"]] == ["a", "b"]
    assert clock.sleeps == [2.0, 1.0]


async def test_create_retries_a_refused_connection(make_service: Callable[..., BatchServiceAsync]) -> None:
    script = FakeAPI().queue(httpx.ConnectError, ok())
    async with make_service(script) as service:
        await service.create([request()])
    assert len(script.requests) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_create_is_never_retried_on_a_server_error(
    status: int, make_service: Callable[..., BatchServiceAsync]
) -> None:
    script = FakeAPI().queue(fail(status), ok())
    async with make_service(script) as service:
        with pytest.raises(AmbiguousCreateError) as info:
            await service.create([request("first"), request("last")])
    assert len(script.requests) == 1
    message = str(info.value)
    assert "may have made a batch" in message and "list" in message
    assert "2 requests" in message and "first" in message and "last" in message
    assert isinstance(info.value.cause, InternalServerError)


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError])
async def test_create_is_never_retried_after_the_body_may_have_arrived(
    exc: type[httpx.TransportError], make_service: Callable[..., BatchServiceAsync]
) -> None:
    script = FakeAPI().queue(exc, ok())
    async with make_service(script) as service:
        with pytest.raises(AmbiguousCreateError) as info:
            await service.create([request()])
    assert len(script.requests) == 1
    assert isinstance(info.value.cause, APIConnectionError)


async def test_create_respects_x_should_retry_false(make_service: Callable[..., BatchServiceAsync]) -> None:
    script = FakeAPI().queue(fail(529, x_should_retry="false"), ok())
    async with make_service(script) as service:
        with pytest.raises(OverloadedError):
            await service.create([request()])
    assert len(script.requests) == 1


async def test_create_rate_limited_to_the_end_is_a_plain_error(
    make_service: Callable[..., BatchServiceAsync],
) -> None:
    script = FakeAPI().queue(fail(429), fail(429), fail(429))
    async with make_service(script) as service:
        with pytest.raises(RateLimitError):
            await service.create([request()])
    assert len(script.requests) == 3


async def test_create_with_an_unreadable_success_body_is_ambiguous(
    make_service: Callable[..., BatchServiceAsync],
) -> None:
    script = FakeAPI().queue(httpx.Response(200, text="<html>ok</html>"))
    async with make_service(script) as service:
        with pytest.raises(AmbiguousCreateError, match="id is unknown"):
            await service.create([request()])


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        *[(status, True) for status in (408, 409, 429, 500, 503, 529)],
        *[(status, False) for status in (400, 401, 403, 404, 413)],
    ],
)
def test_is_transient_follows_the_status_retry_rules(status: int, transient: bool) -> None:
    error = APIStatusError(status_code=status, error_type=None, api_message="x", request_id=None)
    assert is_transient(error) is transient


def test_is_transient_for_errors_without_a_response() -> None:
    assert is_transient(APIConnectionError("refused"))
    assert is_transient(APITimeoutError("timed out"))
    assert not is_transient(InvalidBatchIdError("bad id"))
    assert not is_transient(ValueError("not an API error"))
