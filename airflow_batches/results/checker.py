"""Per-line checks of a results stream: JSON, custom_id, result type, duplicates, counts, usage totals.

This is the hot path of a landing. Each line is parsed whole (so it must be valid JSON and UTF-8) by
msgspec's decoder into a struct of only the fields the checks and sums need (and ``message.model``, for the
cost): everything else (the message content, nearly all of a line) is validated and skipped without
becoming Python objects, several times faster than ``json.loads``. The line's bytes are never re-serialized.

A line the fast decoder refuses, or whose fields fail a check, goes through ``json.loads`` and the plain
checks, which raise the error (or accept what ``json.loads`` accepts and msgspec does not, such as a
boolean token count), so what passes and what each error says do not depend on the fast path.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from airflow_batches.api.models import RESULT_TYPES
from airflow_batches.cost.usage_cost import USAGE_FIELDS
from airflow_batches.errors import ResultsCheckError, ResultsCountMismatchError

__all__ = ["USAGE_FIELDS", "ResultChecker"]

_loads = json.loads


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Message(msgspec.Struct, gc=False):
    model: str | None = None
    usage: _Usage | msgspec.UnsetType = msgspec.UNSET


class _Result(msgspec.Struct, gc=False):
    type: str
    message: _Message | msgspec.UnsetType = msgspec.UNSET


class _Line(msgspec.Struct, gc=False):
    custom_id: str
    result: _Result


_decode = msgspec.json.Decoder(_Line).decode


def _usage_values(usage: _Usage) -> tuple[int | None, ...]:
    """In the order of ``USAGE_FIELDS``."""
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    )


class ResultChecker:
    """Checks the lines of one batch's results, in stream order, and sums counts and token usage."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.lines = 0
        self.last_custom_id = ""  # of the line checked last (the merged landing matches rounds by it)
        self.counts: dict[str, int] = dict.fromkeys(RESULT_TYPES, 0)
        self.usage: dict[str, int] = dict.fromkeys(USAGE_FIELDS, 0)
        # The same sums per ``message.model``, for the cost at each model's price.
        self.usage_by_model: dict[str, dict[str, int]] = {}
        # One string per request: 100k ids of up to 64 chars is a few MB, bounded by the batch size limit.
        self._seen: set[str] = set()

    def check(self, line: bytes) -> str:
        """Check one line (with or without its newline) and return its result type."""
        try:
            if not line.isascii():
                line.decode()  # msgspec does not check the UTF-8 of strings it skips
            item = _decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return self._check_plain(line)
        custom_id = item.custom_id
        result = item.result
        result_type = result.type
        if not custom_id or result_type not in self.counts or custom_id in self._seen:
            return self._check_plain(line)
        if result_type == "succeeded":
            message = result.message
            if message is msgspec.UNSET or message.usage is msgspec.UNSET:
                return self._check_plain(line)
            usage = message.usage
            model = message.model or "unknown"
            per_model = self.usage_by_model.get(model)
            if per_model is None:
                per_model = self.usage_by_model[model] = dict.fromkeys(USAGE_FIELDS, 0)
            totals = self.usage
            for field, value in zip(USAGE_FIELDS, _usage_values(usage), strict=True):
                if value is not None:
                    totals[field] += value
                    per_model[field] += value
        self.lines += 1
        self._seen.add(custom_id)
        self.last_custom_id = custom_id
        self.counts[result_type] += 1
        return result_type

    def _check_plain(self, line: bytes) -> str:
        self.lines += 1
        try:
            obj = _loads(line)
            custom_id = obj["custom_id"]
            result = obj["result"]
            result_type = result["type"]
        except (ValueError, TypeError, KeyError) as exc:
            raise self._bad_line(line, exc) from None
        if not isinstance(custom_id, str) or not custom_id:
            raise self._bad_line(line, "custom_id is not a non-empty string")
        if result_type not in self.counts:
            raise self._bad_line(
                line, f"unknown result type {result_type!r} (expected one of {RESULT_TYPES})"
            )
        if custom_id in self._seen:
            raise ResultsCheckError(
                f"batch {self.batch_id}: custom_id {custom_id!r} appears twice in the results (again on line "
                f"{self.lines}); the API sends one result per request, so the stream is corrupt. Nothing was "
                "landed; fetch the results again, and report the batch id if it persists.",
                batch_id=self.batch_id,
                line=self.lines,
            )
        self._seen.add(custom_id)
        self.last_custom_id = custom_id
        self.counts[result_type] += 1
        if result_type == "succeeded":
            self._add_usage(result)
        return str(result_type)

    def _add_usage(self, result: dict[str, Any]) -> None:
        try:
            usage = result["message"]["usage"]
        except (KeyError, TypeError):
            raise self._bad_line(None, "a succeeded result without result.message.usage") from None
        totals = self.usage
        model = str(result["message"].get("model") or "unknown")
        per_model = self.usage_by_model.get(model)
        if per_model is None:
            per_model = self.usage_by_model[model] = dict.fromkeys(USAGE_FIELDS, 0)
        for field in USAGE_FIELDS:
            value = usage.get(field)
            if isinstance(value, int):
                totals[field] += value
                per_model[field] += value

    def verify_counts(self, expected: dict[str, int]) -> None:
        """Compare the line counts per result type with the batch's ``request_counts``."""
        wanted = {t: int(expected.get(t, 0)) for t in RESULT_TYPES}
        if wanted == self.counts:
            return
        diffs = ", ".join(
            f"{t}: expected {wanted[t]}, got {self.counts[t]}"
            for t in RESULT_TYPES
            if wanted[t] != self.counts[t]
        )
        raise ResultsCountMismatchError(
            f"batch {self.batch_id}: the results do not match the batch's request_counts ({diffs}; "
            f"{self.lines} lines in total, {sum(wanted.values())} expected). Nothing was landed under the "
            "final name; fetch the results again, and report the batch id if it persists.",
            batch_id=self.batch_id,
            expected=wanted,
            got=dict(self.counts),
        )

    def _bad_line(self, line: bytes | None, why: object) -> ResultsCheckError:
        head = "" if line is None else f" (starts with {line[:80]!r})"
        return ResultsCheckError(
            f"batch {self.batch_id}: results line {self.lines} is not a valid result: {why}{head}. Each line "
            'must be a JSON object with a string "custom_id" and a "result" whose "type" is one of '
            f"{', '.join(RESULT_TYPES)}.",
            batch_id=self.batch_id,
            line=self.lines,
        )
