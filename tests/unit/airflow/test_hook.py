"""BatchHook: connections from AIRFLOW_CONN_* (both connection types), secret masking, the async lookup,
the shared pool, the sync facade on private loops, test_connection and the land_results delegate.

HTTP goes to ``httpx.MockTransport`` here; tests against the real emulator are in tests/integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException
from fake_api import FakeAPI, error_response

from airflow_batches.api import BatchServiceAsync
from airflow_batches.api.tls import default_ssl_context
from airflow_batches.errors import ConnectionSettingsError
from airflow_batches.hooks import BatchHook, loop_cache
from airflow_batches.hooks import batch as hook_module
from airflow_batches.hooks.client_pool import aclose_shared_clients, shared_client
from airflow_batches.hooks.sync_runner import run_sync

KEY = "sk-ant-hook-unit-secret-4242"
BATCH_JSON = {
    "id": "msgbatch_01",
    "type": "message_batch",
    "processing_status": "in_progress",
    "request_counts": {"processing": 1, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
    "created_at": "2026-03-01T12:00:00Z",
    "expires_at": "2026-03-02T12:00:00Z",
    "ended_at": None,
    "cancel_initiated_at": None,
    "archived_at": None,
    "results_url": None,
}


def set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str = "anthropic_default", **fields: Any) -> None:
    fields.setdefault("conn_type", "anthropic_batches")
    fields.setdefault("password", KEY)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Everything here must work without a metadata database."""
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path}/missing/dir/airflow.db")


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    """Route every service the hook makes through the fake API (unscripted paths: 404)."""
    fake = FakeAPI(default=404)
    monkeypatch.setattr(
        hook_module, "BatchServiceAsync", partial(BatchServiceAsync, transport=fake.transport())
    )
    yield fake


@pytest.mark.parametrize("conn_type", ["anthropic_batches", "anthropic"])
def test_both_connection_types_are_read_the_same_way(monkeypatch: pytest.MonkeyPatch, conn_type: str) -> None:
    set_conn(
        monkeypatch, conn_type=conn_type, host="gateway.example.com", extra={"timeout": 9, "betas": "b1"}
    )
    settings = BatchHook().get_settings()
    assert settings.base_url == "https://gateway.example.com"
    assert settings.api_key == KEY and settings.timeout == 9.0 and settings.betas == ("b1",)


def test_official_provider_connection_as_documented_works(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, conn_type="anthropic", host="http://127.0.0.1:8000", password="k")
    settings = BatchHook().get_settings()
    assert (settings.base_url, settings.api_key) == ("http://127.0.0.1:8000", "k")


def test_hook_identity_attributes() -> None:
    hook = BatchHook("other_conn")
    assert hook.conn_id == hook.anthropic_conn_id == "other_conn"
    assert (BatchHook.conn_name_attr, BatchHook.default_conn_name) == ("conn_id", "anthropic_default")
    assert (BatchHook.conn_type, BatchHook.hook_name) == ("anthropic_batches", "Anthropic Message Batches")


def test_reading_the_connection_masks_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import redact

    set_conn(monkeypatch, password="sk-ant-only-this-test-masks-it-777")
    BatchHook().get_settings()
    assert "sk-ant-only-this-test-masks-it-777" not in str(redact("key=sk-ant-only-this-test-masks-it-777"))


async def test_async_lookup_masks_the_key_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import redact

    set_conn(monkeypatch, password="sk-ant-async-masked-888")
    await BatchHook().aget_settings()
    assert "sk-ant-async-masked-888" not in str(redact("sk-ant-async-masked-888"))


def test_missing_connection_is_airflows_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NOPE", raising=False)
    with pytest.raises(AirflowNotFoundException):
        BatchHook("nope").get_settings()


