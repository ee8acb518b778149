"""Per-line checks of a results stream: JSON, custom_id, result type, duplicates, counts, usage totals.

This is the hot path of a landing. Each line is parsed whole (so it must be valid JSON and UTF-8) by
msgspec's decoder into a struct of only the fields the checks and sums need (and ``message.model``, for the
cost): everything else (the message content, nearly all of a line) is validated and skipped without
becoming Python objects, several times faster than ``json.loads``. The line's bytes are never re-serialized.
The lines of a group are decoded in one ``map`` and then checked in one loop: per line, the Python around
the decoder costs about as much as the decoding itself, so it is kept to a few operations.

A line the fast decoder refuses, or whose fields fail a check, goes through ``json.loads`` and the plain
checks, which raise the error (or accept what ``json.loads`` accepts and msgspec does not, such as a
boolean token count), so what passes and what each error says do not depend on the fast path.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from airflow_batches.api.jsonl import Line, valid_utf8
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
    usage: _Usage
    model: str | None = None


class _Succeeded(msgspec.Struct, gc=False, tag="succeeded", tag_field="type"):
    message: _Message


class _Errored(msgspec.Struct, gc=False, tag="errored", tag_field="type"):
    pass


class _Canceled(msgspec.Struct, gc=False, tag="canceled", tag_field="type"):
    pass


class _Expired(msgspec.Struct, gc=False, tag="expired", tag_field="type"):
    pass


# A union tagged by "type": the decoder itself refuses an unknown type, an empty custom_id and a succeeded
# result without message.usage, so the loop over decoded lines only looks for duplicates and adds up.
_TYPE_NAMES: dict[type, ResultType] = {
    _Succeeded: "succeeded",
    _Errored: "errored",
    _Canceled: "canceled",
    _Expired: "expired",
}


class _Line(msgspec.Struct, gc=False):
    custom_id: Annotated[str, msgspec.Meta(min_length=1)]
    result: _Succeeded | _Errored | _Canceled | _Expired


_decode = msgspec.json.Decoder(_Line).decode
# A string msgspec decodes (custom_id, model) that is not UTF-8 raises UnicodeDecodeError, not DecodeError.
_REFUSED = (msgspec.DecodeError, UnicodeDecodeError)


def _decode_leading(lines: Sequence[Line], all_utf8: bool) -> list[_Line]:
    """``lines`` decoded, up to the first that the fast decoder refuses or that is not UTF-8."""
    try:
        items = list(map(_decode, lines))
    except _REFUSED:
        items = []
        for line in lines:
            try:
                items.append(_decode(line))
            except _REFUSED:
                break
    # msgspec does not check the UTF-8 of the strings it skips.
    if not all_utf8:
        for index, line in enumerate(lines[: len(items)]):
            if not valid_utf8(line):
                return items[:index]
    return items


_CUSTOM_ID = operator.attrgetter("custom_id")
_NO_RUN = object()


def _add_to(sums: list[int], *tokens: int) -> None:
    for index, value in enumerate(tokens):
        sums[index] += value


def _first_duplicate(ids: list[str], seen: set[str]) -> int:
    """The index of the first id in ``ids`` that is in ``seen`` or earlier in ``ids``."""
    earlier: set[str] = set()
    for index, custom_id in enumerate(ids):
        if custom_id in seen or custom_id in earlier:
            return index
        earlier.add(custom_id)
    raise ValueError("no duplicate")


class ResultChecker:
    """Checks the lines of one batch's results, in stream order, and sums counts and token usage."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.lines = 0
        self.last_custom_id = ""  # of the line checked last (the merged landing matches rounds by it)
        self.counts: dict[str, int] = dict.fromkeys(RESULT_TYPES, 0)
        # Per ``message.model`` (for the cost at each model's price), the token sums in the order of
        # USAGE_FIELDS, added to once per run of lines with the same model.
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

    def check(self, line: Line, *, all_utf8: bool = False) -> str:
        """Check one line (with or without its newline) and return its result type."""
        return self.check_lines([line], all_utf8=all_utf8)[0]

    def check_lines(self, lines: Sequence[Line], *, all_utf8: bool = False) -> list[str]:
        """Check ``lines`` (each with or without its newline), the stream's next ones; their result types.

        ``all_utf8``: the caller knows every line is UTF-8 (:meth:`LineChunk.is_utf8`, one check per chunk),
        so no line needs its own check.
        """
        types: list[str] = []
        self._check(lines, all_utf8, types)
        return types

    def count_lines(self, lines: Sequence[Line], *, all_utf8: bool = False) -> None:
        """:meth:`check_lines` without the list of result types, for a caller that only needs the counts."""
        self._check(lines, all_utf8, None)

    def _check(self, lines: Sequence[Line], all_utf8: bool, types: list[str] | None) -> None:
        done = 0
        while done < len(lines):
            done += self._check_decoded(_decode_leading(lines[done:] if done else lines, all_utf8), types)
            if done < len(lines):
                # Refused by the fast decoder, or a duplicate: the plain check decides, and words the error.
                result_type = self._check_plain(lines[done])
                if types is not None:
                    types.append(result_type)
                done += 1

    def _check_decoded(self, items: list[_Line], types: list[str] | None) -> int:
        """Check and count decoded lines up to the first duplicate; how many were accepted.

        Per line this is most of the landing thread's work, so the loop is kept to the fewest operations:
        the ids are looked up in ``seen`` by set operations on the whole group (``seen`` outgrows the CPU
        caches, and a loop in C waits for several lookups at once where a Python loop waits for each), and
        the tokens of a run of lines with the same model are added up in local names, then to its sums.
        """
        seen = self._seen
        ids = list(map(_CUSTOM_ID, items))
        fresh = set(ids)
        if len(fresh) != len(ids) or not seen.isdisjoint(fresh):
            del items[_first_duplicate(ids, seen) :]
            fresh = set(ids[: len(items)])
        seen |= fresh
        counts, names = self.counts, _TYPE_NAMES
        succeeded = 0
        # The run before the first line: no model equals the sentinel, and its zero sums go nowhere.
        model: object = _NO_RUN
        sums = [0, 0, 0, 0]
        inputs = outputs = cache_writes = cache_reads = 0
        for item in items:
            result = item.result
            if result.__class__ is not _Succeeded:
                counts[names[result.__class__]] += 1
                continue
            succeeded += 1
            message = result.message
            if message.model != model:
                _add_to(sums, inputs, outputs, cache_writes, cache_reads)
                inputs = outputs = cache_writes = cache_reads = 0
                model = message.model
                sums = self._sums(message.model)
            usage = message.usage
            inputs += usage.input_tokens or 0
            outputs += usage.output_tokens or 0
            cache_writes += usage.cache_creation_input_tokens or 0
            cache_reads += usage.cache_read_input_tokens or 0
        _add_to(sums, inputs, outputs, cache_writes, cache_reads)
        counts["succeeded"] += succeeded
        if types is not None:
            types.extend([names[item.result.__class__] for item in items])
        if items:
            self.lines += len(items)
            self.last_custom_id = items[-1].custom_id
        return len(items)

    def _sums(self, model: str | None) -> list[int]:
        """The token sums of ``model`` (no model, or an empty one, is ``"unknown"``)."""
        return self._tokens.setdefault(model or "unknown", [0, 0, 0, 0])

    def _check_plain(self, view: Line) -> str:
        self.lines += 1
        line = bytes(view)
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
        sums = self._sums(str(result["message"].get("model") or ""))
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
