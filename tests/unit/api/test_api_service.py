"""BatchServiceAsync over MockTransport: headers, ids, origins, listing, results, create input, secrets."""

from __future__ import annotations

import gc
import json
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import API_KEY, BASE_URL, batch_json, request
from fake_api import FakeAPI

import airflow_batches
from airflow_batches.api import (
    APIConnectionError,
    BatchAPIError,
    BatchNotEndedError,
    BatchServiceAsync,
    InvalidBatchIdError,
    InvalidInputError,
    MessageBatchSucceededResult,
    MessageBatchUnknownResult,
    NotFoundError,
    RequestValidationError,
    ResultsArchivedError,
    ResultsStreamError,
    UnsafeURLError,
    spool_batches,
    validate_batch_id,
)

SUCCEEDED = (
    b'{"custom_id":"a","result":{"type":"succeeded","message":{"id":"msg_1","type":"message","role":"assistant",'
    b'"model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,'
    b'"usage":{"input_tokens":1,"output_tokens":1}}}}\n'
)
CANCELED = b'{"custom_id":"b","result":{"type":"canceled"}}\n'


def json_response(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"request-id": "req_test"})


# --- headers and configuration ----------------------------------------------------------------------------


async def test_headers_sent(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = FakeAPI({("GET", "/v1/messages/batches/msgbatch_01"): json_response(batch_json())})
    async with make_service(
        rec,
        api_version="2026-10-21",
        betas=["b1", "b2"],
        default_headers={"anthropic-workspace-id": "wrkspc_1"},
    ) as service:
        await service.retrieve("msgbatch_01")
    headers = rec.requests[0].headers
    assert headers["x-api-key"] == API_KEY
    assert headers["anthropic-version"] == "2026-10-21"
    assert headers["user-agent"] == f"airflow-batches/{airflow_batches.__version__}"
    assert headers["anthropic-beta"] == "b1,b2"
    assert headers["anthropic-workspace-id"] == "wrkspc_1"
    assert "authorization" not in headers


async def test_default_version_and_no_beta(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = FakeAPI({("GET", "/v1/messages/batches/msgbatch_01"): json_response(batch_json())})
    async with make_service(rec) as service:
        await service.retrieve("msgbatch_01")
    assert rec.requests[0].headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in rec.requests[0].headers


async def test_base_url_path_prefix_is_kept(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = FakeAPI({("GET", "/proxy/anthropic/v1/messages/batches/msgbatch_01"): json_response(batch_json())})
    async with make_service(rec, base_url="https://gw.example/proxy/anthropic/") as service:
        await service.retrieve("msgbatch_01")
    assert str(rec.requests[0].url) == "https://gw.example/proxy/anthropic/v1/messages/batches/msgbatch_01"


@pytest.mark.parametrize(
    "base_url",
    ["api.anthropic.com", "ftp://x", "https://user:pw@api.anthropic.com", "https://a.com/?q=1", ""],
)
def test_bad_base_url(base_url: str) -> None:
    with pytest.raises(InvalidInputError, match="base_url"):
        BatchServiceAsync(api_key=API_KEY, base_url=base_url)


def test_api_key_from_environment_or_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(InvalidInputError, match="no API key"):
        BatchServiceAsync()
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    assert BatchServiceAsync().base_url == BASE_URL


async def test_injected_client_is_shared_not_closed() -> None:
    rec = FakeAPI({("GET", "/v1/messages/batches/msgbatch_01"): json_response(batch_json())})
    client = httpx.AsyncClient(transport=httpx.MockTransport(rec))
    async with BatchServiceAsync(api_key=API_KEY, http_client=client) as service:
        await service.retrieve("msgbatch_01")
    assert not client.is_closed
    assert "x-api-key" not in client.headers  # the key lives per request, never in the shared client
    async with BatchServiceAsync(api_key=API_KEY, http_client=client) as again:
        await again.retrieve("msgbatch_01")
    await client.aclose()
    with pytest.raises(InvalidInputError, match="not both"):
        BatchServiceAsync(api_key=API_KEY, http_client=client, transport=httpx.MockTransport(rec))


async def test_own_client_is_closed() -> None:
    service = BatchServiceAsync(api_key=API_KEY, transport=httpx.MockTransport(lambda r: json_response({})))
    await service.aclose()
    with pytest.raises(RuntimeError):
        await service.retrieve("msgbatch_01")


# --- batch ids --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a?b=1", "a#b", "%2e%2e", "a b", "x" * 257, None, 5])
async def test_unsafe_batch_ids_are_refused_before_any_request(
    bad: Any, make_service: Callable[..., BatchServiceAsync]
) -> None:
    rec = FakeAPI({})
    async with make_service(rec) as service:
        for call in (service.retrieve, service.cancel, service.delete):
            with pytest.raises(InvalidBatchIdError):
                await call(bad)
        with pytest.raises(InvalidBatchIdError):
            [line async for line in service.results_lines(bad)]
        with pytest.raises(InvalidBatchIdError):
            service.list(after_id=bad or "")
    assert rec.requests == []


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("", "batch id must be a non-empty string like 'msgbatch_...', got ''"),
        (None, "batch id must be a non-empty string like 'msgbatch_...', got None"),
        ("../x", "batch id '../x' is not a batch id: only letters, digits, '_' and '-'"),
        ("msgbatch_01 ", "batch id 'msgbatch_01 ' is not a batch id"),
    ],
)
def test_a_bad_batch_id_error_says_what_is_wrong(bad: Any, expected: str) -> None:
    with pytest.raises(InvalidBatchIdError) as info:
        validate_batch_id(bad)
    assert str(info.value).startswith(expected)


async def test_a_bad_cursor_is_named_as_such(make_service: Callable[..., BatchServiceAsync]) -> None:
    async with make_service(FakeAPI({})) as service:
        with pytest.raises(InvalidBatchIdError, match=r"^after_id 'a/b' is not a batch id"):
            service.list(after_id="a/b")


async def test_cancel_and_delete_paths(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = FakeAPI(
        {
            ("POST", "/v1/messages/batches/msgbatch_01/cancel"): json_response(
                batch_json(status="canceling")
            ),
            ("DELETE", "/v1/messages/batches/msgbatch_01"): json_response(
                {"id": "msgbatch_01", "type": "message_batch_deleted"}
            ),
        }
    )
    async with make_service(rec) as service:
        assert (await service.cancel("msgbatch_01")).processing_status == "canceling"
        assert (await service.delete("msgbatch_01")).id == "msgbatch_01"
    assert rec.requests[0].content == b""


# --- listing ----------------------------------------------------------------------------------------------

ALL = [f"msgbatch_{i:02}" for i in range(7)]  # newest first


def list_route(req: httpx.Request) -> httpx.Response:
    """A list endpoint over ALL with the API's cursor semantics."""
    params = req.url.params
    limit = int(params.get("limit", "20"))
    if "after_id" in params:
        start = ALL.index(params["after_id"]) + 1
        data = ALL[start : start + limit]
        has_more = start + limit < len(ALL)
    elif "before_id" in params:
        end = ALL.index(params["before_id"])
        data = ALL[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        data, has_more = ALL[:limit], limit < len(ALL)
    return json_response(
        {
            "data": [batch_json(i) for i in data],
            "has_more": has_more,
            "first_id": data[0] if data else None,
            "last_id": data[-1] if data else None,
        }
    )


async def test_list_walks_every_page_towards_older(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = FakeAPI({("GET", "/v1/messages/batches"): list_route})
    async with make_service(rec) as service:
        ids = [b.id async for b in service.list(limit=2)]
    assert ids == ALL
    assert [dict(r.url.params) for r in rec.requests] == [
        {"limit": "2"},
        {"limit": "2", "after_id": "msgbatch_01"},
        {"limit": "2", "after_id": "msgbatch_03"},
        {"limit": "2", "after_id": "msgbatch_05"},
    ]


async def test_list_walks_towards_newer_with_before_id(
    make_service: Callable[..., BatchServiceAsync],
) -> None:
    rec = FakeAPI({("GET", "/v1/messages/batches"): list_route})
    async with make_service(rec) as service:
        pages = [
            [b.id for b in page.data] async for page in service.list(limit=2, before_id="msgbatch_06").pages()
        ]
    assert pages == [
        ["msgbatch_04", "msgbatch_05"],
        ["msgbatch_02", "msgbatch_03"],
        ["msgbatch_00", "msgbatch_01"],
    ]
    assert rec.requests[1].url.params["before_id"] == "msgbatch_04"


async def test_await_list_and_list_page_give_one_page(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = FakeAPI({("GET", "/v1/messages/batches"): list_route})
    async with make_service(rec) as service:
        page = await service.list(limit=3)
        same = await service.list_page(limit=3)
    assert [b.id for b in page.data] == ALL[:3] == [b.id for b in same.data]
    assert page.has_more and len(rec.requests) == 2


async def test_list_stops_on_an_empty_page_even_if_has_more(
    make_service: Callable[..., BatchServiceAsync],
) -> None:
    rec = FakeAPI(
        {
            ("GET", "/v1/messages/batches"): json_response(
                {"data": [], "has_more": True, "first_id": None, "last_id": None}
            )
        }
    )
    async with make_service(rec) as service:
        assert [b async for b in service.list()] == []
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    "kwargs", [{"before_id": "a", "after_id": "b"}, {"limit": 0}, {"limit": 1001}, {"limit": True}]
)
async def test_bad_list_arguments(
    kwargs: dict[str, Any], make_service: Callable[..., BatchServiceAsync]
) -> None:
    async with make_service(FakeAPI({})) as service:
        with pytest.raises(InvalidInputError):
            service.list(**kwargs)
        with pytest.raises(InvalidInputError):
            await service.list_page(**kwargs)


# --- results ----------------------------------------------------------------------------------------------


RESULTS_ID = {"request-id": "req_results_1"}


def results_routes(batch: dict[str, Any], body: Any) -> FakeAPI:
    return FakeAPI(
        {
            ("GET", f"/v1/messages/batches/{batch['id']}"): json_response(batch),
            ("GET", f"/v1/messages/batches/{batch['id']}/results"): body,
        }
    )


async def test_results_lines_and_streaming(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = results_routes(batch_json(status="ended"), httpx.Response(200, content=SUCCEEDED + CANCELED))
    async with make_service(rec) as service:
        assert [line async for line in service.results_lines("msgbatch_01")] == [SUCCEEDED, CANCELED]
        parsed = [r async for r in service.results_streaming("msgbatch_01")]
    assert [r.custom_id for r in parsed] == ["a", "b"]
    assert isinstance(parsed[0].result, MessageBatchSucceededResult)
    results_request = rec.requests[1]
    assert results_request.headers["x-api-key"] == API_KEY  # same origin as base_url


async def test_results_of_a_retrieved_batch_skip_the_retrieve(
    make_service: Callable[..., BatchServiceAsync],
) -> None:
    from airflow_batches.api import MessageBatch

    batch = MessageBatch.model_validate(batch_json(status="ended"))
    rec = results_routes(batch_json(status="ended"), httpx.Response(200, content=CANCELED))
    async with make_service(rec) as service:
        assert [line async for line in service.results_lines("msgbatch_01", batch=batch)] == [CANCELED]
        with pytest.raises(InvalidInputError, match="must match"):
            [line async for line in service.results_lines("msgbatch_02", batch=batch)]
    assert [r.url.path for r in rec.requests] == ["/v1/messages/batches/msgbatch_01/results"]


@pytest.mark.parametrize("status", ["in_progress", "canceling"])
async def test_results_before_the_end(status: str, make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = results_routes(batch_json(status=status), None)
    async with make_service(rec) as service:
        with pytest.raises(BatchNotEndedError, match=status):
            [line async for line in service.results_lines("msgbatch_01")]
    assert len(rec.requests) == 1


async def test_results_of_an_archived_batch(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = results_routes(batch_json(status="ended", archived_at="2024-09-18T00:00:00Z"), None)
    async with make_service(rec) as service:
        with pytest.raises(ResultsArchivedError, match="2024-09-18"):
            [line async for line in service.results_lines("msgbatch_01")]
    assert len(rec.requests) == 1


async def test_ended_without_results_url(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = results_routes(batch_json(status="ended", results_url=None), None)
    async with make_service(rec) as service:
        with pytest.raises(BatchAPIError, match="no results_url"):
            [line async for line in service.results_lines("msgbatch_01")]


CANONICAL = "https://gw.example/p/v1/messages/batches/msgbatch_01/results"


@pytest.mark.parametrize(
    ("url", "fetched"),
    [
        # Not under the base URL (behind a gateway results_url names the API's host): the canonical path.
        ("https://evil.example/v1/messages/batches/msgbatch_01/results", CANONICAL),
        ("http://api.anthropic.com/v1/messages/batches/msgbatch_01/results", CANONICAL),  # other scheme
        ("https://api.anthropic.com:8443/v1/messages/batches/msgbatch_01/results", CANONICAL),  # other port
        ("//evil.example/x", CANONICAL),  # scheme-relative: another host
        ("https://gw.example/v1/messages/batches/msgbatch_01/results", CANONICAL),  # outside the base path
        # Under the base URL: as given.
        (CANONICAL + "?signed=1", CANONICAL + "?signed=1"),
    ],
)
async def test_results_come_from_results_url_only_under_the_base_url_else_from_the_canonical_path(
    url: str, fetched: str, make_service: Callable[..., BatchServiceAsync]
) -> None:
    rec = FakeAPI(
        {
            ("GET", "/p/v1/messages/batches/msgbatch_01"): json_response(
                batch_json(status="ended", results_url=url)
            ),
            ("GET", "/p/v1/messages/batches/msgbatch_01/results"): httpx.Response(200, content=CANCELED),
        }
    )
    async with make_service(rec, base_url="https://gw.example/p") as service:
        assert [line async for line in service.results_lines("msgbatch_01")] == [CANCELED]
    assert [str(r.url) for r in rec.requests] == [
        "https://gw.example/p/v1/messages/batches/msgbatch_01",
        fetched,
    ]
    assert rec.requests[1].headers["x-api-key"] == API_KEY


async def test_unparseable_results_url_is_refused(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = results_routes(
        batch_json(status="ended", results_url="https://api.anthropic.com/\x00/results"), None
    )
    async with make_service(rec) as service:
        with pytest.raises(UnsafeURLError, match="not a usable URL"):
            [line async for line in service.results_lines("msgbatch_01")]
    assert len(rec.requests) == 1  # only the retrieve


async def test_relative_results_url_is_joined_to_base_url(
    make_service: Callable[..., BatchServiceAsync],
) -> None:
    rec = FakeAPI(
        {
            ("GET", "/p/v1/messages/batches/msgbatch_01"): json_response(
                batch_json(status="ended", results_url="/v1/messages/batches/msgbatch_01/results")
            ),
            ("GET", "/p/v1/messages/batches/msgbatch_01/results"): httpx.Response(200, content=CANCELED),
        }
    )
    async with make_service(rec, base_url="https://gw.example/p") as service:
        assert [line async for line in service.results_lines("msgbatch_01")] == [CANCELED]


class BrokenStream(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield CANCELED + CANCELED[:10]
        raise httpx.ReadError("connection reset by peer")


async def test_connection_dropped_mid_stream(make_service: Callable[..., BatchServiceAsync]) -> None:
    broken = httpx.Response(200, stream=BrokenStream(), headers=RESULTS_ID)
    rec = results_routes(batch_json(status="ended"), broken)
    got: list[bytes] = []
    async with make_service(rec) as service:
        with pytest.raises(ResultsStreamError, match="broke after") as info:
            async for line in service.results_lines("msgbatch_01"):
                got.append(line)
    assert got == [CANCELED]
    assert "ReadError: connection reset by peer" in str(info.value)
    assert info.value.request_id == "req_results_1" and "[request-id: req_results_1]" in str(info.value)


async def test_stream_cut_at_the_end_without_newline(make_service: Callable[..., BatchServiceAsync]) -> None:
    cut = httpx.Response(200, content=CANCELED + CANCELED[:-1], headers=RESULTS_ID)
    rec = results_routes(batch_json(status="ended"), cut)
    async with make_service(rec) as service:
        with pytest.raises(ResultsStreamError, match="middle of line 2") as info:
            [line async for line in service.results_lines("msgbatch_01")]
    assert "without a final newline" in str(info.value) and "[request-id: req_results_1]" in str(info.value)


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (b"not json at all\n", "line 2 of batch msgbatch_01 is not a result (Invalid JSON"),
        (b'{"custom_id":"c"}\n', "line 2 of batch msgbatch_01 is not a result (result: Field required"),
        (b'{"custom_id":"c","result":{"type":"succeeded"}}\n', "(result.succeeded.message: Field required"),
    ],
)
async def test_a_line_that_is_not_a_result(
    bad: bytes, expected: str, make_service: Callable[..., BatchServiceAsync]
) -> None:
    body = httpx.Response(200, content=CANCELED + bad, headers=RESULTS_ID)
    rec = results_routes(batch_json(status="ended"), body)
    async with make_service(rec) as service:
        with pytest.raises(ResultsStreamError) as info:
            [r async for r in service.results_streaming("msgbatch_01")]
    message = str(info.value)
    assert expected in message and bad[:10].decode() in message
    assert message.endswith("[request-id: req_results_1]")
    assert (info.value.line, info.value.request_id, info.value.batch_id) == (
        2,
        "req_results_1",
        "msgbatch_01",
    )


async def test_an_unknown_result_type_is_kept_not_an_error(
    make_service: Callable[..., BatchServiceAsync],
) -> None:
    future = b'{"custom_id":"c","result":{"type":"paused","until":"tomorrow"}}\n'
    rec = results_routes(batch_json(status="ended"), httpx.Response(200, content=CANCELED + future))
    async with make_service(rec) as service:
        parsed = [r async for r in service.results_streaming("msgbatch_01")]
    assert isinstance(parsed[1].result, MessageBatchUnknownResult)
    assert (parsed[1].custom_id, parsed[1].result.type) == ("c", "paused")
    assert parsed[1].result.model_extra == {"until": "tomorrow"}


async def test_results_error_status_is_mapped(make_service: Callable[..., BatchServiceAsync]) -> None:
    body = {"type": "error", "error": {"type": "not_found_error", "message": "gone"}}
    rec = results_routes(batch_json(status="ended"), json_response(body, status=404))
    async with make_service(rec) as service:
        with pytest.raises(NotFoundError, match="gone"):
            [line async for line in service.results_lines("msgbatch_01")]


# --- create input -----------------------------------------------------------------------------------------


async def test_invalid_requests_send_nothing(make_service: Callable[..., BatchServiceAsync]) -> None:
    rec = FakeAPI({})
    async with make_service(rec) as service:
        with pytest.raises(RequestValidationError) as info:
            await service.create([request("a", max_tokens=0), request("a")])
    assert len(info.value.problems) == 2
    assert rec.requests == []


async def test_create_fills_default_model_and_cleans_its_temp_files(
    make_service: Callable[..., BatchServiceAsync], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    params = request("a")["params"]
    del params["model"]
    rec = FakeAPI({("POST", "/v1/messages/batches"): json_response(batch_json())})
    async with make_service(rec) as service:
        await service.create([{"custom_id": "a", "params": params}], default_model="claude-y")
    sent = rec.requests[0]
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content)["requests"][0]["params"]["model"] == "claude-y"
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test assertion, not I/O on the loop


async def test_create_streams_a_spooled_batch_with_its_length(
    make_service: Callable[..., BatchServiceAsync], tmp_path: Path
) -> None:
    [spooled] = spool_batches([request(f"r{i}", system="z" * 3000) for i in range(800)], spool_dir=tmp_path)
    seen: list[tuple[str, bytes]] = []

    def create(req: httpx.Request) -> httpx.Response:
        seen.append((req.headers["content-length"], req.read()))
        return json_response(batch_json())

    async with make_service(FakeAPI({("POST", "/v1/messages/batches"): create})) as service:
        await service.create(spooled)
    assert seen == [(str(spooled.nbytes), spooled.path.read_bytes())]
    assert "transfer-encoding" not in seen[0]
    assert spooled.path.exists()  # the caller's spool is the caller's to clean up
    spooled.cleanup()


async def test_create_refuses_input_that_needs_two_batches(
    make_service: Callable[..., BatchServiceAsync], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rec = FakeAPI({})
    tiny = {"custom_id": "", "params": {"model": "m", "max_tokens": 1, "messages": [1]}}
    async with make_service(rec) as service:
        with pytest.raises(RequestValidationError, match="do not fit into one batch") as info:
            await service.create({**tiny, "custom_id": f"r{i}"} for i in range(100_001))
    assert "spool_batches" in str(info.value)
    assert rec.requests == []
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test assertion, not I/O on the loop


# --- the key stays secret ---------------------------------------------------------------------------------


async def test_key_never_in_repr_errors_or_logs(
    make_service: Callable[..., BatchServiceAsync], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = iter(
        [
            httpx.Response(
                429,
                json={
                    "type": "error",
                    "error": {"type": "rate_limit_error", "message": f"slow down {API_KEY}"},
                },
            ),
            httpx.Response(401, text=f"<html>bad key {API_KEY}</html>"),
        ]
    )

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("msgbatch_02"):
            raise httpx.ConnectError(f"cannot connect; headers were {req.headers!r}", request=req)
        return next(answers)

    texts: list[str] = []
    async with make_service(handler, max_retries=1) as service:
        texts += [repr(service), str(service), repr(service.__dict__)]
        for batch_id in ("msgbatch_01", "msgbatch_02"):
            with pytest.raises(BatchAPIError) as info:
                await service.retrieve(batch_id)
            error: BaseException | None = info.value
            while error is not None:
                texts += [str(error), repr(error), repr(getattr(error, "body", None))]
                error = error.__cause__
    assert isinstance(info.value, APIConnectionError)
    texts += [record.getMessage() for record in caplog.records]
    assert any("retry 1 of 1" in t for t in texts)  # the retry was logged
    leaks = [t for t in texts if API_KEY in t]
    assert leaks == []


@pytest.mark.parametrize("method", ["results_lines", "results_streaming"])
async def test_stopping_results_early_closes_every_inner_generator(
    method: str, make_service: Callable[..., BatchServiceAsync]
) -> None:
    """An async generator garbage-collected unclosed is handed to the loop's finalizer hook, which schedules
    its aclose() as a task: at loop close that is "Task was destroyed but it is pending!" in a task log."""
    left_to_the_loop: list[str] = []
    hooks = sys.get_asyncgen_hooks()

    def finalizer(agen: Any) -> None:
        left_to_the_loop.append(agen.__qualname__)
        if hooks.finalizer is not None:
            hooks.finalizer(agen)

    rec = results_routes(batch_json(status="ended"), httpx.Response(200, content=SUCCEEDED + CANCELED))
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        async with make_service(rec) as service:
            stream = getattr(service, method)("msgbatch_01")
            await anext(stream)
            await stream.aclose()
            del stream
            gc.collect()
    finally:
        sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=hooks.finalizer)
    assert left_to_the_loop == []