def test_unknown_extras_are_warned_about_by_name_only(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    set_conn(monkeypatch, extra={"timout": "30", "max_retries": 1})
    BatchHook().get_settings()
    logged = capfd.readouterr().out
    line = next(text for text in logged.splitlines() if "does not read (typo?): timout" in text)
    assert line.split("timout", 1)[1].lstrip().startswith("[")  # the name only, not its value
    assert KEY not in logged


async def test_async_lookup_never_uses_the_blocking_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Airflow 3.3.2+ the lookup is async all the way; before, the compat layer runs the sync lookup in
    a worker thread (the async one masks secrets with a call that deadlocks a busy loop there): never on the
    event loop itself."""
    set_conn(monkeypatch, host="http://127.0.0.1:1")
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "1")
    from airflow.sdk import Connection

    sync_lookups: list[str] = []
    sync_lookup = BatchHook.get_connection

    def blocking(cls: type[BatchHook], conn_id: str) -> Any:
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop()
            raise AssertionError("sync get_connection called on the event loop")
        sync_lookups.append(threading.current_thread().name)
        return sync_lookup(conn_id)

    monkeypatch.setattr(BatchHook, "get_connection", classmethod(blocking))
    settings = await BatchHook().aget_settings()
    assert settings.base_url == "http://127.0.0.1:1"
    if hasattr(Connection, "aextra_dejson"):  # Airflow 3.3.2+: async all the way
        assert sync_lookups == []
    else:  # one sync lookup, in a worker thread (blocking() fails on the loop's thread)
        assert len(sync_lookups) == 1


async def test_services_of_one_loop_share_one_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, host="http://127.0.0.1:1")
    set_conn(monkeypatch, "second", host="http://127.0.0.1:1", password="sk-ant-another-key")
    made: list[dict[str, Any]] = []

    def recording(**kwargs: Any) -> BatchServiceAsync:
        made.append(kwargs)
        return BatchServiceAsync(**kwargs)

    monkeypatch.setattr(hook_module, "BatchServiceAsync", recording)
    try:
        first = await BatchHook().aget_service()
        assert await BatchHook().aget_service() is first  # one connection: one lookup, one service
        await BatchHook("second").aget_service()
        clients = [kwargs["http_client"] for kwargs in made]
        assert len(made) == 2 and clients[0] is clients[1]  # one base URL: one pool for both keys
        assert [kwargs["api_key"] for kwargs in made] == [KEY, "sk-ant-another-key"]
    finally:
        await aclose_shared_clients()


async def test_hooks_starting_together_look_the_connection_up_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_conn(monkeypatch, host="http://127.0.0.1:1")
    lookups: list[str] = []
    real_lookup = BatchHook._alookup

    async def counted(self: BatchHook) -> Any:
        lookups.append(self.conn_id)
        await asyncio.sleep(0.01)  # under way while the others ask
        return await real_lookup(self)

    monkeypatch.setattr(BatchHook, "_alookup", counted)
    clock = [1000.0]
    monkeypatch.setattr(loop_cache, "_clock", lambda: clock[0])
    try:
        services = await asyncio.gather(*(BatchHook().aget_service() for _ in range(50)))
        assert lookups == ["anthropic_default"] and all(s is services[0] for s in services)
        clock[0] += loop_cache.LOOKUP_TTL_SECONDS + 1  # a minute later a new trigger reads it again
        set_conn(monkeypatch, host="http://127.0.0.1:1", password="sk-ant-rotated-key")
        assert (await BatchHook().aget_settings()).api_key == "sk-ant-rotated-key"
        assert lookups == ["anthropic_default"] * 2
    finally:
        await aclose_shared_clients()


async def test_a_failed_lookup_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_LATER", raising=False)
    with pytest.raises(AirflowNotFoundException):
        await BatchHook("later").aget_service()
    set_conn(monkeypatch, "later", host="http://127.0.0.1:1")
    try:
        assert (await BatchHook("later").aget_settings()).base_url == "http://127.0.0.1:1"
    finally:
        await aclose_shared_clients()


async def test_a_cancelled_hook_does_not_cancel_the_lookup_others_wait_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_conn(monkeypatch, host="http://127.0.0.1:1")
    real_lookup = BatchHook._alookup

    async def slow(self: BatchHook) -> Any:
        await asyncio.sleep(0.05)
        return await real_lookup(self)

    monkeypatch.setattr(BatchHook, "_alookup", slow)
    try:
        cancelled = asyncio.ensure_future(BatchHook().aget_service())
        other = asyncio.ensure_future(BatchHook().aget_service())
        await asyncio.sleep(0.01)
        cancelled.cancel()
        assert (await other).base_url == "http://127.0.0.1:1"
        assert cancelled.cancelled()
    finally:
        await aclose_shared_clients()


async def test_pool_is_per_base_url_and_a_closed_client_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, host="http://127.0.0.1:1")
    set_conn(monkeypatch, "elsewhere", host="http://127.0.0.1:2")
    here, there = BatchHook().get_settings(), BatchHook("elsewhere").get_settings()
    try:
        first = shared_client(here)
        assert shared_client(there) is not first
        await first.aclose()
        assert shared_client(here) is not first and not shared_client(here).is_closed
    finally:
        await aclose_shared_clients()


async def test_every_pool_of_the_shared_client_verifies_with_the_process_tls_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Building a TLS context loads the CA bundle (tens of ms of a blocked loop): the triggerer's first poll
    must not build one per pool."""
    set_conn(monkeypatch, host="https://api.test")
    try:
        transport = shared_client(BatchHook().get_settings())._transport
        contexts = {id(pool._pool._ssl_context) for pool in transport._pools}  # type: ignore[attr-defined]
        assert contexts == {id(default_ssl_context())}
    finally:
        await aclose_shared_clients()


def test_each_event_loop_gets_its_own_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, host="http://127.0.0.1:1")
    settings = BatchHook().get_settings()

    async def client_of_this_loop() -> httpx.AsyncClient:
        client = shared_client(settings)
        assert shared_client(settings) is client
        await aclose_shared_clients()
        return client

    assert asyncio.run(client_of_this_loop()) is not asyncio.run(client_of_this_loop())


