"""Validating batch requests and spooling them into ready-to-send bodies, before anything is paid for.

Every request is checked against the API's rules as it streams past (nothing is held in memory but the
custom_ids), encoded compactly, and appended to a temp file that already is a complete create body
``{"requests":[...]}``. When the next request would break a batch's count or byte limit a new file starts,
so input of any size becomes a list of batches in one pass. Problems are collected (up to a cap) and
raised together, naming line / custom_id, field, rule and fix; if there is any, no file is left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from .errors import InvalidInputError, RequestValidationError, ValidationProblem

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_PROBLEMS_SHOWN",
    "MAX_REQUESTS_PER_BATCH",
    "EncodedRequest",
    "RequestEncoder",
    "SourcedRequest",
    "SpooledBatch",
    "spool_batches",
]

MAX_REQUESTS_PER_BATCH = 100_000
MAX_BATCH_BYTES = 256_000_000
MAX_PROBLEMS_SHOWN = 50

_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_BODY_PREFIX = b'{"requests":['
_BODY_SUFFIX = b"]}"
_EMPTY_BODY_BYTES = len(_BODY_PREFIX) + len(_BODY_SUFFIX)
_REQUEST_KEYS = frozenset({"custom_id", "params"})
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class _ParamRule:
    """A rule for one field of ``params``: ``problem`` (formatted with ``value``) says what is wrong."""

    name: str
    valid: Callable[[Any], bool]
    problem: str
    fix: str
    required: bool = True  # a required field that is missing (or null) reads "is required"


# The request-body rules of the API reference (docs.anthropic.com/en/api/creating-message-batches) checked
# locally, one row per field.
_PARAM_RULES = (
    _ParamRule(
        "model",
        lambda v: isinstance(v, str) and bool(v),
        "must be a non-empty string, got {value!r:.80}",
        'set "model" (e.g. "claude-sonnet-4-5") in every request, or pass default_model',
    ),
    _ParamRule(
        "max_tokens",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "must be an integer >= 1, got {value!r:.80} (0, the cache pre-warm, is not supported in batches)",
        'set "max_tokens" to the largest reply you accept, e.g. 1024',
    ),
    _ParamRule(
        "messages",
        lambda v: isinstance(v, list) and bool(v),
        "must be a non-empty list of messages",
        'add "messages": [{"role": "user", "content": "..."}]',
    ),
    _ParamRule(
        "stream",
        lambda v: v is False,
        "must not be set (got {value!r:.80}): batch requests are not streamed",
        'remove "stream" from params',
        required=False,
    ),
)


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """One valid request as compact JSON bytes, ready to go into a body (plus what a cost plan needs)."""

    custom_id: str
    data: bytes
    model: str
    max_tokens: int


@dataclass(frozen=True, slots=True)
class SourcedRequest:
    """A request built from an input record, with where it came from for every problem it has.

    ``origin`` (e.g. ``"records.csv line 12"``) replaces the item number in problems; ``problems`` are ones
    found while building it (a template that did not render), reported as they are and the request skipped.
    """

    request: Mapping[str, Any]
    origin: str
    problems: tuple[ValidationProblem, ...] = ()


class RequestEncoder:
    """Validates and encodes requests one at a time, remembering custom_ids across the whole input.

    ``encode``/``encode_line`` return ``None`` for a request with problems; the problems accumulate in
    ``problems`` (at most ``max_problems``; ``truncated`` tells that more were found). ``error()`` builds
    the exception that reports them all.
    """

    def __init__(
        self,
        *,
        default_model: str | None = None,
        max_bytes: int = MAX_BATCH_BYTES,
        max_problems: int = MAX_PROBLEMS_SHOWN,
    ) -> None:
        self.default_model = default_model
        self.max_bytes = max_bytes
        self.max_problems = max_problems
        self.problems: list[ValidationProblem] = []
        self.found = 0
        self._seen: dict[str, str] = {}

    @property
    def truncated(self) -> bool:
        """True once more problems were found than are reported: further input need not be read."""
        return self.found > len(self.problems)

    def report(self, rule: str, **where: Any) -> None:
        """Record a broken rule; ``where`` are :class:`ValidationProblem`'s place and fix fields."""
        self.add(ValidationProblem(rule, **where))

    def add(self, problem: ValidationProblem) -> None:
        self.found += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(problem)

    def error(self) -> RequestValidationError:
        return RequestValidationError(list(self.problems), truncated=self.truncated)

    def encode_line(self, raw: bytes | str, *, line: int) -> EncodedRequest | None:
        """Validate and encode one JSONL line (``line`` is its 1-based number in the file)."""
        try:
            request = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            snippet = bytes(raw[:80]) if isinstance(raw, bytes) else raw[:80]
            self.report(
                f"not valid JSON ({exc}); the line starts with {snippet!r}",
                line=line,
                fix='write one JSON object per line: {"custom_id": ..., "params": {...}}',
            )
            return None
        return self._encode(request, line=line, item=None)

    def encode(
        self, request: object, *, item: int | None = None, origin: str | None = None
    ) -> EncodedRequest | None:
        """Validate and encode one request given as a mapping (``item`` is its 1-based position)."""
        return self._encode(request, line=None, item=item, origin=origin)

    def encode_sourced(self, sourced: SourcedRequest) -> EncodedRequest | None:
        """Report the problems found while building ``sourced``, or validate and encode its request."""
        for problem in sourced.problems:
            self.add(problem)
        if sourced.problems:
            return None
        return self.encode(sourced.request, origin=sourced.origin)

    def _encode(
        self, request: object, *, line: int | None, item: int | None, origin: str | None = None
    ) -> EncodedRequest | None:
        where: dict[str, Any] = {"line": line, "item": item, "origin": origin}
        if not isinstance(request, Mapping):
            self.report(
                f"a request must be an object with 'custom_id' and 'params', got {type(request).__name__}",
                fix='write it as {"custom_id": "...", "params": {"model": ..., "max_tokens": ..., '
                '"messages": [...]}}',
                **where,
            )
            return None
        problems_before = self.found
        custom_id = self._check_custom_id(request, where)
        if isinstance(custom_id, str):
            where["custom_id"] = custom_id
        for key in sorted(set(request) - _REQUEST_KEYS, key=str):
            self.report(
                "unknown field: a request has only 'custom_id' and 'params'",
                field=str(key),
                fix="remove it, or move Messages parameters inside 'params'",
                **where,
            )
        params = self._check_params(request, where)
        if custom_id is None or params is None or self.found > problems_before:
            return None
        try:
            data = json.dumps(
                {"custom_id": custom_id, "params": params},
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            self.report(
                f"cannot be encoded as JSON: {exc}",
                field="params",
                fix="use only JSON values (str, int, float, bool, None, list, dict); no NaN or infinity",
                **where,
            )
            return None
        if len(data) + _EMPTY_BODY_BYTES > self.max_bytes:
            self.report(
                f"the request alone is {len(data):,} bytes, "
                f"over the {self.max_bytes:,}-byte limit of a batch",
                fix="shorten this request (e.g. move large documents out of the prompt)",
                **where,
            )
            return None
        return EncodedRequest(custom_id, data, params["model"], params["max_tokens"])

    def _check_custom_id(self, request: Mapping[Any, Any], where: dict[str, Any]) -> str | None:
        fix = "use 1-64 characters from a-z, A-Z, 0-9, '_' and '-', unique within the input"
        if "custom_id" not in request:
            self.report("custom_id is missing", field="custom_id", fix=fix, **where)
            return None
        custom_id = request["custom_id"]
        if not isinstance(custom_id, str):
            self.report(
                f"custom_id must be a string, got {type(custom_id).__name__} {custom_id!r:.80}",
                field="custom_id",
                fix=fix,
                **where,
            )
            return None
        if not _CUSTOM_ID.fullmatch(custom_id):
            self.report(
                f"custom_id {custom_id!r:.80} does not match ^[a-zA-Z0-9_-]{{1,64}}$ "
                f"({len(custom_id)} characters)",
                field="custom_id",
                fix=fix,
                **where,
            )
            return None
        if where["origin"] is not None:
            here = where["origin"]
        elif where["line"] is not None:
            here = f"line {where['line']}"
        else:
            here = f"request #{where['item']}"
        first = self._seen.setdefault(custom_id, here)
        if first != here:
            self.report(
                f"duplicate custom_id (first used at {first}); results are matched by custom_id",
                custom_id=custom_id,
                field="custom_id",
                fix="give every request its own custom_id",
                **where,
            )
            return None
        return custom_id

    def _check_params(self, request: Mapping[Any, Any], where: dict[str, Any]) -> dict[str, Any] | None:
        if "params" not in request:
            self.report(
                "params is missing",
                field="params",
                fix="add the Messages request body as 'params' (model, max_tokens, messages, ...)",
                **where,
            )
            return None
        raw_params = request["params"]
        if not isinstance(raw_params, Mapping):
            self.report(
                f"params must be an object, got {type(raw_params).__name__}",
                field="params",
                fix="pass the Messages request body as a JSON object",
                **where,
            )
            return None
        params = dict(raw_params)
        if params.get("model") is None and self.default_model is not None:
            params["model"] = self.default_model
        ok = True
        for rule in _PARAM_RULES:
            if not rule.required and rule.name not in params:
                continue
            value = params.get(rule.name)
            if rule.valid(value):
                continue
            text = "is required" if rule.required and value is None else rule.problem.format(value=value)
            self.report(f"params.{rule.name} {text}", field=f"params.{rule.name}", fix=rule.fix, **where)
            ok = False
        return params if ok else None


@dataclass(frozen=True)
class SpooledBatch:
    """A ready-to-send create body in a temp file: ``{"requests":[...]}``, compact JSON.

    ``nbytes`` is the exact body size (the content-length), ``fingerprint`` the sha256 of the body (the
    same input gives the same fingerprint, which the Airflow layer uses to recognise a retried submit).
    Remove the file with ``cleanup()`` or by using the object as a context manager.
    """

    path: Path
    request_count: int
    nbytes: int
    first_custom_id: str
    last_custom_id: str
    fingerprint: str

    def cleanup(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    async def aiter_body(self, chunk_size: int = _READ_CHUNK) -> AsyncIterator[bytes]:
        """The body in chunks, read off the event loop; each call starts from the beginning (for retries)."""
        handle = await asyncio.to_thread(self.path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()


class _SpoolFile:
    """The batch body being written: prefix, requests separated by commas, suffix on ``finish``."""

    def __init__(self, spool_dir: str | os.PathLike[str] | None) -> None:
        fd, name = tempfile.mkstemp(prefix="airflow-batches-", suffix=".json", dir=spool_dir)
        self.path = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "wb", buffering=_READ_CHUNK)
        self._hash = hashlib.sha256()
        self.count = 0
        self.nbytes = _EMPTY_BODY_BYTES
        self._first = self._last = ""
        self._write(_BODY_PREFIX)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)

    def size_with(self, request: EncodedRequest) -> int:
        return self.nbytes + len(request.data) + (1 if self.count else 0)

    def add(self, request: EncodedRequest) -> None:
        if self.count:
            self._write(b",")
        else:
            self._first = request.custom_id
        self._write(request.data)
        self.nbytes = self.size_with(request)
        self.count += 1
        self._last = request.custom_id

    def finish(self) -> SpooledBatch:
        self._write(_BODY_SUFFIX)
        self._file.close()
        return SpooledBatch(
            path=self.path,
            request_count=self.count,
            nbytes=self.nbytes,
            first_custom_id=self._first,
            last_custom_id=self._last,
            fingerprint=self._hash.hexdigest(),
        )

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def spool_batches(
    items: Iterable[Mapping[str, Any] | SourcedRequest | bytes | str],
    *,
    max_requests: int = MAX_REQUESTS_PER_BATCH,
    max_bytes: int = MAX_BATCH_BYTES,
    default_model: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    max_problems: int = MAX_PROBLEMS_SHOWN,
    observe: Callable[[EncodedRequest], None] | None = None,
    select: Callable[[str], bool] | None = None,
) -> list[SpooledBatch]:
    """Validate ``items`` and write them as one or more ready-to-send batch bodies, in one pass.

    ``items`` are request mappings, JSONL lines (``bytes`` or ``str``; line numbers count from 1, blank
    lines are skipped but counted) or :class:`SourcedRequest` (problems name their ``origin``).
    A new batch starts whenever the next request would exceed
    ``max_requests`` or ``max_bytes`` (measured on the whole body). Raises ``RequestValidationError`` with
    every problem found (and leaves no file behind) if any request breaks a rule or there is none.
    ``observe`` is called with every request written (e.g. to tally a cost plan in the same pass).

    ``select`` (a predicate on ``custom_id``) writes only the requests it accepts, encoded exactly as in a
    full run (a resubmit round sends the same bytes again); the whole input is still validated.
    """
    if not 1 <= max_requests <= MAX_REQUESTS_PER_BATCH:
        raise InvalidInputError(
            f"max_requests must be between 1 and {MAX_REQUESTS_PER_BATCH:,}, got {max_requests}"
        )
    if not _EMPTY_BODY_BYTES < max_bytes <= MAX_BATCH_BYTES:
        raise InvalidInputError(
            f"max_bytes must be between {_EMPTY_BODY_BYTES + 1} and {MAX_BATCH_BYTES:,}, got {max_bytes}"
        )
    encoder = RequestEncoder(default_model=default_model, max_bytes=max_bytes, max_problems=max_problems)
    batches: list[SpooledBatch] = []
    current: _SpoolFile | None = None
    try:
        for position, item in enumerate(items, start=1):
            if isinstance(item, bytes | str):
                if not item.strip():
                    continue
                encoded = encoder.encode_line(item, line=position)
            elif isinstance(item, SourcedRequest):
                encoded = encoder.encode_sourced(item)
            else:
                encoded = encoder.encode(item, item=position)
            if encoder.truncated:
                break
            # After the first problem nothing will be sent: keep validating, stop writing.
            if encoded is None or encoder.problems:
                continue
            if select is not None and not select(encoded.custom_id):
                continue
            if current is not None and (
                current.count >= max_requests or current.size_with(encoded) > max_bytes
            ):
                batches.append(current.finish())
                current = None
            if current is None:
                current = _SpoolFile(spool_dir)
            current.add(encoded)
            if observe is not None:
                observe(encoded)
        if current is not None:
            batches.append(current.finish())
            current = None
        if not batches and not encoder.problems:
            encoder.report("no requests: a batch needs at least one", fix="check the input is not empty")
        if encoder.problems:
            raise encoder.error()
    except BaseException:
        if current is not None:
            current.discard()
        for batch in batches:
            batch.cleanup()
        raise
    return batches
