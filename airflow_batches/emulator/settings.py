"""The emulator's knobs: behaviour (:class:`ServerSettings`) and fault injection (:class:`FaultSettings`).

Both are validated pydantic models so the command line and the admin endpoints share one set of rules and
one set of error messages.
"""

from __future__ import annotations

from typing import Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FAULT_STATUSES",
    "OPERATIONS",
    "RESULT_ERROR_TYPES",
    "RETRY_AFTER_MODES",
    "FaultSettings",
    "Operation",
    "ServerSettings",
]

Operation = Literal["create", "retrieve", "list", "cancel", "delete", "results", "count_tokens"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)

FaultStatus = Literal[429, 500, 504, 529]
FAULT_STATUSES: tuple[int, ...] = get_args(FaultStatus)

RetryAfterMode = Literal["both", "seconds", "ms", "date"]
RETRY_AFTER_MODES: tuple[str, ...] = get_args(RetryAfterMode)

# The error types a request can come back ``errored`` with (the API's error envelope types).
ResultErrorType = Literal[
    "overloaded_error",
    "api_error",
    "rate_limit_error",
    "timeout_error",
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
]
RESULT_ERROR_TYPES: tuple[str, ...] = get_args(ResultErrorType)


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def updated(self, changes: dict[str, Any]) -> Self:
        """A validated copy with ``changes`` applied (raises ``pydantic.ValidationError``)."""
        return self.model_validate({**self.model_dump(), **changes})


class ServerSettings(_Settings):
    """How the emulated API behaves, including the choices made for unconfirmed details of the real API."""

    api_key: str | None = Field(default=None, min_length=1, repr=False)
    processing_seconds: float = Field(default=2.0, ge=0)
    cancel_seconds: float = Field(default=1.0, ge=0)
    require_version: bool = True
    max_body_bytes: int = Field(default=256_000_000, ge=1)
    html_413: bool = False
    params_validation: Literal["sync", "per_request"] = "sync"
    cancel_ended_status: Literal[400, 409] = 400
    archived_results_status: Literal[400, 404] = 404
    clear_results_url_on_archive: bool = False
    invalid_output_rate: float = Field(default=0.0, ge=0, le=1)
    # Where results_url points instead of this server (as behind a gateway that passes the API's JSON
    # through, so results_url names the API's own host).
    results_base_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")

    def public(self) -> dict[str, Any]:
        """The settings as shown by the admin endpoint: the key itself is never shown."""
        shown = self.model_dump(exclude={"api_key"})
        shown["api_key_required"] = self.api_key is not None
        return shown


class FaultSettings(_Settings):
    """Injected failures and slowness, applied to API requests only (never to ``/_emulator/``)."""

    latency_ms: float = Field(default=0.0, ge=0)
    fail_rate: float = Field(default=0.0, ge=0, le=1)
    fail_status: FaultStatus = 429
    fail_first: int = Field(default=0, ge=0)
    fail_ops: list[Operation] = Field(default_factory=lambda: list(OPERATIONS))
    seed: int | None = None
    retry_after_seconds: float | None = Field(default=1.0, ge=0)
    retry_after_mode: RetryAfterMode = "both"
    should_retry: bool | None = None
    cut_results_after: int | None = Field(default=None, ge=0)
    cut_results_times: int | None = Field(default=None, ge=1)
    slow_results_ms: float = Field(default=0.0, ge=0)
    results_drop_lines: int = Field(default=0, ge=0)
    results_duplicate_line: bool = False
    transient_errored_rate: float = Field(default=0.0, ge=0, le=1)
    transient_error_type: ResultErrorType = "overloaded_error"
    transient_expired_rate: float = Field(default=0.0, ge=0, le=1)
    transient_seed: int = 0

    @model_validator(mode="after")
    def _rates_fit(self) -> Self:
        if self.transient_errored_rate + self.transient_expired_rate > 1:
            raise ValueError(
                "transient_errored_rate + transient_expired_rate must be at most 1 (each request is drawn "
                f"once), got {self.transient_errored_rate} + {self.transient_expired_rate}"
            )
        return self
