"""Fault injection: forced and random failures with retry headers, cut and slow results, latency."""

from __future__ import annotations

import time

import httpx
import pytest

from airflow_batches.emulator.testing import EmulatorAdminError, RunningEmulator


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(429, "rate_limit_error"), (500, "api_error"), (504, "timeout_error"), (529, "overloaded_error")],
)
def test_fail_first_answers_exactly_n_requests_with_the_status(
    emu: RunningEmulator, api: httpx.Client, status: int, error_type: str
) -> None:
    emu.set_faults(fail_first=2, fail_status=status, retry_after_seconds=1.5)
    for _ in range(2):
        failed = api.get("/v1/messages/batches")
        assert failed.status_code == status
        assert failed.json()["type"] == "error"
        assert failed.json()["error"]["type"] == error_type
        assert failed.json()["request_id"] == failed.headers["request-id"]
        assert failed.headers["retry-after"] == "2", "whole seconds, rounded up"
        assert failed.headers["retry-after-ms"] == "1500"
        assert "x-should-retry" not in failed.headers
    assert api.get("/v1/messages/batches").status_code == 200
    stats = emu.stats()
    assert stats["faults_injected"] == 2
    assert stats["requests"]["list"] == 3


def test_failed_create_makes_no_batch(emu: RunningEmulator, api: httpx.Client, batches) -> None:
    emu.set_faults(fail_first=1, fail_status=529)
    assert api.post("/v1/messages/batches", json={"requests": [batches.request("a")]}).status_code == 529
    assert emu.stats()["batches_created"] == 0
    batches.create([batches.request("a")])
    assert emu.stats()["batches_created"] == 1


def test_fail_ops_limits_faults_to_some_operations(emu: RunningEmulator, api: httpx.Client, batches) -> None:
    emu.set_faults(fail_first=1, fail_ops=["retrieve"])
    batch_id = batches.create([batches.request("a")])["id"]
    assert api.get("/v1/messages/batches").status_code == 200
    assert api.get(f"/v1/messages/batches/{batch_id}").status_code == 429
    assert api.get(f"/v1/messages/batches/{batch_id}").status_code == 200


def test_should_retry_header_and_no_retry_after(emu: RunningEmulator, api: httpx.Client) -> None:
    emu.set_faults(fail_first=2, should_retry=False, retry_after_seconds=None)
    failed = api.get("/v1/messages/batches")
    assert failed.headers["x-should-retry"] == "false"
    assert "retry-after" not in failed.headers and "retry-after-ms" not in failed.headers
    emu.set_faults(should_retry=True)
    assert api.get("/v1/messages/batches").headers["x-should-retry"] == "true"


def test_fail_rate_is_reproducible_with_a_seed(emu: RunningEmulator, api: httpx.Client) -> None:
    def pattern() -> list[int]:
        return [api.get("/v1/messages/batches").status_code for _ in range(40)]

    emu.set_faults(fail_rate=0.5, seed=7)
    first = pattern()
    emu.set_faults(seed=7)
    assert pattern() == first
    assert set(first) == {200, 429}, "about half fail"
    emu.set_faults(fail_rate=1.0)
    assert set(pattern()) == {429}


def test_fault_settings_are_validated_and_admin_is_never_faulted(emu: RunningEmulator) -> None:
    with pytest.raises(EmulatorAdminError, match="fail_rate: Input should be less than or equal to 1"):
        emu.set_faults(fail_rate=2)
    with pytest.raises(EmulatorAdminError, match="fail_status"):
        emu.set_faults(fail_status=418)
    with pytest.raises(EmulatorAdminError, match="no_such_knob"):
        emu.set_faults(no_such_knob=1)
    emu.set_faults(fail_rate=1.0)
    assert emu.stats()["faults_injected"] == 0
    assert emu.admin("GET", "faults")["fail_rate"] == 1.0


def test_cut_results_stream_is_really_cut(emu: RunningEmulator, batches) -> None:
    batch_id = batches.create([batches.request(f"r{i}", "y" * 200) for i in range(50)])["id"]
    whole = batches.results(batch_id).content
    assert len(whole) > 10_000
    emu.set_faults(cut_results_after=5_000, cut_results_times=1)
    received = bytearray()
    with (
        httpx.Client(headers=emu.headers) as client,
        client.stream("GET", f"{emu.base_url}/v1/messages/batches/{batch_id}/results") as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk
    assert bytes(received) == whole[:5_000], "exactly the first 5,000 bytes arrive, then the connection drops"
    assert emu.stats()["results_cut"] == 1
    assert batches.results(batch_id).content == whole, "cut_results_times=1: the next download is whole"
    assert emu.admin("GET", "faults")["cut_results_remaining"] == 0


def test_cut_beyond_the_body_sends_it_whole(emu: RunningEmulator, batches) -> None:
    batch_id = batches.create([batches.request("a")])["id"]
    emu.set_faults(cut_results_after=1_000_000)
    assert batches.results(batch_id).content.endswith(b"\n")
    assert emu.stats()["results_cut"] == 0


def test_slow_results_pause_before_each_line(emu: RunningEmulator, batches) -> None:
    batch_id = batches.create([batches.request(f"r{i}") for i in range(4)])["id"]
    emu.set_faults(slow_results_ms=150)
    started = time.monotonic()
    response = batches.results(batch_id)
    assert response.content.count(b"\n") == 4
    assert time.monotonic() - started >= 4 * 0.15, "four pauses of 150 ms happened"


def test_latency_is_added_to_api_responses(emu: RunningEmulator, api: httpx.Client) -> None:
    emu.set_faults(latency_ms=300)
    started = time.monotonic()
    assert api.get("/v1/messages/batches").status_code == 200
    assert time.monotonic() - started >= 0.3
