"""The results JSONL of an ended batch, generated line by line from the stored requests.

Lines come in reverse input order: deterministic, but not the order the requests were sent in, so a client
that matches results by position instead of ``custom_id`` fails its tests here rather than in production.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from airflow_batches.api.models import (
    ErrorDetail,
    ErrorResponse,
    MessageBatchCanceledResult,
    MessageBatchErroredResult,
    MessageBatchExpiredResult,
    MessageBatchIndividualResponse,
    MessageBatchResult,
    MessageBatchSucceededResult,
)
from airflow_batches.emulator.fake_model import reply
from airflow_batches.emulator.lifecycle import Batch, Ending, outcome
from airflow_batches.emulator.request_rules import RequestKind, params_problem
from airflow_batches.emulator.structured_answer import invalid_output_chosen

__all__ = [
    "ERROR_SWITCH_MESSAGE",
    "TRANSIENT_ERROR_MESSAGE",
    "ResultsStreamCut",
    "result_lines",
    "stream_chunks",
]

ERROR_SWITCH_MESSAGE = "emulator: this request failed on purpose (params.metadata.emulator = 'error')"
TRANSIENT_ERROR_MESSAGE = (
    "emulator: this request failed on its first submission (transient fault); send it again"
)
_CHUNK_BYTES = 64 * 1024
_NO_ERROR_DETAILS: dict[str, Any] = {"result": {"error": {"error": {"details"}}}}


class ResultsStreamCut(Exception):
    """Raised mid-body to drop the connection, as the ``cut_results_after`` fault asks."""


def _errored(message: str, error_type: str = "invalid_request_error") -> MessageBatchErroredResult:
    return MessageBatchErroredResult(error=ErrorResponse(error=ErrorDetail(type=error_type, message=message)))


def result_lines(
    batch: Batch,
    ending: Ending,
    *,
    drop_last: int = 0,
    duplicate_first: bool = False,
    invalid_output_rate: float = 0.0,
) -> Iterator[bytes]:
    """One compact JSON line (ending in ``\\n``) per request, reading request bodies from the spool file.

    The content faults: ``drop_last`` leaves out the last lines (the body still ends cleanly at a line
    boundary, only short); ``duplicate_first`` sends the first line twice in a row. ``invalid_output_rate``
    is the share of structured-output requests (by custom_id hash) whose answer breaks the schema.
    """
    requests = batch.requests
    count = len(requests)
    # pread, not mmap: mapped pages of a 256 MB body would all count as the emulator's resident memory.
    with open(batch.body_path, "rb") as file:
        # Lines go out in reverse input order, so the last lines sent are the first requests.
        for index in reversed(range(drop_last, count)):
            offset, length = requests.offsets[index], requests.lengths[index]
            custom_id = requests.custom_ids[index]
            kind = RequestKind(requests.kinds[index])
            result: MessageBatchResult
            match outcome(kind, ending):
                case "succeeded":
                    element = json.loads(os.pread(file.fileno(), length, offset))
                    result = MessageBatchSucceededResult(
                        message=reply(
                            element["params"],
                            batch_id=batch.id,
                            custom_id=custom_id,
                            invalid_output=invalid_output_chosen(custom_id, invalid_output_rate),
                        )
                    )
                case "errored" if kind is RequestKind.INVALID:
                    element = json.loads(os.pread(file.fileno(), length, offset))
                    result = _errored(params_problem(element["params"]) or "invalid request")
                case "errored" if kind is RequestKind.TRANSIENT_ERROR:
                    result = _errored(TRANSIENT_ERROR_MESSAGE, batch.transient_error_type)
                case "errored":
                    result = _errored(ERROR_SWITCH_MESSAGE)
                case "canceled":
                    result = MessageBatchCanceledResult()
                case _:
                    result = MessageBatchExpiredResult()
            line = MessageBatchIndividualResponse(custom_id=custom_id, result=result)
            exclude = _NO_ERROR_DETAILS if isinstance(result, MessageBatchErroredResult) else None
            encoded = line.model_dump_json(exclude=exclude).encode() + b"\n"
            yield encoded
            if duplicate_first and index == count - 1:
                yield encoded


async def stream_chunks(
    lines: Iterator[bytes],
    *,
    cut_after: int | None,
    delay_seconds: float,
    on_cut: Callable[[], None] = lambda: None,
) -> AsyncIterator[bytes]:
    """Group lines into chunks, optionally pausing before each line or cutting the stream after some bytes.

    With a delay every line is its own chunk, so a slow stream is visibly slow line by line.
    """
    sent = 0
    buffer = bytearray()
    for line in lines:
        buffer += line
        if not delay_seconds and len(buffer) < _CHUNK_BYTES:
            continue
        if delay_seconds:
            await asyncio.sleep(delay_seconds)
        if cut_after is not None and sent + len(buffer) > cut_after:
            break
        sent += len(buffer)
        yield bytes(buffer)
        buffer.clear()
        await asyncio.sleep(0)  # building lines is CPU work: let other requests in between chunks
    if cut_after is not None and sent + len(buffer) > cut_after:
        if cut_after > sent:
            yield bytes(buffer[: cut_after - sent])
        on_cut()
        raise ResultsStreamCut(f"results stream cut after {cut_after} bytes (fault injection)")
    if buffer:
        yield bytes(buffer)
