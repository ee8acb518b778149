"""StructuredOutput: how a request asks for the schema (by model), and how an answer is judged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from airflow_batches.records.structured import TOOL_NAME, StructuredOutput, supports_json_output

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["label", "score"],
}


class Label(BaseModel):
    label: str
    score: int


@pytest.mark.parametrize(
    ("model", "supported"),
    [
        ("claude-haiku-4-5", True),
        ("claude-sonnet-4-5-20250929", True),
        ("claude-opus-4-6", True),
        ("claude-sonnet-5", True),
        ("claude-opus-4-1", False),
        ("claude-3-5-haiku-20241022", False),
        ("my-proxy-model", False),
    ],
)
def test_which_models_get_output_config(model: str, supported: bool) -> None:
    assert supports_json_output(model) is supported


def test_json_mode_sets_output_config_and_keeps_other_config() -> None:
    params = {"model": "claude-haiku-4-5", "output_config": {"effort": "low"}}
    asked = StructuredOutput(SCHEMA).apply(params)
    assert asked["output_config"] == {"effort": "low", "format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in asked
    assert params == {"model": "claude-haiku-4-5", "output_config": {"effort": "low"}}, "not changed"


def test_tool_mode_adds_a_forced_tool_after_existing_ones() -> None:
    other = {"name": "search", "input_schema": {"type": "object"}}
    asked = StructuredOutput(SCHEMA).apply({"model": "claude-3-haiku-20240307", "tools": [other]})
    assert asked["tools"][0] == other and asked["tools"][1]["input_schema"] == SCHEMA
    assert asked["tool_choice"] == {"type": "tool", "name": TOOL_NAME}


def message(text: str | None = None, tool_input: Any = None) -> dict[str, Any]:
    if tool_input is not None:
        return {"content": [{"type": "tool_use", "id": "t", "name": TOOL_NAME, "input": tool_input}]}
    return {"content": [{"type": "text", "text": text}]}


@pytest.mark.parametrize("schema", [SCHEMA, Label])
def test_answers_are_judged(schema: Any) -> None:
    structured = StructuredOutput(schema)
    good = {"label": "bug", "score": 2}
    assert structured.answer(message(json.dumps(good))) == (good, None)
    assert structured.answer(message(tool_input=good)) == (good, None)
    value, problem = structured.answer(message(tool_input={"label": "bug", "score": "high"}))
    assert value == {"label": "bug", "score": "high"} and problem is not None and "score" in problem
    assert structured.answer(message("Sure! Here it is"))[1].startswith("not JSON")  # type: ignore[union-attr]
    assert structured.answer({"content": []})[1] == "no answer: the reply has neither the tool call nor text"


def test_bad_schemas_fail_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        StructuredOutput({"type": "object", "properties": {"a": {"type": "nope"}}})
    with pytest.raises(ValueError, match="must describe an object"):
        StructuredOutput({"type": "string"})
    with pytest.raises(ValueError, match="output_mode"):
        StructuredOutput(SCHEMA, mode="xml")
