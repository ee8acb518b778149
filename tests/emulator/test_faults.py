"""Fault injection: forced and random failures with retry headers, cut, short, duplicated and slow results,
latency."""

from __future__ import annotations

import email.utils
import math
import time

import httpx
import pytest

from airflow_batches.emulator.testing import EmulatorAdminError, RunningEmulator, run_emulator


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(429, "rate_limit_error"), (500, "api_error"), (504, "timeout_error"), (529, "overloaded_error")],
)
def test_fail_first_answers_exactly_n_requests_with_the_status(
    module_emulator: RunningEmulator, api: httpx.Client, status: int, error_type: str
) -> None:
    module_emulator.set_faults(fail_first=2, fail_status=status, retry_after_seconds=1.5)
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
    stats = module_emulator.stats()
    assert stats["faults_injected"] == 2
    assert stats["requests"]["list"] == 3


def test_failed_create_makes_no_batch(module_emulator: RunningEmulator, api: httpx.Client, batches) -> None:
    module_emulator.set_faults(fail_first=1, fail_status=529)
    assert api.post("/v1/messages/batches", json={"requests": [batches.request("a")]}).status_code == 529
    assert module_emulator.stats()["batches_created"] == 0
    batches.create([batches.request("a")])
    assert module_emulator.stats()["batches_created"] == 1


