"""Headers, content types, authentication, versioning and the error envelope, checked on raw HTTP."""

from __future__ import annotations

import re

import httpx
import pytest

from airflow_batches.emulator.testing import RunningEmulator

REQUEST_ID = re.compile(r"^req_[A-Za-z0-9]{24}$")
BATCH_ID = re.compile(r"^msgbatch_[A-Za-z0-9]{24}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_envelope(response: httpx.Response, status: int, error_type: str, message_part: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert message_part in body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"]


def test_every_response_has_request_id_and_organization_headers(api: httpx.Client, batches) -> None:
    batch = batches.create([batches.request("a")])
    responses = [
        api.get(f"{batches.path}/{batch['id']}"),
        api.get(batches.path),
        api.get(f"{batches.path}/{batch['id']}/results"),
        api.get(f"{batches.path}/msgbatch_unknown"),
        api.get("/v1/not-a-route"),
    ]
    seen = set()
    for response in responses:
        assert REQUEST_ID.match(response.headers["request-id"]), response.headers
        assert response.headers["anthropic-organization-id"]
        seen.add(response.headers["request-id"])
    assert len(seen) == len(responses), "request ids must be unique per response"


def test_batch_object_has_every_key_in_api_order(batches) -> None:
    batch = batches.create([batches.request("a"), batches.request("b")])
    assert list(batch) == [
        "id",
        "type",
        "processing_status",
        "request_counts",
        "created_at",
        "expires_at",
        "ended_at",
        "cancel_initiated_at",
        "archived_at",
        "results_url",
    ]
    assert BATCH_ID.match(batch["id"])
    assert batch["type"] == "message_batch"
    assert TIMESTAMP.match(batch["created_at"]) and TIMESTAMP.match(batch["expires_at"])
    assert batch["request_counts"] == {
        "processing": 2,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }


def test_json_responses_are_application_json(api: httpx.Client, batches) -> None:
    batch = batches.create([batches.request("a")])
    for response in (
        api.get(f"{batches.path}/{batch['id']}"),
        api.get(batches.path),
        api.delete(f"{batches.path}/{batch['id']}"),
    ):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"


def test_bearer_token_is_accepted_like_x_api_key(module_emulator: RunningEmulator) -> None:
    headers = {"authorization": f"Bearer {module_emulator.api_key}", "anthropic-version": "2026-10-21"}
    response = httpx.get(f"{module_emulator.base_url}/v1/messages/batches", headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": ""}, {"authorization": "Bearer"}, {"authorization": "Basic abc"}],
    ids=["none", "empty-x-api-key", "empty-bearer", "not-bearer"],
)
def test_missing_credentials_are_401(module_emulator: RunningEmulator, headers: dict[str, str]) -> None:
    response = httpx.get(
        f"{module_emulator.base_url}/v1/messages/batches",
        headers={"anthropic-version": "2023-06-01", **headers},
    )
    assert_envelope(response, 401, "authentication_error", "x-api-key header is required")


def test_required_key_rejects_a_wrong_key_and_never_echoes_keys(module_emulator: RunningEmulator) -> None:
    module_emulator.configure(api_key="sk-right-key")
    url = f"{module_emulator.base_url}/v1/messages/batches"
    wrong = httpx.get(url, headers={"x-api-key": "sk-wrong-key", "anthropic-version": "2023-06-01"})
    assert_envelope(wrong, 401, "authentication_error", "invalid x-api-key")
    assert "sk-wrong-key" not in wrong.text and "sk-right-key" not in wrong.text
    wrong_bearer = httpx.get(
        url, headers={"authorization": "Bearer sk-wrong-key", "anthropic-version": "2023-06-01"}
    )
    assert wrong_bearer.status_code == 401
    assert (
        httpx.get(url, headers={"x-api-key": "sk-right-key", "anthropic-version": "2023-06-01"}).status_code
        == 200
    )
    assert (
        httpx.get(
            url, headers={"authorization": "Bearer sk-right-key", "anthropic-version": "2023-06-01"}
        ).status_code
        == 200
    )
    assert "sk-right-key" not in httpx.get(f"{module_emulator.base_url}/_emulator/config").text


def test_api_key_flag_is_required_from_the_command_line() -> None:
    from airflow_batches.emulator.testing import run_emulator

    with run_emulator(api_key="sk-flag-key") as running:
        url = f"{running.base_url}/v1/messages/batches"
        assert (
            httpx.get(url, headers={"x-api-key": "other", "anthropic-version": "2023-06-01"}).status_code
            == 401
        )
        assert httpx.get(url, headers=running.headers).status_code == 200
        assert running.api_key == "sk-flag-key"


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
def test_both_documented_versions_are_accepted(module_emulator: RunningEmulator, version: str) -> None:
    headers = {"x-api-key": module_emulator.api_key, "anthropic-version": version}
    assert httpx.get(f"{module_emulator.base_url}/v1/messages/batches", headers=headers).status_code == 200


def test_missing_version_is_400_unless_configured_off(module_emulator: RunningEmulator) -> None:
    url = f"{module_emulator.base_url}/v1/messages/batches"
    response = httpx.get(url, headers={"x-api-key": module_emulator.api_key})
    assert_envelope(response, 400, "invalid_request_error", "anthropic-version: header is required")
    module_emulator.configure(require_version=False)
    assert httpx.get(url, headers={"x-api-key": module_emulator.api_key}).status_code == 200


def test_unknown_version_is_400(module_emulator: RunningEmulator) -> None:
    response = httpx.get(
        f"{module_emulator.base_url}/v1/messages/batches",
        headers={"x-api-key": module_emulator.api_key, "anthropic-version": "1999-01-01"},
    )
    assert_envelope(response, 400, "invalid_request_error", "'1999-01-01' is not a valid version")


def test_unknown_batch_and_unknown_route_are_404_envelopes(api: httpx.Client, batches) -> None:
    for path in (f"{batches.path}/msgbatch_nope", f"{batches.path}/msgbatch_nope/results"):
        assert_envelope(api.get(path), 404, "not_found_error", "msgbatch_nope")
    assert_envelope(api.post(f"{batches.path}/msgbatch_nope/cancel"), 404, "not_found_error", "msgbatch_nope")
    assert_envelope(api.delete(f"{batches.path}/msgbatch_nope"), 404, "not_found_error", "msgbatch_nope")
    assert_envelope(api.get("/v1/messages/nothing"), 404, "not_found_error", "no such endpoint")


def test_wrong_method_is_405_envelope(api: httpx.Client, batches) -> None:
    assert_envelope(api.put(batches.path), 405, "invalid_request_error", "not allowed")


def test_sdk_noise_headers_are_ignored(api: httpx.Client, batches) -> None:
    noise = {
        "x-stainless-retry-count": "2",
        "x-stainless-read-timeout": "600",
        "anthropic-beta": "message-batches-2024-09-24",
        "anthropic-workspace-id": "wrkspc_123",
        "user-agent": "Anthropic/Python 2.10.0",
    }
    response = api.post(batches.path, json={"requests": [batches.request("a")]}, headers=noise)
    assert response.status_code == 200, response.text
