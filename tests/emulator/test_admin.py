"""Admin endpoints: stats prove what happened, reset starts over, config changes behaviour at run time."""

from __future__ import annotations

import httpx
import pytest

from airflow_batches.emulator.testing import EmulatorAdminError, RunningEmulator


def test_stats_count_batches_and_requests_per_operation(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    first = batches.create([batches.request("a")])
    batches.create([batches.request("b")])
    api.get(f"/v1/messages/batches/{first['id']}")
    api.get("/v1/messages/batches")
    batches.results(first["id"])
    api.delete(f"/v1/messages/batches/{first['id']}")
    api.post(f"/v1/messages/batches/{first['id']}/cancel")
    api.get("/v1/elsewhere")
    api.post("/v1/messages/batches", json={"requests": []})
    stats = module_emulator.stats()
    assert stats["batches_created"] == 2, "a refused create does not count"
    assert stats["batches_stored"] == 1
    assert stats["requests"] == {
        "create": 3,
        "retrieve": 1,
        "list": 1,
        "results": 1,
        "delete": 1,
        "cancel": 1,
        "other": 1,
    }


def test_reset_drops_batches_counters_clock_and_settings(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    batch_id = batches.create([batches.request("a")])["id"]
    module_emulator.configure(processing_seconds=99)
    module_emulator.set_faults(latency_ms=5, fail_first=3, fail_ops=["delete"])
    module_emulator.advance_clock(1000)
    module_emulator.reset()
    assert api.get(f"/v1/messages/batches/{batch_id}").status_code == 404
    assert api.get("/v1/messages/batches").json()["data"] == []
    assert module_emulator.stats() == {
        "batches_created": 0,
        "batches_stored": 0,
        "requests": {"retrieve": 1, "list": 1},
        "faults_injected": 0,
        "results_cut": 0,
    }
    assert module_emulator.admin("GET", "config")["processing_seconds"] == 0
    faults = module_emulator.admin("GET", "faults")
    assert (faults["latency_ms"], faults["fail_first_remaining"]) == (0, 0)
    assert module_emulator.admin("GET", "clock")["offset_seconds"] == 0


def test_config_changes_only_given_keys_and_is_validated(module_emulator: RunningEmulator) -> None:
    before = module_emulator.admin("GET", "config")
    after = module_emulator.configure(cancel_seconds=3)
    assert after == {**before, "cancel_seconds": 3}
    assert "api_key" not in after and after["api_key_required"] is False
    with pytest.raises(
        EmulatorAdminError, match="processing_seconds: Input should be greater than or equal to 0"
    ):
        module_emulator.configure(processing_seconds=-1)
    with pytest.raises(EmulatorAdminError, match="params_validation"):
        module_emulator.configure(params_validation="later")
    assert module_emulator.admin("GET", "config") == after, "a refused change leaves the settings alone"


def test_fail_first_counter_restarts_only_when_set(
    module_emulator: RunningEmulator, api: httpx.Client
) -> None:
    module_emulator.set_faults(fail_first=2)
    assert api.get("/v1/messages/batches").status_code == 429
    module_emulator.set_faults(latency_ms=1)
    assert module_emulator.admin("GET", "faults")["fail_first_remaining"] == 1, (
        "unrelated change keeps the counter"
    )
    assert api.get("/v1/messages/batches").status_code == 429
    assert api.get("/v1/messages/batches").status_code == 200


def test_admin_rejects_a_body_that_is_not_an_object(module_emulator: RunningEmulator) -> None:
    response = httpx.post(f"{module_emulator.base_url}/_emulator/faults", content=b"[1, 2]")
    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]["message"]
