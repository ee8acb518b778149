"""Parse a spooled create body one request at a time, keeping only what producing results needs.

A create body can be 256 MB. Decoding it whole would hold the bytes, the text and the parsed objects at
once, so instead the file is read in chunks and each element of ``requests`` is decoded on its own with
``JSONDecoder.raw_decode``. The text is decoded as latin-1, which maps every byte to one character: all JSON
structure is ASCII, so the structure parses correctly and character offsets are byte offsets. What is kept
per request is its ``custom_id``, its kind (one byte) and where its JSON sits in the file; the results
stream decodes that slice again, as UTF-8, when it needs the text.
"""

from __future__ import annotations

import json
import re
from array import array
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_batches.emulator.request_rules import RequestProblem, request_kind

__all__ = ["MAX_REQUESTS", "CreateBodyError", "ParsedRequests", "parse_create_body"]

MAX_REQUESTS = 100_000
_CHUNK_BYTES = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class CreateBodyError(ValueError):
    """The body breaks a rule: the message is the API's ``error.message``."""


@dataclass
class ParsedRequests:
    """The per-request state of one batch, in input order."""

    custom_ids: list[str] = field(default_factory=list)
    offsets: array[int] = field(default_factory=lambda: array("q"))
    lengths: array[int] = field(default_factory=lambda: array("q"))
    kinds: bytearray = field(default_factory=bytearray)

    def __len__(self) -> int:
        return len(self.custom_ids)


def _readable(text: str) -> str:
    """Undo the latin-1 decoding of a string value (for length checks and error messages)."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


class _Scanner:
    """Reads JSON values and punctuation from a binary file, refilling a text window as needed."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._decoder = json.JSONDecoder()
        self._text = ""
        self._pos = 0
        self._base = 0  # file offset of self._text[0]
        self._eof = False

    def _grow(self) -> None:
        # Keep the unread tail and at least double it, so re-decoding a value larger than one chunk costs
        # amortised linear time.
        tail = self._text[self._pos :]
        self._base += self._pos
        self._pos = 0
        data = self._file.read(max(_CHUNK_BYTES, len(tail)))
        if not data:
            self._eof = True
        self._text = tail + data.decode("latin-1")

    def offset(self) -> int:
        return self._base + self._pos

    def peek(self) -> str:
        """The next non-whitespace character, or "" at the end of the body."""
        while True:
            end = _WHITESPACE.match(self._text, self._pos)
            self._pos = end.end() if end else self._pos
            if self._pos < len(self._text) or self._eof:
                return self._text[self._pos : self._pos + 1]
            self._grow()

    def expect(self, allowed: str, what: str) -> str:
        char = self.peek()
        if not char or char not in allowed:
            found = repr(char) if char else "the end of the body"
            where = f"at byte {self.offset()}, found {found}"
            raise CreateBodyError(f"Request body is not valid JSON: expected {what} {where}")
        self._pos += 1
        return char

    def value(self) -> tuple[Any, int, int]:
        """The next JSON value with its start and end file offsets."""
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._text, self._pos)
            except json.JSONDecodeError as exc:
                if self._eof:
                    at = self._base + exc.pos
                    raise CreateBodyError(f"Request body is not valid JSON: {exc.msg} at byte {at}") from None
                self._grow()
                continue
            if end == len(self._text) and not self._eof:
                self._grow()  # a number or literal may continue in the next chunk
                continue
            start = self._base + self._pos
            self._pos = end
            return value, start, self._base + end


def _parse_requests(scanner: _Scanner, params_in_results: bool) -> ParsedRequests:
    if scanner.peek() != "[":
        raise CreateBodyError("requests: Input should be a valid list")
    scanner.expect("[", "'['")
    parsed = ParsedRequests()
    first_use: dict[str, int] = {}
    if scanner.peek() == "]":
        scanner.expect("]", "']'")
        return parsed
    while True:
        index = len(parsed)
        if index == MAX_REQUESTS:
            raise CreateBodyError(
                f"requests: a batch holds at most {MAX_REQUESTS:,} requests and this body has more; "
                "split the requests into several batches"
            )
        element, start, end = scanner.value()
        if not isinstance(element, dict):
            raise CreateBodyError(
                f"requests.{index}: Input should be a valid dictionary with 'custom_id' and 'params'"
            )
        if isinstance(element.get("custom_id"), str):
            element["custom_id"] = _readable(element["custom_id"])
        try:
            custom_id, kind = request_kind(element, params_in_results=params_in_results)
        except RequestProblem as problem:
            raise CreateBodyError(f"requests.{index}.{problem}") from None
        if custom_id in first_use:
            raise CreateBodyError(
                f"requests.{index}.custom_id: duplicate custom_id {custom_id!r} (first used by "
                f"requests.{first_use[custom_id]}); custom_id values must be unique within a batch"
            )
        first_use[custom_id] = index
        parsed.custom_ids.append(custom_id)
        parsed.offsets.append(start)
        parsed.lengths.append(end - start)
        parsed.kinds.append(kind)
        if scanner.expect(",]", "',' or ']' after a request") == "]":
            return parsed


def parse_create_body(file: IO[bytes], *, params_in_results: bool = False) -> ParsedRequests:
    """Validate a whole create body read from ``file`` and return its per-request state.

    Raises :class:`CreateBodyError` naming the first problem (``requests.<n>.<field>: ...``).
    """
    scanner = _Scanner(file)
    if scanner.peek() != "{":
        raise CreateBodyError("Request body should be a JSON object with a 'requests' list")
    scanner.expect("{", "'{'")
    parsed: ParsedRequests | None = None
    if scanner.peek() != "}":
        while True:
            key, _, _ = scanner.value()
            if not isinstance(key, str):
                raise CreateBodyError(
                    f"Request body is not valid JSON: key expected at byte {scanner.offset()}"
                )
            scanner.expect(":", "':'")
            if key == "requests":
                parsed = _parse_requests(scanner, params_in_results)
            else:
                scanner.value()  # other top-level fields are accepted and ignored
            if scanner.expect(",}", "',' or '}'") == "}":
                break
    else:
        scanner.expect("}", "'}'")
    if scanner.peek():
        raise CreateBodyError(f"Request body is not valid JSON: extra data at byte {scanner.offset()}")
    if parsed is None:
        raise CreateBodyError("requests: Field required")
    if not parsed.custom_ids:
        raise CreateBodyError("requests: List should have at least 1 item after validation, not 0")
    return parsed
