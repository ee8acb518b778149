"""Structured output in the emulator: answers follow the requested schema (output_config.format, the beta
output_format, or a forced tool), and at invalid_output_rate the hashed share of custom_ids does not."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from airflow_batches.emulator.structured_answer import invalid_output_chosen
from airflow_batches.records import StructuredOutput

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["bug", "question"]},
        "summary": {"type": "string"},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["label", "summary", "score", "tags"],
    "additionalProperties": False,
}


class Address(BaseModel):
    city: str


class Person(BaseModel):
    name: str
    age: int
    address: Address


def requests(structured: StructuredOutput, model: str, count: int) -> list[dict[str, Any]]:
    base = {"model": model, "max_tokens": 64}
    return [
        {
            "custom_id": f"r{i}",
            "params": structured.apply({**base, "messages": [{"role": "user", "content": f"ticket {i}"}]}),
        }
        for i in range(count)
    ]


def answers(batches: Any, reqs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    batch = batches.create(reqs)
    response = batches.results(batch["id"])
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.content.splitlines()]
    return {line["custom_id"]: line["result"]["message"] for line in lines}


def test_json_and_tool_answers_follow_the_schema(batches) -> None:
    for model, mode in [("claude-haiku-4-5", "json"), ("claude-3-5-haiku-20241022", "tool")]:
        structured = StructuredOutput(SCHEMA)
        assert structured.mode_for(model) == mode
        for custom_id, message in answers(batches, requests(structured, model, 5)).items():
            value, problem = structured.answer(message)
            assert problem is None, (custom_id, message)
            assert value["label"] == "bug" and 1 <= value["score"] <= 5
            assert message["stop_reason"] == ("tool_use" if mode == "tool" else "end_turn")


def test_the_beta_output_format_spelling_is_answered(batches) -> None:
    params = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}
    params["output_format"] = {"type": "json_schema", "schema": SCHEMA}
    (message,) = answers(batches, [{"custom_id": "a", "params": params}]).values()
    assert StructuredOutput(SCHEMA).answer(message)[1] is None


def test_a_pydantic_model_with_nested_definitions(batches) -> None:
    structured = StructuredOutput(Person)
    for message in answers(batches, requests(structured, "claude-sonnet-4-5", 3)).values():
        value, problem = structured.answer(message)
        assert problem is None and isinstance(value["address"]["city"], str)


def test_invalid_output_rate_breaks_the_hashed_share(module_emulator, batches) -> None:
    module_emulator.configure(invalid_output_rate=0.3)
    structured = StructuredOutput(SCHEMA, mode="tool")
    got = answers(batches, requests(structured, "claude-haiku-4-5", 40))
    invalid = {cid for cid, message in got.items() if structured.answer(message)[1] is not None}
    assert invalid == {cid for cid in got if invalid_output_chosen(cid, 0.3)}
    assert 0 < len(invalid) < 40
    assert structured.answer(got[min(invalid)])[1] == "$.label: 12345 is not of type 'string'"


def test_plain_requests_are_still_echoed(batches) -> None:
    (message,) = answers(batches, [batches.request("p", "just text")]).values()
    assert message["content"][0]["text"] == "just text"
