"""Wire models: every example line shape of the API reference, the batch objects, unknown fields kept."""

from __future__ import annotations

import json

import pytest
from api_helpers import batch_json
from pydantic import ValidationError

from airflow_batches.api import (
    DeletedMessageBatch,
    ErrorResponse,
    MessageBatch,
    MessageBatchCanceledResult,
    MessageBatchErroredResult,
    MessageBatchExpiredResult,
    MessageBatchIndividualResponse,
    MessageBatchPage,
    MessageBatchSucceededResult,
    MessageBatchUnknownResult,
    TextBlock,
    UnknownContentBlock,
)

# The four example result lines of the API reference, verbatim
# (docs.anthropic.com/en/api/retrieving-message-batch-results).
SUCCEEDED = (
    '{"custom_id":"req-1","result":{"type":"succeeded","message":{"id":"msg_01AbC","type":"message","role":'
    '"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Paris."}],"stop_reason":"end_turn",'
    '"stop_sequence":null,"usage":{"input_tokens":14,"output_tokens":3,"cache_creation_input_tokens":0,'
    '"cache_read_input_tokens":0,"service_tier":"batch"}}}}'
)
ERRORED = (
    '{"custom_id":"req-2","result":{"type":"errored","error":{"type":"error","error":{"type":'
    '"invalid_request_error","message":"max_tokens: Field required"},"request_id":null}}}'
)
CANCELED = '{"custom_id":"req-3","result":{"type":"canceled"}}'
EXPIRED = '{"custom_id":"req-4","result":{"type":"expired"}}'


def test_succeeded_line() -> None:
    line = MessageBatchIndividualResponse.model_validate_json(SUCCEEDED)
    assert line.custom_id == "req-1"
    assert isinstance(line.result, MessageBatchSucceededResult)
    message = line.result.message
    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "Paris."
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn",
        14,
        3,
    )
    assert message.usage.service_tier == "batch"


def test_errored_line_keeps_the_inner_error_type() -> None:
    line = MessageBatchIndividualResponse.model_validate_json(ERRORED)
    assert isinstance(line.result, MessageBatchErroredResult)
    assert line.result.error.error.type == "invalid_request_error"
    assert line.result.error.error.message == "max_tokens: Field required"
    assert line.result.error.request_id is None


@pytest.mark.parametrize(
    ("raw", "cls"), [(CANCELED, MessageBatchCanceledResult), (EXPIRED, MessageBatchExpiredResult)]
)
def test_canceled_and_expired_lines(raw: str, cls: type) -> None:
    assert isinstance(MessageBatchIndividualResponse.model_validate_json(raw).result, cls)


@pytest.mark.parametrize("raw", [SUCCEEDED, ERRORED, CANCELED, EXPIRED])
def test_every_example_line_round_trips(raw: str) -> None:
    line = MessageBatchIndividualResponse.model_validate_json(raw)
    assert line.model_dump(mode="json", exclude_unset=True) == json.loads(raw)


def test_message_batch_fields_and_counts() -> None:
    batch = MessageBatch.model_validate(batch_json(status="ended"))
    assert batch.processing_status == "ended"
    assert batch.request_counts.total == 2
    assert batch.results_url == "https://api.anthropic.com/v1/messages/batches/msgbatch_01/results"
    assert batch.ended_at is not None and batch.archived_at is None


def test_message_batch_rejects_an_unknown_status() -> None:
    with pytest.raises(ValidationError):
        MessageBatch.model_validate(batch_json(status="paused"))


def test_list_page_and_deleted() -> None:
    page = MessageBatchPage.model_validate(
        {
            "data": [batch_json("msgbatch_a"), batch_json("msgbatch_b")],
            "has_more": True,
            "first_id": "msgbatch_a",
            "last_id": "msgbatch_b",
        }
    )
    assert [b.id for b in page.data] == ["msgbatch_a", "msgbatch_b"]
    assert page.has_more and page.last_id == "msgbatch_b"
    empty = MessageBatchPage.model_validate(
        {"data": [], "has_more": False, "first_id": None, "last_id": None}
    )
    assert empty.first_id is None
    deleted = DeletedMessageBatch.model_validate({"id": "msgbatch_a", "type": "message_batch_deleted"})
    assert deleted.id == "msgbatch_a"


def test_error_envelope() -> None:
    envelope = ErrorResponse.model_validate(
        {
            "type": "error",
            "error": {"type": "not_found_error", "message": "no such batch", "details": {"error_code": "x"}},
            "request_id": "req_1",
        }
    )
    assert envelope.error.type == "not_found_error"
    assert envelope.error.details == {"error_code": "x"}
    assert envelope.request_id == "req_1"


def test_unknown_fields_are_kept_top_level_and_nested() -> None:
    raw = json.loads(SUCCEEDED)
    raw["new_top_level"] = {"a": 1}
    raw["result"]["message"]["usage"]["brand_new_counter"] = 7
    raw["result"]["message"]["content"][0]["annotations"] = ["x"]
    raw["result"]["message"]["diagnostics"] = None
    line = MessageBatchIndividualResponse.model_validate(raw)
    assert line.model_dump(mode="json", exclude_unset=True) == raw
    batch_raw = batch_json(workspace_id="wrkspc_1")
    batch_raw["request_counts"]["paused"] = 0
    assert MessageBatch.model_validate(batch_raw).model_dump(mode="json", exclude_unset=True)[
        "workspace_id"
    ] == ("wrkspc_1")
    assert MessageBatch.model_validate(batch_raw).request_counts.model_dump()["paused"] == 0


def test_unknown_content_block_type_is_kept() -> None:
    raw = json.loads(SUCCEEDED)
    block = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"url": "https://x"}]}
    raw["result"]["message"]["content"].append(block)
    line = MessageBatchIndividualResponse.model_validate(raw)
    assert isinstance(line.result, MessageBatchSucceededResult)
    unknown = line.result.message.content[1]
    assert isinstance(unknown, UnknownContentBlock)
    assert unknown.model_dump() == block
    assert line.model_dump(mode="json", exclude_unset=True) == raw


def test_unknown_result_type_is_kept() -> None:
    raw = {"custom_id": "req-5", "result": {"type": "paused", "resume_at": "2030-01-01T00:00:00Z"}}
    line = MessageBatchIndividualResponse.model_validate_json(json.dumps(raw))
    assert isinstance(line.result, MessageBatchUnknownResult)
    assert line.result.type == "paused"
    assert line.result.model_extra == {"resume_at": "2030-01-01T00:00:00Z"}
    assert line.model_dump(mode="json", exclude_unset=True) == raw


@pytest.mark.parametrize(
    "result",
    [
        {"type": "succeeded"},  # a known type is still checked: no message
        {"type": "errored", "error": "boom"},
        {"kind": "succeeded"},  # no type at all
        {"type": 7},
        "succeeded",
    ],
)
def test_known_result_types_stay_strict_and_a_result_needs_a_type(result: object) -> None:
    with pytest.raises(ValidationError):
        MessageBatchIndividualResponse.model_validate({"custom_id": "req-6", "result": result})