def test_fail_ops_limits_faults_to_some_operations(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    module_emulator.set_faults(fail_first=1, fail_ops=["retrieve"])
    batch_id = batches.create([batches.request("a")])["id"]
    assert api.get("/v1/messages/batches").status_code == 200
    assert api.get(f"/v1/messages/batches/{batch_id}").status_code == 429
    assert api.get(f"/v1/messages/batches/{batch_id}").status_code == 200


def test_should_retry_header_and_no_retry_after(module_emulator: RunningEmulator, api: httpx.Client) -> None:
    module_emulator.set_faults(fail_first=2, should_retry=False, retry_after_seconds=None)
    failed = api.get("/v1/messages/batches")
    assert failed.headers["x-should-retry"] == "false"
    assert "retry-after" not in failed.headers and "retry-after-ms" not in failed.headers
    module_emulator.set_faults(should_retry=True)
    assert api.get("/v1/messages/batches").headers["x-should-retry"] == "true"


def test_retry_after_mode_picks_the_delay_headers(
    module_emulator: RunningEmulator, api: httpx.Client
) -> None:
    module_emulator.set_faults(fail_first=3, retry_after_seconds=1.5, retry_after_mode="seconds")
    seconds = api.get("/v1/messages/batches").headers
    assert seconds["retry-after"] == "2" and "retry-after-ms" not in seconds

    module_emulator.set_faults(retry_after_mode="ms")
    milliseconds = api.get("/v1/messages/batches").headers
    assert milliseconds["retry-after-ms"] == "1500" and "retry-after" not in milliseconds

    module_emulator.set_faults(retry_after_seconds=30, retry_after_mode="date")
    before = time.time()
    dated = api.get("/v1/messages/batches").headers
    after = time.time()
    assert "retry-after-ms" not in dated
    when = email.utils.parsedate_to_datetime(dated["retry-after"]).timestamp()
    # The server's moment lies between before and after; the date is that moment + 30 s, rounded up.
    assert before + 30 <= when <= math.ceil(after + 30)


def test_fail_rate_is_reproducible_with_a_seed(module_emulator: RunningEmulator, api: httpx.Client) -> None:
    def pattern() -> list[int]:
        return [api.get("/v1/messages/batches").status_code for _ in range(40)]

    module_emulator.set_faults(fail_rate=0.5, seed=7)
    first = pattern()
    module_emulator.set_faults(seed=7)
    assert pattern() == first
    assert set(first) == {200, 429}, "about half fail"
    module_emulator.set_faults(fail_rate=1.0)
    assert set(pattern()) == {429}


def test_fault_settings_are_validated_and_admin_is_never_faulted(module_emulator: RunningEmulator) -> None:
    with pytest.raises(EmulatorAdminError, match="fail_rate: Input should be less than or equal to 1"):
        module_emulator.set_faults(fail_rate=2)
    with pytest.raises(EmulatorAdminError, match="fail_status"):
        module_emulator.set_faults(fail_status=418)
    with pytest.raises(EmulatorAdminError, match="retry_after_mode"):
        module_emulator.set_faults(retry_after_mode="minutes")
    with pytest.raises(EmulatorAdminError, match="results_drop_lines: Input should be greater than or equal"):
        module_emulator.set_faults(results_drop_lines=-1)
    with pytest.raises(EmulatorAdminError, match="no_such_knob"):
        module_emulator.set_faults(no_such_knob=1)
    module_emulator.set_faults(fail_rate=1.0)
    assert module_emulator.stats()["faults_injected"] == 0
    assert module_emulator.admin("GET", "faults")["fail_rate"] == 1.0


def test_cut_results_stream_is_really_cut(module_emulator: RunningEmulator, batches) -> None:
    batch_id = batches.create([batches.request(f"r{i}", "y" * 200) for i in range(50)])["id"]
    whole = batches.results(batch_id).content
    assert len(whole) > 10_000
    module_emulator.set_faults(cut_results_after=5_000, cut_results_times=1)
    received = bytearray()
    with (
        httpx.Client(headers=module_emulator.headers) as client,
        client.stream(
            "GET", f"{module_emulator.base_url}/v1/messages/batches/{batch_id}/results"
        ) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk
    assert bytes(received) == whole[:5_000], "exactly the first 5,000 bytes arrive, then the connection drops"
    assert module_emulator.stats()["results_cut"] == 1
    assert batches.results(batch_id).content == whole, "cut_results_times=1: the next download is whole"
    assert module_emulator.admin("GET", "faults")["cut_results_remaining"] == 0


def test_cut_beyond_the_body_sends_it_whole(module_emulator: RunningEmulator, batches) -> None:
    batch_id = batches.create([batches.request("a")])["id"]
    module_emulator.set_faults(cut_results_after=1_000_000)
    assert batches.results(batch_id).content.endswith(b"\n")
    assert module_emulator.stats()["results_cut"] == 0


def test_dropped_lines_make_a_short_body_that_ends_at_a_line_boundary(
    module_emulator: RunningEmulator, batches
) -> None:
    batch_id = batches.create_n(5)["id"]
    whole = batches.results(batch_id).content.splitlines(keepends=True)
    module_emulator.set_faults(results_drop_lines=2)
    assert batches.results(batch_id).content == b"".join(whole[:3]), "the last two lines are left out"
    assert batches.get(batch_id)["request_counts"]["succeeded"] == 5, "the batch still counts five"
    module_emulator.set_faults(results_drop_lines=9)
    assert batches.results(batch_id).content == b""
    module_emulator.set_faults(results_drop_lines=0)
    assert batches.results(batch_id).content == b"".join(whole)


def test_duplicated_line_sends_the_first_line_twice(module_emulator: RunningEmulator, batches) -> None:
    batch_id = batches.create_n(3)["id"]
    whole = batches.results(batch_id).content.splitlines(keepends=True)
    module_emulator.set_faults(results_duplicate_line=True)
    assert batches.results(batch_id).content == b"".join([whole[0], *whole])


def test_content_faults_and_retry_after_mode_from_the_command_line() -> None:
    with run_emulator(results_drop_lines=1, results_duplicate_line=True, retry_after_mode="date") as running:
        faults = running.admin("GET", "faults")
    assert faults["results_drop_lines"] == 1
    assert faults["results_duplicate_line"] is True
    assert faults["retry_after_mode"] == "date"


def test_slow_results_pause_before_each_line(module_emulator: RunningEmulator, batches) -> None:
    batch_id = batches.create([batches.request(f"r{i}") for i in range(4)])["id"]
    module_emulator.set_faults(slow_results_ms=150)
    started = time.monotonic()
    response = batches.results(batch_id)
    assert response.content.count(b"\n") == 4
    assert time.monotonic() - started >= 4 * 0.15, "four pauses of 150 ms happened"


def test_latency_is_added_to_api_responses(module_emulator: RunningEmulator, api: httpx.Client) -> None:
    module_emulator.set_faults(latency_ms=300)
    started = time.monotonic()
    assert api.get("/v1/messages/batches").status_code == 200
    assert time.monotonic() - started >= 0.3
