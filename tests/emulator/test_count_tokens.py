"""``POST /v1/messages/count_tokens`` on the emulator: the API's shapes and errors, deterministic counts equal
to the ``input_tokens`` the batch results report, faults and stats like any API operation."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from test_wire_format import assert_envelope

from airflow_batches.emulator.testing import RunningEmulator, echo_request

COUNT = "/v1/messages/count_tokens"


def test_counts_messages_and_system_like_the_fake_model(api: httpx.Client) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "system": "be brief",  # 8 characters
        "messages": [
            {"role": "user", "content": "a" * 10},
            {"role": "assistant", "content": [{"type": "text", "text": "b" * 6}]},
            {"role": "user", "content": "c" * 3},
        ],
    }
    first = api.post(COUNT, json=body)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"input_tokens": 7}  # ceil((8 + 10 + 6 + 3) / 4)
    assert api.post(COUNT, json=body).json() == first.json()


def test_the_count_equals_the_input_tokens_the_batch_result_reports(api: httpx.Client, batches) -> None:
    request = echo_request("q", "some prompt text that is a little longer", system="a system prompt")
    counted = api.post(COUNT, json={k: request["params"][k] for k in ("model", "messages", "system")}).json()
    batch = batches.create([request])
    (line,) = batches.results(batch["id"]).text.splitlines()
    assert (
        counted["input_tokens"]
        == httpx.Response(200, content=line).json()["result"]["message"]["usage"]["input_tokens"]
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
            "max_tokens: Extra",
        ),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model: Field required"),
        ({"model": "m"}, "messages: Field required"),
        ({"model": "", "messages": [{"role": "user", "content": "hi"}]}, "model: Input should be"),
        ({"model": "m", "messages": []}, "messages: at least one message is required"),
        ({"model": "m", "messages": [{"role": "bot", "content": "hi"}]}, "messages.0.role"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "system": 3},
            "system: Input should",
        ),
    ],
)
def test_bad_bodies_get_the_invalid_request_envelope(api: httpx.Client, body: dict, message: str) -> None:
    assert_envelope(api.post(COUNT, json=body), 400, "invalid_request_error", message)


def test_not_json_and_no_key_are_refused(api: httpx.Client, module_emulator: RunningEmulator) -> None:
    assert_envelope(api.post(COUNT, content=b"{nope"), 400, "invalid_request_error", "not valid JSON")
    headers = {k: v for k, v in module_emulator.headers.items() if k != "x-api-key"}
    no_key = httpx.post(module_emulator.base_url + COUNT, json={}, headers=headers)
    assert_envelope(no_key, 401, "authentication_error", "x-api-key header is required")


def test_count_tokens_is_counted_and_takes_faults_without_creating_batches(
    api: httpx.Client, module_emulator: RunningEmulator
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    module_emulator.set_faults(
        fail_first=1, fail_status=429, fail_ops=["count_tokens"], retry_after_seconds=0.05
    )
    throttled = api.post(COUNT, json=body)
    assert_envelope(throttled, 429, "rate_limit_error", "")
    assert "retry-after" in throttled.headers
    assert api.post(COUNT, json=body).status_code == 200
    stats = module_emulator.stats()
    assert stats["requests"]["count_tokens"] == 2 and stats["faults_injected"] == 1
    assert stats["batches_created"] == 0


def test_the_official_sdk_counts_tokens_unchanged(module_emulator: RunningEmulator) -> None:
    client = anthropic.Anthropic(
        api_key=module_emulator.api_key, base_url=module_emulator.base_url, max_retries=0
    )
    counted = client.messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "twelve chars"}]
    )
    assert counted.input_tokens == 3
