"""Transient faults: chosen requests fail on their first submission (errored with a type, or expired) and
succeed when submitted again; the choice is a deterministic draw per custom_id."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.testing import EmulatorAdminError, RunningEmulator, run_emulator
from airflow_batches.emulator.transient import draw


def _results(batches: Any, batch_id: str) -> dict[str, dict[str, Any]]:
    response = batches.results(batch_id)
    assert response.status_code == 200, response.text
    return {line["custom_id"]: line["result"] for line in map(json.loads, response.content.splitlines())}


def _expected(seed: int, errored: float, expired: float, custom_ids: list[str]) -> dict[str, str]:
    kinds = {}
    for custom_id in custom_ids:
        value = draw(seed, custom_id)
        kinds[custom_id] = (
            "errored" if value < errored else "expired" if value < errored + expired else "succeeded"
        )
    return kinds


def test_drawn_requests_fail_once_then_succeed_when_resubmitted(
    module_emulator: RunningEmulator, batches
) -> None:
    module_emulator.set_faults(
        transient_errored_rate=0.1,
        transient_expired_rate=0.05,
        transient_error_type="api_error",
        transient_seed=7,
    )
    custom_ids = [f"r{i}" for i in range(400)]
    first = batches.create([batches.request(c, f"text {c}") for c in custom_ids])
    assert batches.get(first["id"])["processing_status"] == "ended", (
        "expired ones end with the batch, not at 24 h"
    )
    results = _results(batches, first["id"])
    expected = _expected(7, 0.1, 0.05, custom_ids)
    assert {c: r["type"] for c, r in results.items()} == expected
    errored = [c for c, kind in expected.items() if kind == "errored"]
    expired = [c for c, kind in expected.items() if kind == "expired"]
    assert 20 <= len(errored) <= 60 and 5 <= len(expired) <= 40, (len(errored), len(expired))
    assert {results[c]["error"]["error"]["type"] for c in errored} == {"api_error"}
    counts = batches.get(first["id"])["request_counts"]
    assert (counts["errored"], counts["expired"]) == (len(errored), len(expired))

    again = batches.create([batches.request(c, f"text {c}") for c in errored + expired])
    assert {r["type"] for r in _results(batches, again["id"]).values()} == {"succeeded"}


def test_the_draw_does_not_depend_on_how_the_input_is_split(
    module_emulator: RunningEmulator, batches
) -> None:
    module_emulator.set_faults(transient_errored_rate=0.3, transient_seed=3)
    custom_ids = [f"s{i}" for i in range(60)]
    kinds: dict[str, str] = {}
    for start in range(0, 60, 7):
        batch = batches.create([batches.request(c) for c in custom_ids[start : start + 7]])
        kinds.update({c: r["type"] for c, r in _results(batches, batch["id"]).items()})
    assert kinds == _expected(3, 0.3, 0.0, custom_ids)
    module_emulator.reset()
    module_emulator.set_faults(transient_errored_rate=0.3, transient_seed=4)
    batch = batches.create([batches.request(c) for c in custom_ids])
    other_seed = {c: r["type"] for c, r in _results(batches, batch["id"]).items()}
    assert other_seed == _expected(4, 0.3, 0.0, custom_ids)
    assert other_seed != kinds, "another seed draws other requests"


def test_reset_forgets_which_requests_failed_once(module_emulator: RunningEmulator, batches) -> None:
    module_emulator.set_faults(transient_errored_rate=1.0)
    assert {r["type"] for r in _results(batches, batches.create([batches.request("a")])["id"]).values()} == {
        "errored"
    }
    module_emulator.reset()
    module_emulator.set_faults(transient_errored_rate=1.0)
    again = _results(batches, batches.create([batches.request("a")])["id"])
    assert again["a"]["type"] == "errored"
    assert again["a"]["error"]["error"]["type"] == "overloaded_error", "the default error type"


def test_per_request_switches_are_left_alone(module_emulator: RunningEmulator, batches) -> None:
    module_emulator.set_faults(transient_expired_rate=1.0)
    batch = batches.create([batches.request("x", metadata={"emulator": "error"}), batches.request("y")])
    results = _results(batches, batch["id"])
    assert (
        results["x"]["type"] == "errored"
        and results["x"]["error"]["error"]["type"] == "invalid_request_error"
    )
    assert results["y"]["type"] == "expired"


def test_rates_are_validated_at_run_time(module_emulator: RunningEmulator) -> None:
    with pytest.raises(EmulatorAdminError, match="at most 1"):
        module_emulator.set_faults(transient_errored_rate=0.7, transient_expired_rate=0.5)
    with pytest.raises(EmulatorAdminError, match="transient_error_type"):
        module_emulator.set_faults(transient_error_type="bogus_error")
    shown = module_emulator.set_faults(transient_errored_rate=0.25)
    assert shown["transient_errored_rate"] == 0.25


def test_command_line_flags() -> None:
    with run_emulator(
        processing_seconds=0,
        transient_errored_rate=1.0,
        transient_error_type="timeout_error",
        transient_seed=5,
    ) as running:
        with httpx.Client(base_url=running.base_url, headers=running.headers, timeout=30) as client:
            from airflow_batches.emulator.testing import echo_request

            created = client.post("/v1/messages/batches", json={"requests": [echo_request("z")]}).json()
            line = json.loads(client.get(f"/v1/messages/batches/{created['id']}/results").content)
        assert line["result"]["error"]["error"]["type"] == "timeout_error"
        assert running.set_faults()["transient_seed"] == 5