def test_sync_facade_works_in_a_thread_without_a_loop(
    monkeypatch: pytest.MonkeyPatch, transport: FakeAPI
) -> None:
    set_conn(monkeypatch, host="http://api.test")
    transport.script("msgbatch_01", BATCH_JSON)
    hook = BatchHook()
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(hook.retrieve("msgbatch_01")))
    thread.start()
    thread.join()
    assert results[0].id == "msgbatch_01"
    assert transport.requests[0].headers["x-api-key"] == KEY


def test_sync_facade_leaves_the_threads_current_loop_alone(
    monkeypatch: pytest.MonkeyPatch, transport: FakeAPI
) -> None:
    set_conn(monkeypatch, host="http://api.test")
    transport.script("msgbatch_01", BATCH_JSON)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        BatchHook().retrieve("msgbatch_01")
        BatchHook().retrieve("msgbatch_01")
        assert asyncio.get_event_loop_policy().get_event_loop() is loop and not loop.is_closed()
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def test_sync_facade_called_from_a_running_loop_still_works(
    monkeypatch: pytest.MonkeyPatch, transport: FakeAPI
) -> None:
    set_conn(monkeypatch, host="http://api.test")
    transport.script("msgbatch_01", BATCH_JSON)
    assert BatchHook().retrieve("msgbatch_01").processing_status == "in_progress"


def test_facade_maps_calls_to_the_api(monkeypatch: pytest.MonkeyPatch, transport: FakeAPI) -> None:
    set_conn(monkeypatch, host="http://api.test/prefix", extra={"anthropic_version": "2026-10-21"})
    canceling = {**BATCH_JSON, "processing_status": "canceling"}
    transport.route("POST", "/prefix/v1/messages/batches/msgbatch_01/cancel", canceling)
    transport.route(
        "DELETE",
        "/prefix/v1/messages/batches/msgbatch_01",
        {"id": "msgbatch_01", "type": "message_batch_deleted"},
    )
    hook = BatchHook()
    assert hook.cancel("msgbatch_01").processing_status == "canceling"
    assert hook.delete("msgbatch_01").type == "message_batch_deleted"
    assert [(r.method, r.url.path) for r in transport.requests] == [
        ("POST", "/prefix/v1/messages/batches/msgbatch_01/cancel"),
        ("DELETE", "/prefix/v1/messages/batches/msgbatch_01"),
    ]
    assert transport.requests[0].headers["anthropic-version"] == "2026-10-21"


