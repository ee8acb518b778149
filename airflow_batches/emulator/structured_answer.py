"""The fake model's structured answers: JSON that follows the schema a request asks for, or on purpose not.

A request asks for structured output with ``params.output_config.format`` (``{"type": "json_schema",
"schema": ...}``; the beta spelling ``params.output_format`` too) or with a forced tool call (``tool_choice:
{"type": "tool", "name": N}`` and a tool ``N`` with an ``input_schema``). The answer is built from the schema
and the prompt's text, deterministically: strings are the start of the prompt (or the first ``enum`` value),
integers its length, and so on. With the ``invalid_output_rate`` setting, a share of custom_ids (chosen by a
hash, so the same ones every time) get an answer whose first field has the wrong type instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["StructuredRequest", "broken", "example", "invalid_output_chosen", "structured_request"]

_INVALID_STRING_VALUE = 12345


@dataclass(frozen=True)
class StructuredRequest:
    mode: str  # "json" (the reply's text) or "tool" (a tool_use block)
    schema: dict[str, Any]
    tool_name: str | None = None


def structured_request(params: dict[str, Any]) -> StructuredRequest | None:
    """What structured output ``params`` ask for, if any."""
    config = params.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else params.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return StructuredRequest("json", fmt["schema"])
    choice = params.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        for tool in params.get("tools") or []:
            if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
                schema = tool.get("input_schema")
                return StructuredRequest("tool", schema if isinstance(schema, dict) else {}, tool["name"])
    return None


def invalid_output_chosen(custom_id: str, rate: float) -> bool:
    """Whether the request ``custom_id`` gets an answer breaking its schema at ``invalid_output_rate``."""
    if rate <= 0:
        return False
    draw = int.from_bytes(hashlib.sha256(custom_id.encode()).digest()[:8], "big") / 2**64
    return draw < rate


def example(schema: dict[str, Any], text: str, root: dict[str, Any] | None = None) -> Any:
    """A value following ``schema`` (the subset structured outputs use), made from ``text``."""
    root = root if root is not None else schema
    if "$ref" in schema:
        return example(_resolve(schema["$ref"], root), text, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example(schema[key][0], text, root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example(spec, text, root) for name, spec in properties.items()}
    if kind == "array":
        return [example(schema.get("items") or {}, text, root)] * max(1, schema.get("minItems", 1))
    if kind == "string":
        return text[:80] or "emulated"
    if kind == "integer":
        return _clamp(len(text), schema)
    if kind == "number":
        return float(_clamp(len(text), schema)) / 2
    if kind == "boolean":
        return len(text) % 2 == 0
    return None


def broken(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` with its first property's type changed (a string becomes a number, others a string)."""
    if not isinstance(value, dict) or not value:
        return ["not", "an", "object"]
    first = next(iter(value))
    spec = (schema.get("properties") or {}).get(first) or {}
    wrong = _INVALID_STRING_VALUE if spec.get("type") == "string" or spec.get("enum") else "not valid"
    return {**value, first: wrong}


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _clamp(number: int, schema: dict[str, Any]) -> int:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(low, int | float):
        number = max(number, int(low))
    if isinstance(high, int | float):
        number = min(number, int(high))
    return number
