"""The six Message Batches operations: create, retrieve, list, cancel, delete, results."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import cast

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

from airflow_batches.api.models import DeletedMessageBatch, MessageBatchPage
from airflow_batches.emulator.create_body import CreateBodyError, ParsedRequests, parse_create_body
from airflow_batches.emulator.lifecycle import Batch, Ending, RenderingKey
from airflow_batches.emulator.responses import EmulatorError, error_response, model_response, request_id_of
from airflow_batches.emulator.results_files import keeping_chunks, kept_file_chunks
from airflow_batches.emulator.results_stream import result_lines, stream_chunks
from airflow_batches.emulator.state import EmulatorState
from airflow_batches.emulator.store import UnknownCursorError

__all__ = ["router", "state_of"]

router = APIRouter(prefix="/v1/messages/batches")

_EDGE_413_PAGE = """<html>
<head><title>413 Request Entity Too Large</title></head>
<body>
<center><h1>413 Request Entity Too Large</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
"""


def state_of(request: Request) -> EmulatorState:
    return cast(EmulatorState, request.app.state.emulator)


def _results_base_url(request: Request) -> str:
    """The origin (and path prefix) results_url names: this server's, or the configured API host's."""
    configured = state_of(request).settings.results_base_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def _batch_json(request: Request, batch: Batch, now: datetime | None = None) -> Response:
    state = state_of(request)
    model = batch.to_model(
        now or state.clock.now(),
        base_url=_results_base_url(request),
        clear_results_url_on_archive=state.settings.clear_results_url_on_archive,
    )
    return model_response(model)


def _find(request: Request, batch_id: str) -> Batch:
    batch = state_of(request).store.get(batch_id)
    if batch is None:
        message = f"message_batch_id: no message batch with id {batch_id!r} (it may have been deleted)"
        raise EmulatorError(404, message)
    return batch


class _BodyTooLarge(Exception):
    pass


def _too_large(request: Request, limit: int) -> Response:
    if state_of(request).settings.html_413:
        return HTMLResponse(_EDGE_413_PAGE, status_code=413)
    message = (
        f"Request exceeds the maximum allowed size of {limit:,} bytes; "
        "split the requests into several smaller batches"
    )
    return error_response(413, message, request_id_of(request))


async def _spool(request: Request, path: Path, limit: int) -> None:
    """Write the body to ``path`` as it arrives, checking its size and that it is UTF-8."""
    utf8 = codecs.getincrementaldecoder("utf-8")()
    size = 0
    with path.open("wb") as file:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            file.write(chunk)
            try:
                utf8.decode(chunk)
            except UnicodeDecodeError as exc:
                at = size - len(chunk) + exc.start
                raise EmulatorError(400, f"Request body is not valid UTF-8 near byte {at}") from None
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            raise EmulatorError(400, "Request body is not valid UTF-8: it ends inside a character") from None


def _parse(path: Path, params_in_results: bool) -> ParsedRequests:
    with path.open("rb") as file:
        return parse_create_body(file, params_in_results=params_in_results)


@router.post("")
async def create(request: Request) -> Response:
    state = state_of(request)
    limit = state.settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(request, limit)
    path = state.store.new_body_path()
    try:
        await _spool(request, path, limit)
        # Parsing a large body takes seconds of CPU: keep the event loop free for other requests meanwhile.
        parsed = await asyncio.to_thread(_parse, path, state.settings.params_validation == "per_request")
    except _BodyTooLarge:
        path.unlink()
        return _too_large(request, limit)
    except CreateBodyError as exc:
        path.unlink()
        raise EmulatorError(400, str(exc)) from None
    except BaseException:
        path.unlink()
        raise
    faults = state.faults.settings
    state.faults.transient.mark(parsed, faults)
    now = state.clock.now()
    batch = state.store.add(
        parsed,
        path,
        now=now,
        processing_seconds=state.settings.processing_seconds,
        transient_error_type=faults.transient_error_type,
    )
    return _batch_json(request, batch, now)


@router.get("")
async def list_batches(request: Request) -> Response:
    query = request.query_params
    raw_limit = query.get("limit", "20")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise EmulatorError(400, f"limit: Input should be a valid integer, got {raw_limit!r}") from None
    if not 1 <= limit <= 1000:
        raise EmulatorError(400, f"limit: Input should be between 1 and 1000, got {limit}")
    before_id, after_id = query.get("before_id"), query.get("after_id")
    if before_id is not None and after_id is not None:
        raise EmulatorError(400, "before_id and after_id cannot be used together; page in one direction")
    state = state_of(request)
    try:
        batches, has_more = state.store.page(limit=limit, before_id=before_id, after_id=after_id)
    except UnknownCursorError as exc:
        raise EmulatorError(400, str(exc)) from None
    now = state.clock.now()
    base_url = _results_base_url(request)
    clear = state.settings.clear_results_url_on_archive
    models = [batch.to_model(now, base_url=base_url, clear_results_url_on_archive=clear) for batch in batches]
    page = MessageBatchPage(
        data=models,
        has_more=has_more,
        first_id=batches[0].id if batches else None,
        last_id=batches[-1].id if batches else None,
    )
    return model_response(page)


@router.get("/{message_batch_id}")
async def retrieve(request: Request, message_batch_id: str) -> Response:
    return _batch_json(request, _find(request, message_batch_id))


@router.post("/{message_batch_id}/cancel")
async def cancel(request: Request, message_batch_id: str) -> Response:
    state = state_of(request)
    batch = _find(request, message_batch_id)
    now = state.clock.now()
    status = batch.snapshot(now).status
    if status == "ended":
        raise EmulatorError(
            state.settings.cancel_ended_status,
            f"message batch {batch.id} has already ended; there is nothing left to cancel",
        )
    if status == "in_progress":
        batch.cancel_initiated_at = now
        batch.cancel_seconds = state.settings.cancel_seconds
    return _batch_json(request, batch, now)


@router.delete("/{message_batch_id}")
async def delete(request: Request, message_batch_id: str) -> Response:
    state = state_of(request)
    batch = _find(request, message_batch_id)
    status = batch.snapshot(state.clock.now()).status
    if status != "ended":
        raise EmulatorError(
            400,
            f"message batch {batch.id} is {status}; only ended batches can be deleted: "
            "cancel it first and wait until processing_status is 'ended'",
        )
    state.store.delete(batch)
    return model_response(DeletedMessageBatch(id=batch.id))


def _kept_or_keeping(
    state: EmulatorState, batch: Batch, lines: Iterator[bytes], ending: Ending
) -> AsyncIterator[bytes]:
    """The kept rendering of these results if there is one, else ``lines`` rendered and kept as they go."""
    faults = state.faults.settings
    key: RenderingKey = (
        ending,
        faults.results_drop_lines,
        faults.results_duplicate_line,
        state.settings.invalid_output_rate,
    )
    kept = batch.kept_results.get(key)
    if kept is not None:
        return kept_file_chunks(kept.open("rb"))
    return keeping_chunks(
        lines, state.store.new_results_path(), lambda path: state.store.keep_results(batch, key, path)
    )


@router.get("/{message_batch_id}/results")
async def results(request: Request, message_batch_id: str) -> Response:
    state = state_of(request)
    batch = _find(request, message_batch_id)
    snapshot = batch.snapshot(state.clock.now())
    if snapshot.status != "ended":
        raise EmulatorError(
            400,
            f"message batch {batch.id} is {snapshot.status}: results are available only once "
            "processing_status is 'ended'",
        )
    if snapshot.archived_at is not None:
        raise EmulatorError(
            state.settings.archived_results_status,
            f"message batch {batch.id} was archived at {snapshot.archived_at.isoformat()}: its results are "
            "no longer available (results are kept for 29 days after creation)",
        )
    stats = state.stats

    def count_cut() -> None:
        stats.results_cut += 1

    faults = state.faults.settings
    lines = result_lines(
        batch,
        snapshot.ending,
        drop_last=faults.results_drop_lines,
        duplicate_first=faults.results_duplicate_line,
        invalid_output_rate=state.settings.invalid_output_rate,
    )
    cut_after = state.faults.take_cut()
    body: AsyncIterator[bytes]
    if cut_after is None and not faults.slow_results_ms:
        body = _kept_or_keeping(state, batch, lines, snapshot.ending)
    else:
        body = stream_chunks(
            lines,
            cut_after=cut_after,
            delay_seconds=faults.slow_results_ms / 1000,
            on_cut=count_cut,
        )
    return StreamingResponse(
        body,
        media_type="application/x-jsonl",
        headers={"content-disposition": f"attachment; filename*=utf-8''{batch.id}_results.jsonl"},
    )
