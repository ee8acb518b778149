"""Shared pieces of the results integration tests: an emulator per module, the hook's connection to it,
and batches with big echo results created through the real client."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.testing import RunningEmulator, run_emulator
from airflow_batches.hooks import BatchHook


@pytest.fixture(scope="module")
def results_emulator() -> Iterator[RunningEmulator]:
    with run_emulator(processing_seconds=0) as running:
        yield running


@pytest.fixture
def hook(results_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> BatchHook:
    results_emulator.set_faults(cut_results_after=None, results_drop_lines=0, results_duplicate_line=False)
    results_emulator.configure(processing_seconds=0)
    conn = {"conn_type": "anthropic", "host": results_emulator.base_url, "password": results_emulator.api_key}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    return BatchHook()


def requests_for(
    prefix: str, n: int, *, text_bytes: int = 100, errored: int = 0, filler: str = "x"
) -> Iterator[dict[str, Any]]:
    """``n`` requests whose echoed replies are about ``text_bytes`` of UTF-8 long, ``filler`` repeated; the
    first ``errored`` fail."""
    for i in range(n):
        text = f"{prefix} {i} " + filler * (text_bytes // len(filler.encode()))
        params: dict[str, Any] = {
            "model": "claude-emulated",
            "max_tokens": text_bytes // 2 + 100,
            "messages": [{"role": "user", "content": text}],
        }
        if i < errored:
            params["metadata"] = {"emulator": "error"}
        yield {"custom_id": f"{prefix}-{i}", "params": params}


def ended_batch(hook: BatchHook, prefix: str, n: int, **kwargs: Any) -> str:
    batch = hook.create(requests_for(prefix, n, **kwargs))
    assert hook.retrieve(batch.id).processing_status == "ended"
    return batch.id


def raw_results_sha256(emulator: RunningEmulator, batch_id: str) -> tuple[str, int]:
    """What the API sends for the batch's results, read with plain httpx: the reference for byte-exactness."""
    digest = hashlib.sha256()
    size = 0
    url = f"{emulator.base_url}/v1/messages/batches/{batch_id}/results"
    with httpx.stream("GET", url, headers=emulator.headers, timeout=60) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
