"""Connections of the official provider's ``anthropic`` type against the emulator over loopback."""

from __future__ import annotations

import json

import pytest

from airflow_batches.emulator.testing import RunningEmulator, echo_request, run_emulator
from airflow_batches.hooks import BatchHook


def test_a_claude_platform_on_aws_connection_with_an_api_key_creates_and_reads_batches(
    module_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {
        "conn_type": "anthropic",
        "password": module_emulator.api_key,
        "extra": {
            "platform": "aws",
            "aws_region": "us-east-1",
            "model": "claude-haiku-4-5",
            # The regional endpoint replaced by the emulator, as the official provider allows.
            "anthropic_client_kwargs": {"workspace_id": "wrkspc_etl", "base_url": module_emulator.base_url},
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    hook = BatchHook()
    assert hook.default_model == "claude-haiku-4-5"
    batch = hook.create([echo_request("a", "hello")])
    assert hook.retrieve(batch.id).request_counts.succeeded == 1
    assert module_emulator.stats()["batches_created"] == 1


def test_client_kwargs_base_url_and_api_key_win_over_host_and_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's order, on real requests: the emulator requires the kwargs' key, and the host names a
    port nothing listens on; our own ``max_retries`` extra wins over the kwargs' one."""
    with run_emulator(api_key="sk-in-kwargs", processing_seconds=0) as emulator:
        conn = {
            "conn_type": "anthropic",
            "host": "http://127.0.0.1:9",
            "password": "sk-in-password",
            "extra": {
                "max_retries": 0,
                "anthropic_client_kwargs": {
                    "base_url": emulator.base_url,
                    "api_key": "sk-in-kwargs",
                    "max_retries": 5,
                },
            },
        }
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
        hook = BatchHook()
        assert hook.get_settings().max_retries == 0
        batch = hook.create([echo_request("a", "hello")])
        assert hook.retrieve(batch.id).id == batch.id
        assert emulator.stats()["batches_created"] == 1
