"""Pydantic models of the Message Batches API wire format.

Every model keeps fields it does not know (``extra="allow"``): the API adds fields over time and a client
that rejects them breaks on a server upgrade. Unknown content-block types and result types are kept as
generic models for the same reason. The emulator serializes these same models, so the wire format is
defined once, here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Tag

__all__ = [
    "COUNTED_FIELDS",
    "COUNT_KEYS",
    "RESULT_TYPES",
    "ContentBlock",
    "DeletedMessageBatch",
    "ErrorDetail",
    "ErrorResponse",
    "Message",
    "MessageBatch",
    "MessageBatchCanceledResult",
    "MessageBatchErroredResult",
    "MessageBatchExpiredResult",
    "MessageBatchIndividualResponse",
    "MessageBatchPage",
    "MessageBatchRequestCounts",
    "MessageBatchResult",
    "MessageBatchSucceededResult",
    "MessageBatchUnknownResult",
    "MessageTokensCount",
    "ProcessingStatus",
    "RedactedThinkingBlock",
    "TextBlock",
    "ThinkingBlock",
    "ToolUseBlock",
    "UnknownContentBlock",
    "Usage",
]

ProcessingStatus = Literal["in_progress", "canceling", "ended"]
ResultType = Literal["succeeded", "errored", "canceled", "expired"]
#: The result types in the API's order, and the keys of ``request_counts`` (those plus ``processing``).
RESULT_TYPES: tuple[str, ...] = get_args(ResultType)
COUNT_KEYS: tuple[str, ...] = ("processing", *RESULT_TYPES)


class APIModel(BaseModel):
    """Base of every wire model: unknown fields are kept and round-trip through ``model_dump``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class MessageBatchRequestCounts(APIModel):
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired


class MessageBatch(APIModel):
    id: str
    type: Literal["message_batch"] = "message_batch"
    processing_status: ProcessingStatus
    request_counts: MessageBatchRequestCounts
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    archived_at: datetime | None = None
    results_url: str | None = None


class DeletedMessageBatch(APIModel):
    id: str
    type: Literal["message_batch_deleted"] = "message_batch_deleted"


# The body fields ``POST /v1/messages/count_tokens`` takes: a Messages request without the generation
# settings; anything else is a 400 "Extra inputs are not permitted".
COUNTED_FIELDS: tuple[str, ...] = (
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "cache_control",
    "context_management",
    "mcp_servers",
)


class MessageTokensCount(APIModel):
    """The answer of ``POST /v1/messages/count_tokens``."""

    input_tokens: int


class MessageBatchPage(APIModel):
    """One page of ``GET /v1/messages/batches``; ``first_id``/``last_id`` are the next page's cursors."""

    data: list[MessageBatch]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class ErrorDetail(APIModel):
    type: str
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(APIModel):
    """The error envelope: ``{"type": "error", "error": {...}, "request_id": ...}``."""

    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str | None = None


# --- Message and content blocks -------------------------------------------------------------------------


class TextBlock(APIModel):
    type: Literal["text"] = "text"
    text: str
    citations: list[dict[str, Any]] | None = None


class ThinkingBlock(APIModel):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str


class RedactedThinkingBlock(APIModel):
    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str


class ToolUseBlock(APIModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: Any


class UnknownContentBlock(APIModel):
    """Any block type this client does not model (server tools, code execution, ...), kept as sent."""

    type: str


_KNOWN_BLOCKS = {"text", "thinking", "redacted_thinking", "tool_use"}


def _tag_of(value: Any, known: set[str]) -> str:
    """The ``type`` of a raw or built model if it is one of ``known``, else ``"unknown"``.

    Unknown types go to a generic model instead of failing: the API adds block and result types over time.
    """
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in known else "unknown"


def _block_tag(value: Any) -> str:
    return _tag_of(value, _KNOWN_BLOCKS)


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[UnknownContentBlock, Tag("unknown")],
    Discriminator(_block_tag),
]


class CacheCreation(APIModel):
    ephemeral_5m_input_tokens: int | None = None
    ephemeral_1h_input_tokens: int | None = None


class Usage(APIModel):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: CacheCreation | None = None
    server_tool_use: dict[str, Any] | None = None
    output_tokens_details: dict[str, Any] | None = None
    service_tier: str | None = None


class Message(APIModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ContentBlock]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    stop_details: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    usage: Usage


# --- Results ---------------------------------------------------------------------------------------------


class MessageBatchSucceededResult(APIModel):
    type: Literal["succeeded"] = "succeeded"
    message: Message


class MessageBatchErroredResult(APIModel):
    type: Literal["errored"] = "errored"
    error: ErrorResponse


class MessageBatchCanceledResult(APIModel):
    type: Literal["canceled"] = "canceled"


class MessageBatchExpiredResult(APIModel):
    type: Literal["expired"] = "expired"


class MessageBatchUnknownResult(APIModel):
    """A result type this client does not model yet, kept as sent (its fields are in ``model_extra``)."""

    type: str


_KNOWN_RESULTS = set(RESULT_TYPES)


def _result_tag(value: Any) -> str:
    return _tag_of(value, _KNOWN_RESULTS)


MessageBatchResult = Annotated[
    Annotated[MessageBatchSucceededResult, Tag("succeeded")]
    | Annotated[MessageBatchErroredResult, Tag("errored")]
    | Annotated[MessageBatchCanceledResult, Tag("canceled")]
    | Annotated[MessageBatchExpiredResult, Tag("expired")]
    | Annotated[MessageBatchUnknownResult, Tag("unknown")],
    Discriminator(_result_tag),
]


class MessageBatchIndividualResponse(APIModel):
    """One line of a batch's results JSONL."""

    custom_id: str
    result: MessageBatchResult
