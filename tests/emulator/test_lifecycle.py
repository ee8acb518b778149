"""The state machine, driven by the emulator's clock: processing, cancel, delete, expiry and archival."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from airflow_batches.emulator.testing import RunningEmulator

DAY = 24 * 3600
ZERO_COUNTS = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}


def counts(**nonzero: int) -> dict[str, int]:
    return {**ZERO_COUNTS, **nonzero}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def result_types(api: httpx.Client, batch_id: str) -> dict[str, str]:
    response = api.get(f"/v1/messages/batches/{batch_id}/results")
    assert response.status_code == 200, response.text
    return {line["custom_id"]: line["result"]["type"] for line in map(json.loads, response.text.splitlines())}


def test_batch_is_in_progress_until_processing_time_passes(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    module_emulator.configure(processing_seconds=60)
    created = batches.create_n(3)
    assert created["processing_status"] == "in_progress"
    module_emulator.advance_clock(59)
    during = batches.get(created["id"])
    assert during["processing_status"] == "in_progress"
    assert during["request_counts"] == counts(processing=3), "counts move only when the batch ends"
    assert during["ended_at"] is None and during["results_url"] is None
    module_emulator.advance_clock(2)
    ended = batches.get(created["id"])
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"] == counts(succeeded=3)
    assert at(ended["ended_at"]) == at(created["created_at"]) + timedelta(seconds=60)
    assert ended["results_url"] == f"{module_emulator.base_url}/v1/messages/batches/{created['id']}/results"
    assert at(ended["expires_at"]) == at(created["created_at"]) + timedelta(hours=24)


def test_create_answer_is_in_progress_even_with_zero_processing_time(batches) -> None:
    created = batches.create_n(2)
    assert created["processing_status"] == "in_progress"
    assert created["request_counts"] == counts(processing=2)
    assert batches.get(created["id"])["processing_status"] == "ended"


def test_processing_time_is_fixed_at_creation(module_emulator: RunningEmulator, batches) -> None:
    module_emulator.configure(processing_seconds=100)
    slow = batches.create_n(1)
    module_emulator.configure(processing_seconds=0)
    assert batches.get(slow["id"])["processing_status"] == "in_progress"


def test_results_and_delete_wait_for_the_end(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    module_emulator.configure(processing_seconds=60)
    batch_id = batches.create_n(1)["id"]
    early = batches.results(batch_id)
    assert early.status_code == 400
    assert early.json()["error"]["type"] == "invalid_request_error"
    assert "is in_progress: results are available only once processing_status is 'ended'" in early.text
    refused = api.delete(f"/v1/messages/batches/{batch_id}")
    assert refused.status_code == 400
    assert "only ended batches can be deleted" in refused.json()["error"]["message"]
    module_emulator.advance_clock(61)
    assert batches.results(batch_id).status_code == 200
    deleted = api.delete(f"/v1/messages/batches/{batch_id}")
    assert deleted.json() == {"id": batch_id, "type": "message_batch_deleted"}
    for response in (api.get(f"/v1/messages/batches/{batch_id}"), batches.results(batch_id)):
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"
    assert api.delete(f"/v1/messages/batches/{batch_id}").status_code == 404


def test_cancel_moves_through_canceling_to_ended_with_every_request_canceled(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    module_emulator.configure(processing_seconds=600, cancel_seconds=5)
    created = batches.create_n(4)
    module_emulator.advance_clock(10)
    canceled = api.post(f"/v1/messages/batches/{created['id']}/cancel")
    assert canceled.status_code == 200, canceled.text
    body = canceled.json()
    assert body["processing_status"] == "canceling"
    # The emulator clock is real time plus the offset, so only a lower bound is exact.
    assert at(body["cancel_initiated_at"]) - at(created["created_at"]) >= timedelta(seconds=10)
    assert body["request_counts"] == counts(processing=4)
    assert body["results_url"] is None and body["ended_at"] is None

    module_emulator.advance_clock(2)
    again = api.post(f"/v1/messages/batches/{created['id']}/cancel")
    assert again.status_code == 200
    assert again.json() == {**body, "processing_status": "canceling"}, (
        "cancel while canceling changes nothing"
    )
    assert batches.results(created["id"]).status_code == 400
    assert api.delete(f"/v1/messages/batches/{created['id']}").status_code == 400

    module_emulator.advance_clock(4)
    ended = batches.get(created["id"])
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"] == counts(canceled=4)
    assert at(ended["ended_at"]) == at(body["cancel_initiated_at"]) + timedelta(seconds=5)
    assert ended["cancel_initiated_at"] == body["cancel_initiated_at"]
    assert set(result_types(api, created["id"]).values()) == {"canceled"}


def test_cancel_keeps_uncancelable_requests(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    module_emulator.configure(processing_seconds=600, cancel_seconds=0)
    batch = batches.create(
        [
            batches.request("plain"),
            batches.request("sticky", metadata={"emulator": "uncancelable"}),
            batches.request("broken", metadata={"emulator": "error"}),
        ]
    )
    assert api.post(f"/v1/messages/batches/{batch['id']}/cancel").json()["processing_status"] == "canceling"
    module_emulator.advance_clock(1)
    assert batches.get(batch["id"])["request_counts"] == counts(canceled=2, succeeded=1)
    assert result_types(api, batch["id"]) == {
        "plain": "canceled",
        "sticky": "succeeded",
        "broken": "canceled",
    }


def test_cancel_on_an_ended_batch_is_400_or_configured_409(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    batch_id = batches.create_n(1)["id"]
    refused = api.post(f"/v1/messages/batches/{batch_id}/cancel")
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "has already ended" in refused.json()["error"]["message"]
    module_emulator.configure(cancel_ended_status=409)
    conflict = api.post(f"/v1/messages/batches/{batch_id}/cancel")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["type"] == "conflict_error"


def test_errored_switch_gives_an_error_envelope_result(api: httpx.Client, batches) -> None:
    batch = batches.create([batches.request("good"), batches.request("bad", metadata={"emulator": "error"})])
    assert batches.get(batch["id"])["request_counts"] == counts(succeeded=1, errored=1)
    lines = {
        line["custom_id"]: line for line in map(json.loads, batches.results(batch["id"]).text.splitlines())
    }
    assert lines["bad"]["result"] == {
        "type": "errored",
        "error": {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "emulator: this request failed on purpose (params.metadata.emulator = 'error')",
            },
            "request_id": None,
        },
    }


def test_expire_switch_keeps_the_batch_running_until_expiry(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    batch = batches.create(
        [
            batches.request("quick"),
            batches.request("failing", metadata={"emulator": "error"}),
            batches.request("stuck", metadata={"emulator": "expire"}),
        ]
    )
    module_emulator.advance_clock(DAY - 1)
    assert batches.get(batch["id"])["processing_status"] == "in_progress"
    module_emulator.advance_clock(2)
    ended = batches.get(batch["id"])
    assert ended["processing_status"] == "ended"
    assert at(ended["ended_at"]) == at(batch["expires_at"])
    assert ended["request_counts"] == counts(succeeded=1, errored=1, expired=1)
    assert result_types(api, batch["id"]) == {"quick": "succeeded", "failing": "errored", "stuck": "expired"}


def test_canceling_a_stuck_batch_cancels_the_stuck_request(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    module_emulator.configure(cancel_seconds=1)
    batch = batches.create([batches.request("stuck", metadata={"emulator": "expire"})])
    module_emulator.advance_clock(3600)
    assert api.post(f"/v1/messages/batches/{batch['id']}/cancel").json()["processing_status"] == "canceling"
    module_emulator.advance_clock(2)
    assert batches.get(batch["id"])["request_counts"] == counts(canceled=1)


def test_processing_longer_than_a_day_expires_every_request(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    module_emulator.configure(processing_seconds=2 * DAY)
    batch = batches.create(
        [batches.request("a"), batches.request("b", metadata={"emulator": "uncancelable"})]
    )
    module_emulator.advance_clock(DAY + 1)
    ended = batches.get(batch["id"])
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"] == counts(expired=2)
    assert set(result_types(api, batch["id"]).values()) == {"expired"}


def test_archive_after_29_days_blocks_results(
    module_emulator: RunningEmulator, api: httpx.Client, batches
) -> None:
    batch = batches.create_n(2)
    module_emulator.advance_clock(29 * DAY - 10)
    before = batches.get(batch["id"])
    assert before["archived_at"] is None
    assert batches.results(batch["id"]).status_code == 200
    module_emulator.advance_clock(20)
    archived = batches.get(batch["id"])
    assert archived["processing_status"] == "ended"
    assert at(archived["archived_at"]) == at(batch["created_at"]) + timedelta(days=29)
    assert archived["results_url"] == before["results_url"], "results_url is kept by default"
    refused = batches.results(batch["id"])
    assert refused.status_code == 404
    assert refused.json()["error"]["type"] == "not_found_error"
    assert "was archived at" in refused.json()["error"]["message"]

    module_emulator.configure(archived_results_status=400, clear_results_url_on_archive=True)
    assert batches.results(batch["id"]).status_code == 400
    assert batches.get(batch["id"])["results_url"] is None
    assert api.delete(f"/v1/messages/batches/{batch['id']}").status_code == 200, (
        "archived batches can be deleted"
    )


def test_clock_endpoints(module_emulator: RunningEmulator) -> None:
    first = module_emulator.advance_clock(90)
    assert first["offset_seconds"] == 90
    second = module_emulator.advance_clock(10.5)
    assert second["offset_seconds"] == 100.5
    assert at(second["now"]) - at(first["now"]) >= timedelta(seconds=10.5)
    refused = httpx.post(f"{module_emulator.base_url}/_emulator/clock/advance", json={"seconds": -1})
    assert refused.status_code == 400
    assert "only moves forward" in refused.json()["error"]["message"]
    module_emulator.reset()
    assert module_emulator.admin("GET", "clock")["offset_seconds"] == 0
