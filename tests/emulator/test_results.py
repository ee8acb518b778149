"""The results JSONL: headers, exact line format, order, and the deterministic fake model."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx


def lines_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.content.split(b"\n")[:-1]]


def test_results_headers_and_line_format(batches) -> None:
    batch = batches.create([batches.request(f"r{i}", f"text {i}") for i in range(5)])
    response = batches.results(batch["id"])
    assert response.headers["content-type"] == "application/x-jsonl"
    assert (
        response.headers["content-disposition"] == f"attachment; filename*=utf-8''{batch['id']}_results.jsonl"
    )
    body = response.content
    assert body.endswith(b"\n")
    raw_lines = body.split(b"\n")[:-1]
    assert len(raw_lines) == 5
    for raw in raw_lines:
        assert raw, "no blank lines"
        assert b"\r" not in raw
        assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode(), (
            "compact JSON"
        )


def test_results_url_points_at_the_emulator_and_serves_the_results(module_emulator, batches) -> None:
    batch_id = batches.create([batches.request("a")])["id"]
    url = batches.get(batch_id)["results_url"]
    assert url.startswith(module_emulator.base_url + "/")
    response = httpx.get(url, headers=module_emulator.headers)
    assert [line["custom_id"] for line in lines_of(response)] == ["a"]


def test_order_is_deterministic_but_not_the_input_order(batches) -> None:
    custom_ids = [f"id-{i}" for i in range(10)]
    batch_id = batches.create([batches.request(custom_id) for custom_id in custom_ids])["id"]
    first = batches.results(batch_id)
    order = [line["custom_id"] for line in lines_of(first)]
    assert sorted(order) == sorted(custom_ids)
    assert order != custom_ids
    assert batches.results(batch_id).content == first.content, "a second download is byte-identical"


def test_reply_echoes_the_last_user_message(batches) -> None:
    conversation = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "second "},
                {"type": "image"},
                {"type": "text", "text": "part"},
            ],
        },
    ]
    batch_id = batches.create(
        [
            batches.request("plain", "just this"),
            batches.request("blocks", messages=conversation, system="be brief"),
        ]
    )["id"]
    lines = {line["custom_id"]: line for line in lines_of(batches.results(batch_id))}
    plain = lines["plain"]["result"]
    assert plain["type"] == "succeeded"
    message = plain["message"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "claude-emulated"
    assert message["content"] == [{"type": "text", "text": "just this", "citations": None}]
    assert message["stop_reason"] == "end_turn" and message["stop_sequence"] is None
    assert message["id"].startswith("msg_") and len(message["id"]) == 28
    assert message["usage"]["service_tier"] == "batch"
    assert message["usage"]["input_tokens"] == math.ceil(len("just this") / 4)
    assert message["usage"]["output_tokens"] == math.ceil(len("just this") / 4)

    blocks = lines["blocks"]["result"]["message"]
    assert blocks["content"][0]["text"] == "second part"
    prompt = len("first question") + len("an answer") + len("second part") + len("be brief")
    assert blocks["usage"]["input_tokens"] == math.ceil(prompt / 4)


def test_reply_longer_than_max_tokens_is_cut(batches) -> None:
    batch_id = batches.create([batches.request("long", "x" * 100, max_tokens=5)])["id"]
    message = lines_of(batches.results(batch_id))[0]["result"]["message"]
    assert message["stop_reason"] == "max_tokens"
    assert message["content"][0]["text"] == "x" * 20
    assert message["usage"]["output_tokens"] == 5


def test_message_ids_depend_on_batch_and_custom_id(batches) -> None:
    first = batches.create([batches.request("a"), batches.request("b")])["id"]
    second = batches.create([batches.request("a")])["id"]
    ids_first = {
        line["custom_id"]: line["result"]["message"]["id"] for line in lines_of(batches.results(first))
    }
    ids_second = {
        line["custom_id"]: line["result"]["message"]["id"] for line in lines_of(batches.results(second))
    }
    assert ids_first["a"] != ids_first["b"]
    assert ids_first["a"] != ids_second["a"]


def test_unicode_text_is_echoed_intact(batches) -> None:
    text = "héllo wörld ✓ 日本語 \U0001f600"
    batch_id = batches.create([batches.request("u", text)])["id"]
    response = batches.results(batch_id)
    assert lines_of(response)[0]["result"]["message"]["content"][0]["text"] == text
    assert text.encode() in response.content, "non-ASCII is sent as UTF-8, not escaped"
