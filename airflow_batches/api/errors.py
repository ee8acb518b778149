"""Every exception the Message Batches client raises.

The hierarchy, drawn once::

    BatchAPIError                      base of everything below
    ├── InvalidInputError (ValueError) bad input caught before any request is sent
    │   ├── InvalidBatchIdError        empty or malformed batch id (never put into a URL)
    │   └── RequestValidationError     requests that break the API's rules; ``.problems`` lists all of them
    ├── UnsafeURLError                 a results_url that is not a URL
    ├── APIConnectionError             no HTTP response: refused, reset, DNS, TLS
    │   └── APITimeoutError            the request timed out
    ├── APIStatusError                 the server answered with an error status
    │   ├── BadRequestError            400 invalid_request_error
    │   ├── AuthenticationError        401 authentication_error
    │   ├── BillingError               402 billing_error
    │   ├── PermissionDeniedError      403 permission_error
    │   ├── NotFoundError              404 not_found_error
    │   ├── RequestTimeoutError        408
    │   ├── ConflictError              409 conflict_error
    │   ├── RequestTooLargeError       413 request_too_large (often an HTML page from the edge, not JSON)
    │   ├── RateLimitError             429 rate_limit_error
    │   ├── InternalServerError        500 and any other 5xx
    │   └── OverloadedError            529 overloaded_error
    ├── AmbiguousCreateError           create failed after the body may have reached the server:
    │                                  a batch may exist; list batches before creating again
    ├── BatchNotEndedError             results asked for before processing_status == "ended"
    ├── ResultsArchivedError           results of an archived batch (about 29 days after creation)
    ├── ResultsStreamError             the results stream broke: cut short, no final newline, a line that is
    │                                  not JSON or not a result
    └── UnexpectedResponseError        a success status with a body that is not the expected object

Every error's message is self-contained (what happened, the request id when there is one, what to do) and
never contains the API key.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousCreateError",
    "AuthenticationError",
    "BadRequestError",
    "BatchAPIError",
    "BatchNotEndedError",
    "BillingError",
    "ConflictError",
    "InternalServerError",
    "InvalidBatchIdError",
    "InvalidInputError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "RequestValidationError",
    "ResultsArchivedError",
    "ResultsStreamError",
    "UnexpectedResponseError",
    "UnsafeURLError",
    "ValidationProblem",
]


class BatchAPIError(Exception):
    """Base class of every error raised by :mod:`airflow_batches.api`."""


class InvalidInputError(BatchAPIError, ValueError):
    """Input rejected locally, before any request was sent."""


class InvalidBatchIdError(InvalidInputError):
    """A batch id that is empty or contains characters that could change the URL it is put into."""


class ValidationProblem:
    """One broken rule in a request list: where (line and/or custom_id, field), what, and how to fix it."""

    __slots__ = ("custom_id", "field", "fix", "item", "line", "origin", "rule")

    def __init__(
        self,
        rule: str,
        *,
        line: int | None = None,
        custom_id: str | None = None,
        field: str | None = None,
        fix: str | None = None,
        item: int | None = None,
        origin: str | None = None,
    ) -> None:
        self.rule = rule
        self.line = line
        # 1-based position in the input, shown when there is no line number (requests given as mappings).
        self.item = item
        # Where a request rendered from a record came from, e.g. "records.csv line 12" (shown instead).
        self.origin = origin
        self.custom_id = custom_id
        self.field = field
        self.fix = fix

    def __str__(self) -> str:
        where = []
        if self.origin is not None:
            where.append(self.origin)
        elif self.line is not None:
            where.append(f"line {self.line}")
        elif self.item is not None:
            where.append(f"request #{self.item}")
        if self.custom_id is not None:
            where.append(f"custom_id {self.custom_id!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        text = f"{', '.join(where)}: {self.rule}" if where else self.rule
        return f"{text} (fix: {self.fix})" if self.fix else text

    def __repr__(self) -> str:
        return f"ValidationProblem({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValidationProblem) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class RequestValidationError(InvalidInputError):
    """Requests that break the API's rules. ``problems`` holds every problem found (up to a cap)."""

    def __init__(self, problems: list[ValidationProblem], *, truncated: bool = False) -> None:
        self.problems = problems
        self.truncated = truncated
        lines = [
            f"{len(problems)}{'+' if truncated else ''} problem(s) in the batch requests; nothing was sent:"
        ]
        lines += [f"  - {p}" for p in problems]
        if truncated:
            lines.append("  ... (more problems not shown; fix these first)")
        super().__init__("\n".join(lines))


