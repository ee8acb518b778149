"""BatchHook's sync facade and test_connection against the real emulator over loopback sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_batches.api import AuthenticationError, NotFoundError
from airflow_batches.emulator.testing import RunningEmulator, run_emulator
from airflow_batches.hooks import BatchHook

REQUIRED_KEY = "sk-ant-emulator-required-key-5150"


def requests(count: int, prefix: str = "r", **params: Any) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"{prefix}{n}",
            "params": {
                "model": "claude-emulated",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}],
                **params,
            },
        }
        for n in range(count)
    ]


def use(
    monkeypatch: pytest.MonkeyPatch, base_url: str, key: str, conn_type: str = "anthropic_batches"
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT",
        json.dumps({"conn_type": conn_type, "host": base_url, "password": key}),
    )


@pytest.fixture
def keyed_emulator() -> Iterator[RunningEmulator]:
    with run_emulator(api_key=REQUIRED_KEY, processing_seconds=0) as running:
        yield running


@pytest.mark.parametrize("conn_type", ["anthropic_batches", "anthropic"])
def test_full_cycle_through_the_facade(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, conn_type: str
) -> None:
    use(monkeypatch, emulator.base_url, emulator.api_key, conn_type)
    hook = BatchHook()
    created = hook.create(requests(3))
    assert created.processing_status == "in_progress" and created.request_counts.processing == 3
    ended = hook.retrieve(created.id)
    assert ended.processing_status == "ended" and ended.request_counts.succeeded == 3
    assert [b.id for b in hook.list_batches(limit=5)] == [created.id]
    assert hook.delete(created.id).id == created.id
    with pytest.raises(NotFoundError):
        hook.retrieve(created.id)


def test_cancel_and_list_across_pages(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.configure(processing_seconds=3600)
    use(monkeypatch, emulator.base_url, emulator.api_key)
    hook = BatchHook()
    ids = [hook.create(requests(1, prefix=f"b{n}-")).id for n in range(3)]
    assert hook.cancel(ids[0]).processing_status == "canceling"
    listed = hook.list_batches(limit=None)
    assert sorted(b.id for b in listed) == sorted(ids)
    assert len(hook.list_batches(limit=2)) == 2


def test_test_connection_succeeds_against_the_emulator(
    keyed_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, keyed_emulator.base_url, REQUIRED_KEY, "anthropic")
    ok, message = BatchHook().test_connection()
    assert ok and keyed_emulator.base_url in message


def test_test_connection_reports_a_wrong_key_without_showing_it(
    keyed_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-ant-wrong-key-should-never-be-shown-0000"
    use(monkeypatch, keyed_emulator.base_url, wrong)
    ok, message = BatchHook().test_connection()
    assert not ok and "rejected" in message and "HTTP 401" in message
    assert wrong not in message and REQUIRED_KEY not in message
    with pytest.raises(AuthenticationError) as info:
        BatchHook().retrieve("msgbatch_x")
    assert wrong not in str(info.value)


def test_test_connection_reports_nothing_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT",
        json.dumps(
            {
                "conn_type": "anthropic_batches",
                "host": f"http://127.0.0.1:{port}",
                "password": "k",
                "extra": {"max_retries": 0},
            }
        ),
    )
    ok, message = BatchHook().test_connection()
    assert not ok and "Could not reach" in message and str(port) in message
