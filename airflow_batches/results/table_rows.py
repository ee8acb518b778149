"""One table row per results line: the columns, their types, and how a line becomes a row.

Fixed columns (every table): ``custom_id``, ``result_type``, ``model``, ``stop_reason``, ``text``, the four
token counts, ``error_type``, ``error_message``. With an output schema: ``valid`` (null when
there is no answer: errored, expired, canceled), ``invalid_reason``, ``answer_json`` (the whole answer as
JSON text, kept even when invalid) and one column per top-level field of the schema, typed from the schema
(a value that does not fit its column, as in an invalid answer, is null there and still in ``answer_json``).
Joined records add ``record_<field>`` columns (text) in the order of the first record's fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_batches.records.structured import StructuredOutput

__all__ = ["FIXED_COLUMNS", "Column", "Kind", "columns_for", "record_columns", "result_row"]

Kind = Literal["string", "int", "float", "bool", "json", "text"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind

    def coerce(self, value: Any) -> Any:
        """``value`` as this column stores it, or ``None`` when it does not fit."""
        if value is None:
            return None
        match self.kind:
            case "string":
                return value if isinstance(value, str) else None
            case "int":
                return value if isinstance(value, int) and not isinstance(value, bool) else None
            case "float":
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                return float(value) if ok else None
            case "bool":
                return value if isinstance(value, bool) else None
            case "json":
                return json.dumps(value, ensure_ascii=False, sort_keys=True)
            case _:
                return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


FIXED_COLUMNS = (
    Column("custom_id", "string"),
    Column("result_type", "string"),
    Column("model", "string"),
    Column("stop_reason", "string"),
    Column("text", "string"),
    Column("input_tokens", "int"),
    Column("output_tokens", "int"),
    Column("cache_creation_input_tokens", "int"),
    Column("cache_read_input_tokens", "int"),
    Column("error_type", "string"),
    Column("error_message", "string"),
)
_ANSWER_COLUMNS = (Column("valid", "bool"), Column("invalid_reason", "string"), Column("answer_json", "json"))
_SCHEMA_KINDS: dict[Any, Kind] = {"string": "string", "integer": "int", "number": "float", "boolean": "bool"}


def columns_for(structured: StructuredOutput | None) -> list[Column]:
    """The columns of a table without records (``ValueError`` when a schema field takes a fixed name)."""
    columns = list(FIXED_COLUMNS)
    if structured is None:
        return columns
    columns += _ANSWER_COLUMNS
    taken = {column.name for column in columns}
    for name, json_type in structured.fields:
        if name in taken or name.startswith("record_"):
            raise ValueError(
                f"output_schema field {name!r} would share a table column's name; rename the field "
                f"(taken: {', '.join(sorted(taken))}, and record_*)"
            )
        columns.append(Column(name, _SCHEMA_KINDS.get(json_type, "json")))
    return columns


def record_columns(fields: Iterable[str]) -> list[Column]:
    return [Column(f"record_{field}", "text") for field in fields]


def result_row(line: Mapping[str, Any], structured: StructuredOutput | None) -> dict[str, Any]:
    """The row of one parsed results line (values not yet coerced to their columns)."""
    result = line.get("result") or {}
    kind = result.get("type")
    message = result.get("message") or {}
    usage = message.get("usage") or {}
    error = (result.get("error") or {}).get("error") or {}
    content = message.get("content") or []
    row: dict[str, Any] = {
        "custom_id": line.get("custom_id"),
        "result_type": kind,
        "model": message.get("model"),
        "stop_reason": message.get("stop_reason"),
        "text": "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
        if kind == "succeeded"
        else None,
        "input_tokens": usage.get("input_tokens") or 0,
        "output_tokens": usage.get("output_tokens") or 0,
        "cache_creation_input_tokens": usage.get("cache_creation_input_tokens") or 0,
        "cache_read_input_tokens": usage.get("cache_read_input_tokens") or 0,
        "error_type": error.get("type"),
        "error_message": error.get("message"),
    }
    if structured is not None and kind == "succeeded":
        value, problem = structured.answer(message)
        row.update(valid=problem is None, invalid_reason=problem, answer_json=value)
        if isinstance(value, Mapping):
            row.update({name: value.get(name) for name, _ in structured.fields})
    return row