class UnsafeURLError(BatchAPIError):
    """The API gave a ``results_url`` that cannot be parsed as a URL.

    (One on another origin is not an error: the canonical results path under the base URL is fetched
    instead, and the key never goes to that other origin.)
    """


class APIConnectionError(BatchAPIError):
    """The request got no HTTP response (refused, reset, DNS, TLS)."""

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None) -> None:
        self.method = method
        self.url = url
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIStatusError(BatchAPIError):
    """The server answered with an error status.

    ``status_code``, ``error_type`` (e.g. ``invalid_request_error``), ``api_message``, ``request_id`` and
    ``body`` (parsed JSON, or the raw text when the body was not JSON) describe what it said.
    """

    def __init__(
        self,
        *,
        status_code: int,
        error_type: str | None,
        api_message: str,
        request_id: str | None,
        body: Any = None,
        method: str | None = None,
        url: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.error_type = error_type
        self.api_message = api_message
        self.request_id = request_id
        self.body = body
        self.method = method
        self.url = url
        parts = [f"HTTP {status_code}"]
        if error_type:
            parts.append(error_type)
        message = f"{' '.join(parts)}: {api_message}"
        if method and url:
            message += f" ({method} {url})"
        message += f" [request-id: {request_id or 'none'}]"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class BadRequestError(APIStatusError):
    """400 invalid_request_error."""


class AuthenticationError(APIStatusError):
    """401 authentication_error."""


class BillingError(APIStatusError):
    """402 billing_error."""


class PermissionDeniedError(APIStatusError):
    """403 permission_error."""


class NotFoundError(APIStatusError):
    """404 not_found_error."""


class RequestTimeoutError(APIStatusError):
    """408."""


class ConflictError(APIStatusError):
    """409 conflict_error."""


class RequestTooLargeError(APIStatusError):
    """413 request_too_large."""


class RateLimitError(APIStatusError):
    """429 rate_limit_error."""


class InternalServerError(APIStatusError):
    """500 api_error, and any other 5xx without a class of its own."""


class OverloadedError(APIStatusError):
    """529 overloaded_error."""


class AmbiguousCreateError(BatchAPIError):
    """``create`` failed after its body may have reached the server, so a batch may have been created.

    It is not retried automatically, to avoid paying twice. ``cause`` is the underlying error.
    """

    def __init__(self, message: str, *, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(message)


class BatchNotEndedError(BatchAPIError):
    """Results were asked for before the batch's ``processing_status`` became ``ended``."""

    def __init__(self, batch_id: str, processing_status: str) -> None:
        self.batch_id = batch_id
        self.processing_status = processing_status
        super().__init__(
            f"batch {batch_id} is {processing_status!r}, not 'ended': its results are not available yet. "
            "Wait for it (BatchSensor, or BatchCreateOperator with wait_for_completion=True) "
            "before fetching results."
        )


class ResultsArchivedError(BatchAPIError):
    """The batch's results were archived (about 29 days after creation) and can no longer be downloaded."""

    def __init__(self, batch_id: str, archived_at: str | None) -> None:
        self.batch_id = batch_id
        self.archived_at = archived_at
        super().__init__(
            f"batch {batch_id} was archived at {archived_at or 'an unknown time'}: "
            "its results can no longer be downloaded (the API keeps results for 29 days after creation)."
        )


class ResultsStreamError(BatchAPIError):
    """The results stream broke or carried something that is not a result line."""

    def __init__(
        self,
        message: str,
        *,
        batch_id: str | None = None,
        line: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.batch_id = batch_id
        self.line = line
        self.request_id = request_id
        if request_id:
            message += f" [request-id: {request_id}]"
        super().__init__(message)


class UnexpectedResponseError(BatchAPIError):
    """The server answered with a success status but a body that is not the expected object."""
