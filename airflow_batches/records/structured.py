"""Structured output: ask every request for JSON of one shape, and check each answer against it.

Two ways to ask, from the API reference (platform.claude.com/docs/en/build-with-claude/structured-outputs):

* ``"json"``: ``params.output_config.format = {"type": "json_schema", "schema": ...}``; the answer is the
  text of the reply. Generally available (no beta header) on Claude Opus 4.5+, Sonnet 4.5+ and Haiku 4.5+.
* ``"tool"``: a tool whose ``input_schema`` is the schema, forced with ``tool_choice``; the answer is that
  ``tool_use`` block's ``input``. Works on every model with tool use.

``"auto"`` picks ``"json"`` where the model is known to support it, else ``"tool"``. The answer is checked
with ``jsonschema`` (a JSON Schema) or the pydantic model itself (a model class), and a failing answer gets a
reason (``$.score: 'high' is not of type 'integer'``), never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ValidationError

__all__ = ["TOOL_NAME", "OutputMode", "OutputSchema", "StructuredOutput", "supports_json_output"]

OutputSchema = Mapping[str, Any] | type[BaseModel]
OutputMode = Literal["auto", "json", "tool"]
TOOL_NAME = "record_answer"

_MODEL = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?(?:-latest)?")


def supports_json_output(model: str) -> bool:
    """True for models the API reference lists for ``output_config.format`` (Claude 4.5 and later)."""
    match = _MODEL.fullmatch(model)
    if match is None:
        return False
    major, minor = int(match[1]), int(match[2] or 0)
    return (major, minor) >= (4, 5)


class StructuredOutput:
    """One output schema: how requests ask for it and how answers are checked."""

    def __init__(self, schema: OutputSchema, *, mode: str = "auto", tool_name: str = TOOL_NAME) -> None:
        if mode not in ("auto", "json", "tool"):
            raise ValueError(f"output_mode={mode!r} is not one of 'auto', 'json', 'tool'")
        self.model_class: type[BaseModel] | None = None
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            self.model_class = schema
            self.schema: dict[str, Any] = schema.model_json_schema()
        elif isinstance(schema, Mapping):
            self.schema = dict(schema)
            try:
                jsonschema.validators.validator_for(self.schema).check_schema(self.schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"output_schema is not a valid JSON Schema: {exc.message}") from None
        else:
            raise ValueError(
                "output_schema must be a JSON Schema (dict) or a pydantic model class, "
                f"got {type(schema).__name__}"
            )
        if self.schema.get("type") != "object":
            raise ValueError('output_schema must describe an object ({"type": "object", "properties": ...})')
        self.mode = mode
        self.tool_name = tool_name
        self._validator = (
            None if self.model_class else jsonschema.validators.validator_for(self.schema)(self.schema)
        )

    @property
    def fields(self) -> list[tuple[str, Any]]:
        """The top-level properties in schema order, with their JSON Schema types (or ``None``)."""
        properties = self.schema.get("properties") or {}
        return [
            (name, spec.get("type") if isinstance(spec, Mapping) else None)
            for name, spec in properties.items()
        ]

    def mode_for(self, model: Any) -> Literal["json", "tool"]:
        if self.mode != "auto":
            return self.mode  # type: ignore[return-value]
        return "json" if isinstance(model, str) and supports_json_output(model) else "tool"

    def apply(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` asking for this schema (a copy; the caller's mapping is not changed)."""
        asked = dict(params)
        if self.mode_for(asked.get("model")) == "json":
            config = dict(asked.get("output_config") or {})
            config["format"] = {"type": "json_schema", "schema": self.schema}
            asked["output_config"] = config
        else:
            tool = {
                "name": self.tool_name,
                "description": "Record the answer. Call this tool exactly once with the answer as its input.",
                "input_schema": self.schema,
            }
            asked["tools"] = [*(asked.get("tools") or []), tool]
            asked["tool_choice"] = {"type": "tool", "name": self.tool_name}
        return asked

    def answer(self, message: Mapping[str, Any]) -> tuple[Any, str | None]:
        """The structured answer in a reply ``message`` and why it is invalid (``None`` when valid)."""
        content = message.get("content") or []
        blocks = [block for block in content if isinstance(block, Mapping)]
        for block in blocks:
            if block.get("type") == "tool_use" and block.get("name") == self.tool_name:
                return block.get("input"), self.problem(block.get("input"))
        text = "".join(block.get("text", "") for block in blocks if block.get("type") == "text")
        if not text.strip():
            return None, "no answer: the reply has neither the tool call nor text"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, f"not JSON: {exc}"
        return value, self.problem(value)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not follow the schema, or ``None``."""
        if self.model_class is not None:
            try:
                self.model_class.model_validate(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
                return f"{where}: {first['msg']}"
            return None
        assert self._validator is not None
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
        if error is None:
            return None
        return f"{error.json_path}: {error.message}"
