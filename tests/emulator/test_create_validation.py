"""Create-time validation: synchronous 400s that name the request and field, and 413 for big bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.testing import RunningEmulator


def error_message(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == ("invalid_request_error" if status == 400 else "request_too_large")
    message: str = body["error"]["message"]
    return message


def good(custom_id: str = "ok") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    }


def with_params(custom_id: str, **changes: Any) -> dict[str, Any]:
    element = good(custom_id)
    for key, value in changes.items():
        if value is None:
            del element["params"][key]
        else:
            element["params"][key] = value
    return element


CASES = [
    pytest.param(
        good("a" * 65), "requests.3.custom_id: String should have at most 64 characters", id="too-long"
    ),
    pytest.param(good(""), "requests.3.custom_id: String should have at least 1 character", id="empty"),
    pytest.param(good("has space"), "requests.3.custom_id: String should match pattern", id="pattern"),
    pytest.param(good("dot.ted"), "requests.3.custom_id: String should match pattern", id="dot"),
    pytest.param({"params": good()["params"]}, "requests.3.custom_id: Field required", id="no-custom-id"),
    pytest.param(
        {"custom_id": 5, "params": {}}, "requests.3.custom_id: Input should be a valid string", id="int-id"
    ),
    pytest.param({"custom_id": "x"}, "requests.3.params: Field required", id="no-params"),
    pytest.param(with_params("x", model=None), "requests.3.params.model: Field required", id="no-model"),
    pytest.param(
        with_params("x", max_tokens=None), "requests.3.params.max_tokens: Field required", id="no-max"
    ),
    pytest.param(
        with_params("x", messages=None), "requests.3.params.messages: Field required", id="no-messages"
    ),
    pytest.param(
        with_params("x", max_tokens=0),
        "requests.3.params.max_tokens: Input should be greater than or equal to 1",
        id="max-tokens-0",
    ),
    pytest.param(
        with_params("x", max_tokens="5"),
        "requests.3.params.max_tokens: Input should be a valid integer",
        id="str",
    ),
    pytest.param(
        with_params("x", stream=True), "requests.3.params.stream: streaming is not supported", id="stream"
    ),
    pytest.param(
        with_params("x", messages=[]), "requests.3.params.messages: at least one message", id="no-msg"
    ),
    pytest.param(
        with_params("x", messages=[{"role": "robot", "content": "x"}]),
        "requests.3.params.messages.0.role",
        id="bad-role",
    ),
    pytest.param(
        with_params("x", metadata={"emulator": "explode"}),
        "requests.3.params.metadata.emulator: unknown switch 'explode'; "
        "use one of 'error', 'expire', 'uncancelable'",
        id="bad-switch",
    ),
    pytest.param("just a string", "requests.3: Input should be a valid dictionary", id="not-object"),
]


@pytest.mark.parametrize(("bad", "expected"), CASES)
def test_bad_request_is_named_by_index_and_field(
    api: httpx.Client, module_emulator: RunningEmulator, bad: Any, expected: str
) -> None:
    body = {"requests": [good("a"), good("b"), good("c"), bad, good("e")]}
    message = error_message(api.post("/v1/messages/batches", json=body))
    assert message.startswith(expected), message
    assert module_emulator.stats()["batches_created"] == 0


def test_stream_false_is_accepted(api: httpx.Client) -> None:
    body = {"requests": [with_params("x", stream=False)]}
    assert api.post("/v1/messages/batches", json=body).status_code == 200


def test_duplicate_custom_id_names_both_positions(api: httpx.Client) -> None:
    body = {"requests": [good("a"), good("b"), good("a")]}
    message = error_message(api.post("/v1/messages/batches", json=body))
    assert message.startswith("requests.2.custom_id: duplicate custom_id 'a' (first used by requests.0)"), (
        message
    )


def test_zero_requests_and_missing_requests_are_400(api: httpx.Client) -> None:
    assert "at least 1 item" in error_message(api.post("/v1/messages/batches", json={"requests": []}))
    assert error_message(api.post("/v1/messages/batches", json={})) == "requests: Field required"
    assert "valid list" in error_message(api.post("/v1/messages/batches", json={"requests": {"a": 1}}))


def test_invalid_json_and_invalid_utf8_are_400_with_a_position(api: httpx.Client) -> None:
    broken = b'{"requests": [{"custom_id": "a", "params": }]}'
    message = error_message(api.post("/v1/messages/batches", content=broken))
    assert (
        message.startswith("Request body is not valid JSON") and f"at byte {broken.index(b'}]}')}" in message
    )
    not_utf8 = b'{"requests": [{"custom_id": "a\xff"}]}'
    message = error_message(api.post("/v1/messages/batches", content=not_utf8))
    bad_byte = not_utf8.index(b"\xff")
    assert f"not valid UTF-8 near byte {bad_byte}" in message, message


def test_unknown_top_level_fields_are_ignored(api: httpx.Client) -> None:
    body = {"something_else": {"nested": [1, 2]}, "requests": [good("a")], "more": 1}
    assert api.post("/v1/messages/batches", json=body).status_code == 200


def test_per_request_validation_turns_bad_params_into_errored_results(
    api: httpx.Client, module_emulator: RunningEmulator
) -> None:
    module_emulator.configure(params_validation="per_request")
    body = {
        "requests": [good("fine"), with_params("zero", max_tokens=0), with_params("streamy", stream=True)]
    }
    created = api.post("/v1/messages/batches", json=body)
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    counts = api.get(f"/v1/messages/batches/{batch_id}").json()["request_counts"]
    assert counts == {"processing": 0, "succeeded": 1, "errored": 2, "canceled": 0, "expired": 0}
    lines = [
        json.loads(line) for line in api.get(f"/v1/messages/batches/{batch_id}/results").text.splitlines()
    ]
    errors = {
        line["custom_id"]: line["result"]["error"]["error"]["message"]
        for line in lines
        if "error" in line["result"]
    }
    assert errors["zero"].startswith("params.max_tokens: Input should be greater than or equal to 1")
    assert errors["streamy"].startswith("params.stream:")
    # custom_id problems can never become results: they stay synchronous.
    assert api.post("/v1/messages/batches", json={"requests": [good("a b")]}).status_code == 400


def test_body_over_the_threshold_is_413_before_it_is_read(
    api: httpx.Client, module_emulator: RunningEmulator
) -> None:
    module_emulator.configure(max_body_bytes=2000)
    small = {"requests": [good("a")]}
    assert api.post("/v1/messages/batches", json=small).status_code == 200
    large = {"requests": [good(f"r{i}") for i in range(40)]}
    assert len(json.dumps(large)) > 2000
    message = error_message(api.post("/v1/messages/batches", json=large), 413)
    assert "maximum allowed size of 2,000 bytes" in message
    assert module_emulator.stats()["batches_created"] == 1


def test_streamed_body_without_length_is_cut_off_at_the_threshold(
    api: httpx.Client, module_emulator: RunningEmulator
) -> None:
    module_emulator.configure(max_body_bytes=2000)
    large = json.dumps({"requests": [good(f"r{i}") for i in range(40)]}).encode()

    def chunks():
        for start in range(0, len(large), 500):
            yield large[start : start + 500]

    response = api.post("/v1/messages/batches", content=chunks())
    assert response.status_code == 413
    assert module_emulator.stats()["batches_created"] == 0


def test_413_can_be_an_edge_html_page(api: httpx.Client, module_emulator: RunningEmulator) -> None:
    module_emulator.configure(max_body_bytes=100, html_413=True)
    response = api.post("/v1/messages/batches", json={"requests": [good(f"r{i}") for i in range(5)]})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "413 Request Entity Too Large" in response.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
