"""Validating and encoding batch requests, before anything is paid for (``spool`` writes them into bodies).

Every request is checked against the API's rules as it streams past (nothing is held in memory but the
custom_ids), encoded compactly, and appended to a temp file that already is a complete create body
``{"requests":[...]}``. When the next request would break a batch's count or byte limit a new file starts,
so input of any size becomes a list of batches in one pass. Problems are collected (up to a cap) and
raised together, naming line / custom_id, field, rule and fix; if there is any, no file is left behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import RequestValidationError, ValidationProblem

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_PROBLEMS_SHOWN",
    "MAX_REQUESTS_PER_BATCH",
    "EncodedRequest",
    "RequestEncoder",
    "SourcedRequest",
]

MAX_REQUESTS_PER_BATCH = 100_000
MAX_BATCH_BYTES = 256_000_000
MAX_PROBLEMS_SHOWN = 50

_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
BODY_PREFIX = b'{"requests":['
BODY_SUFFIX = b"]}"
EMPTY_BODY_BYTES = len(BODY_PREFIX) + len(BODY_SUFFIX)
_REQUEST_KEYS = frozenset({"custom_id", "params"})


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
        if len(data) + EMPTY_BODY_BYTES > self.max_bytes:
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
