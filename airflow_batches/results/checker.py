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
from msgspec import UNSET

from airflow_batches.api.models import RESULT_TYPES, ResultType
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
    type: ResultType  # an unknown type is refused here and worded by the plain check
    message: _Message | msgspec.UnsetType = msgspec.UNSET


class _Line(msgspec.Struct, gc=False):
    custom_id: str
    result: _Result


_decode = msgspec.json.Decoder(_Line).decode


class ResultChecker:
    """Checks the lines of one batch's results, in stream order, and sums counts and token usage."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.lines = 0
        self.last_custom_id = ""  # of the line checked last (the merged landing matches rounds by it)
        self.counts: dict[str, int] = dict.fromkeys(RESULT_TYPES, 0)
        # Per ``message.model`` (for the cost at each model's price), the token sums in the order of
        # USAGE_FIELDS: a list of four ints is the cheapest thing to add to once per line.
        self._tokens: dict[str, list[int]] = {}
        # One string per request: 100k ids of up to 64 chars is a few MB, bounded by the batch size limit.
        self._seen: set[str] = set()

    @property
    def usage_by_model(self) -> dict[str, dict[str, int]]:
        return {model: dict(zip(USAGE_FIELDS, sums, strict=True)) for model, sums in self._tokens.items()}

    @property
    def usage(self) -> dict[str, int]:
        totals = dict.fromkeys(USAGE_FIELDS, 0)
        for sums in self._tokens.values():
            for name, value in zip(USAGE_FIELDS, sums, strict=True):
                totals[name] += value
        return totals

    def check(self, line: bytes) -> str:
        """Check one line (with or without its newline) and return its result type."""
        return self.check_lines([line])[0]

    def check_lines(self, lines: list[bytes]) -> list[str]:
        """Check ``lines`` (each with or without its newline), the stream's next ones; their result types.

        One loop over many lines, with everything it touches in local names: per line this is most of the
        landing thread's work.
        """
        types: list[str] = []
        found = types.append
        seen, counts, tokens, decode = self._seen, self.counts, self._tokens, _decode
        before = self.lines
        last = self.last_custom_id
        for line in lines:
            try:
                if not line.isascii():
                    line.decode()  # msgspec does not check the UTF-8 of strings it skips
                item = decode(line)
            except (msgspec.DecodeError, UnicodeDecodeError):
                pass
            else:
                custom_id = item.custom_id
                result = item.result
                result_type = result.type
                if custom_id and custom_id not in seen and result_type in counts:
                    if result_type != "succeeded":
                        seen.add(custom_id)
                        counts[result_type] += 1
                        last = custom_id
                        found(result_type)
                        continue
                    message = result.message
                    if message is not UNSET and message.usage is not UNSET:
                        usage = message.usage
                        model = message.model or "unknown"
                        sums = tokens.get(model)
                        if sums is None:
                            sums = tokens[model] = [0, 0, 0, 0]
                        sums[0] += usage.input_tokens or 0
                        sums[1] += usage.output_tokens or 0
                        sums[2] += usage.cache_creation_input_tokens or 0
                        sums[3] += usage.cache_read_input_tokens or 0
                        seen.add(custom_id)
                        counts[result_type] += 1
                        last = custom_id
                        found(result_type)
                        continue
            # Refused or failing a check: the plain check decides, and words the error.
            self.lines = before + len(types)  # it numbers its errors by this
            found(self._check_plain(line))
            last = self.last_custom_id
        self.lines = before + len(types)
        self.last_custom_id = last
        return types

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
        model = str(result["message"].get("model") or "unknown")
        sums = self._tokens.get(model)
        if sums is None:
            sums = self._tokens[model] = [0, 0, 0, 0]
        for index, field in enumerate(USAGE_FIELDS):
            value = usage.get(field)
            if isinstance(value, int):
                sums[index] += value

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