def test_list_batches_walks_pages_up_to_limit(monkeypatch: pytest.MonkeyPatch, transport: FakeAPI) -> None:
    set_conn(monkeypatch, host="http://api.test")
    every = [{**BATCH_JSON, "id": f"msgbatch_{n:02d}"} for n in range(7)]

    def page(request: httpx.Request) -> httpx.Response:
        size = int(request.url.params["limit"])
        after = request.url.params.get("after_id")
        start = 0 if after is None else [b["id"] for b in every].index(after) + 1
        data = every[start : start + size]
        return httpx.Response(
            200,
            json={
                "data": data,
                "has_more": start + size < len(every),
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    transport.route("GET", "/v1/messages/batches", page)
    hook = BatchHook()
    assert [b.id for b in hook.list_batches(limit=3)] == ["msgbatch_00", "msgbatch_01", "msgbatch_02"]
    assert len(hook.list_batches(limit=None)) == 7
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        hook.list_batches(limit=0)


def test_create_validates_before_sending(monkeypatch: pytest.MonkeyPatch, transport: FakeAPI) -> None:
    set_conn(monkeypatch, host="http://api.test")
    from airflow_batches.api import RequestValidationError

    with pytest.raises(RequestValidationError, match="nothing was sent"):
        BatchHook().create(
            [{"custom_id": "bad id!", "params": {"model": "m", "max_tokens": 1, "messages": []}}]
        )
    assert transport.requests == []


def test_test_connection_succeeds_with_one_list_request(
    monkeypatch: pytest.MonkeyPatch, transport: FakeAPI
) -> None:
    set_conn(monkeypatch, host="http://api.test")
    transport.route(
        "GET", "/v1/messages/batches", {"data": [], "has_more": False, "first_id": None, "last_id": None}
    )
    ok, message = BatchHook().test_connection()
    assert ok and "http://api.test" in message
    assert len(transport.requests) == 1 and transport.requests[0].url.params["limit"] == "1"


def test_test_connection_reports_a_rejected_key_without_it(
    monkeypatch: pytest.MonkeyPatch, transport: FakeAPI
) -> None:
    set_conn(monkeypatch, host="http://api.test", extra={"max_retries": 0})
    transport.route("GET", "/v1/messages/batches", error_response(401, f"invalid x-api-key {KEY}"))
    ok, message = BatchHook().test_connection()
    assert not ok
    assert "rejected" in message and "password" in message and "req_401" in message
    assert KEY not in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": "ftp://x"}, "not an http(s) URL"),
        ({"host": "http://api.test", "password": ""}, "no API key"),
    ],
)
def test_test_connection_reports_configuration_problems(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], expected: str
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    set_conn(monkeypatch, **fields)
    ok, message = BatchHook().test_connection()
    assert not ok and expected in message


def test_test_connection_reports_an_unreachable_api(
    monkeypatch: pytest.MonkeyPatch, transport: FakeAPI
) -> None:
    set_conn(monkeypatch, host="http://api.test", extra={"max_retries": 0})
    transport.route("GET", "/v1/messages/batches", httpx.ConnectError)
    ok, message = BatchHook().test_connection()
    assert not ok and "Could not reach" in message and "http://api.test" in message


def test_settings_errors_surface_from_the_facade(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, extra={"timeout": "forever"})
    with pytest.raises(ConnectionSettingsError, match="extra 'timeout'"):
        BatchHook().retrieve("msgbatch_01")


def test_land_results_delegates_to_the_results_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_batches.results as results

    calls: list[tuple[Any, ...]] = []

    def fake_land(hook: Any, batch_ref: Any, destination: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append((hook, batch_ref, destination, kwargs))
        return {"batch_ids": ["msgbatch_01"]}

    monkeypatch.setattr(results, "land_results", fake_land)
    hook = BatchHook()
    manifest = hook.land_results("msgbatch_01", "file:///tmp/out", split_by_type=True)
    assert manifest == {"batch_ids": ["msgbatch_01"]}
    assert calls == [(hook, "msgbatch_01", "file:///tmp/out", {"split_by_type": True})]


def test_an_interrupted_sync_call_cleans_up_on_its_own_loop() -> None:
    # Airflow's execution_timeout raises from a SIGALRM handler while the private loop waits; the coroutine
    # must still run its cleanup (here: an await in a finally block, as closing the shared pool does).
    cleaned: list[str] = []

    async def waiting() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0)
            cleaned.append("done")

    def timed_out(signum: int, frame: Any) -> None:
        raise TimeoutError("execution_timeout")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(TimeoutError, match="execution_timeout"):
            run_sync(waiting)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert cleaned == ["done"]


def test_conn_id_is_the_name_and_anthropic_conn_id_its_alias() -> None:
    assert BatchHook().conn_id == "anthropic_default"
    assert BatchHook(conn_id="a").conn_id == "a"
    assert BatchHook(anthropic_conn_id="b").conn_id == "b"
    assert BatchHook(conn_id="c", anthropic_conn_id="c").conn_id == "c"
    with pytest.raises(ValueError, match="alias of conn_id"):
        BatchHook(conn_id="c", anthropic_conn_id="d")
