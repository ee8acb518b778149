"""``BatchServiceAsync``: the Message Batches API as async methods (create, retrieve, list, cancel, delete,
results)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import pydantic

from airflow_batches import __version__

from ._http import ApiSession, Secret
from .errors import (
    AmbiguousCreateError,
    BatchAPIError,
    BatchNotEndedError,
    InvalidBatchIdError,
    InvalidInputError,
    RequestValidationError,
    ResultsArchivedError,
    ResultsStreamError,
    UnexpectedResponseError,
    ValidationProblem,
)
from .jsonl import LineChunk, LineSplitter
from .models import (
    DeletedMessageBatch,
    MessageBatch,
    MessageBatchIndividualResponse,
    MessageBatchPage,
    MessageTokensCount,
)
from .pagination import BatchPager
from .requests import MAX_BATCH_BYTES, MAX_REQUESTS_PER_BATCH
from .results_body import body_chunks, chunks_sync, lines_of
from .retry import RetryPolicy
from .spool import SpooledBatch, spool_batches
from .tls import default_ssl_context
from .token_count import count_tokens_body

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "BatchServiceAsync",
    "validate_batch_id",
]

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_API_VERSION = "2023-06-01"
# The SDK's defaults: a long read timeout (results bodies are big and the API can be slow), a short connect.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)


def _as_timeout(timeout: httpx.Timeout | float) -> httpx.Timeout:
    """A number sets the read/write/pool timeout; connecting keeps the short default (or less), since a host
    that does not answer within seconds will not answer in ten minutes either."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout, connect=min(float(timeout), DEFAULT_TIMEOUT.connect or 5.0))


MAX_LIST_LIMIT = 1000

_BATCHES_PATH = "v1/messages/batches"
_COUNT_TOKENS_PATH = "v1/messages/count_tokens"
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
_SNIPPET_CHARS = 200
_RESULTS_ACCEPT = "application/binary"

_Model = TypeVar("_Model", bound=pydantic.BaseModel)


def validate_batch_id(batch_id: object, *, what: str = "batch id") -> str:
    """Return ``batch_id`` if it is safe to put into a URL path, else raise ``InvalidBatchIdError``."""
    if not isinstance(batch_id, str) or not batch_id:
        raise InvalidBatchIdError(
            f"{what} must be a non-empty string like 'msgbatch_...', got {batch_id!r:.80}"
        )
    if not _BATCH_ID.fullmatch(batch_id):
        raise InvalidBatchIdError(
            f"{what} {batch_id!r:.80} is not a batch id: only letters, digits, '_' and '-' (at most 256) are "
            "allowed, so it cannot change the URL it is put into"
        )
    return batch_id


class BatchServiceAsync:
    """The Message Batches API over httpx. Use as ``async with BatchServiceAsync(api_key=...) as service:``.

    ``api_key`` defaults to ``$ANTHROPIC_API_KEY``. Pass ``http_client`` to share a connection pool (it is
    then not closed here) or ``transport`` for an ``httpx`` transport of your own (e.g. ``MockTransport``).
    ``retry_policy`` replaces the default ``RetryPolicy(max_retries=max_retries)``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        api_version: str = DEFAULT_API_VERSION,
        betas: Iterable[str] = (),
        default_headers: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise InvalidInputError(
                "no API key: pass api_key=... (in Airflow: the connection's password) "
                "or set ANTHROPIC_API_KEY"
            )
        if http_client is not None and transport is not None:
            raise InvalidInputError("pass either http_client or transport, not both")
        url = _parse_base_url(base_url)
        headers = {"user-agent": f"airflow-batches/{__version__}", "anthropic-version": api_version}
        beta_list = [b.strip() for b in betas if b.strip()]
        if beta_list:
            headers["anthropic-beta"] = ",".join(beta_list)
        headers.update(default_headers or {})
        client = http_client or httpx.AsyncClient(
            transport=transport, follow_redirects=False, verify=default_ssl_context()
        )
        self._session = ApiSession(
            api_key=Secret(key),
            base_url=url,
            client=client,
            owns_client=http_client is None,
            headers=headers,
            retry=retry_policy or RetryPolicy(max_retries=max_retries),
            timeout=_as_timeout(timeout),
            sync_transport=_sync_twin(http_client, transport),
        )
        self.api_version = api_version

    @property
    def base_url(self) -> str:
        return str(self._session.base_url)

    def __repr__(self) -> str:
        return f"BatchServiceAsync(base_url={self.base_url!r}, api_version={self.api_version!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in as ``http_client``."""
        await self._session.aclose()

    # --- operations ---------------------------------------------------------------------------------------

    async def create(
        self,
        requests: Iterable[Mapping[str, Any]] | SpooledBatch,
        *,
        default_model: str | None = None,
    ) -> MessageBatch:
        """Create one batch. ``requests`` is validated locally first (all problems raised together).

        Input that needs more than one batch is refused: split it with ``spool_batches`` and create each
        part. A failure after the body may have reached the server raises ``AmbiguousCreateError``.
        """
        if isinstance(requests, SpooledBatch):
            return await self._create_spooled(requests)
        batches = await asyncio.to_thread(spool_batches, requests, default_model=default_model)
        try:
            if len(batches) > 1:
                total = sum(b.request_count for b in batches)
                raise RequestValidationError(
                    [
                        ValidationProblem(
                            f"{total:,} requests ({sum(b.nbytes for b in batches):,} bytes) do not fit "
                            f"into one batch (at most {MAX_REQUESTS_PER_BATCH:,} requests and "
                            f"{MAX_BATCH_BYTES:,} bytes)",
                            fix="split them with spool_batches() and create each part, or use "
                            "BatchCreateOperator, which splits automatically",
                        )
                    ]
                )
            return await self._create_spooled(batches[0])
        finally:
            for batch in batches:
                batch.cleanup()

    async def _create_spooled(self, batch: SpooledBatch) -> MessageBatch:
        what = (
            f"{batch.request_count:,} requests, custom_id {batch.first_custom_id} .. {batch.last_custom_id}"
        )
        response = await self._session.request(
            "POST", self._session.url_for(_BATCHES_PATH), content=batch, creates=what
        )
        try:
            return _parse(MessageBatch, response)
        except UnexpectedResponseError as exc:
            raise AmbiguousCreateError(
                f"create answered {response.status_code} ({what}) but its body is not a batch, "
                f"so the new batch's id is unknown: {exc}. "
                "A batch was probably made: list batches before re-submitting.",
                cause=exc,
            ) from exc

    async def retrieve(self, batch_id: str) -> MessageBatch:
        response = await self._session.request("GET", self._batch_url(batch_id))
        return _parse(MessageBatch, response)

    async def cancel(self, batch_id: str) -> MessageBatch:
        """Ask the API to cancel; the batch goes to ``canceling`` and later ``ended``."""
        response = await self._session.request("POST", self._batch_url(batch_id, "cancel"))
        return _parse(MessageBatch, response)

    async def delete(self, batch_id: str) -> DeletedMessageBatch:
        """Delete an ended batch (cancel an unfinished one first)."""
        response = await self._session.request("DELETE", self._batch_url(batch_id))
        return _parse(DeletedMessageBatch, response)

    async def count_tokens(self, params: Mapping[str, Any]) -> int:
        """Input tokens of one Messages request (``POST /v1/messages/count_tokens``: free, nothing is made).

        ``params`` is a batch request's params; fields the endpoint does not take are left out.
        """
        url = self._session.url_for(_COUNT_TOKENS_PATH)
        response = await self._session.request("POST", url, content=count_tokens_body(params))
        return _parse(MessageTokensCount, response).input_tokens

    def list(
        self, limit: int | None = None, before_id: str | None = None, after_id: str | None = None
    ) -> BatchPager:
        """Batches newest first: ``async for b in service.list()`` walks all pages, ``await`` gives one."""
        _check_list_args(limit, before_id, after_id)
        return BatchPager(self._fetch_page, limit=limit, before_id=before_id, after_id=after_id)

    async def list_page(
        self, limit: int | None = None, before_id: str | None = None, after_id: str | None = None
    ) -> MessageBatchPage:
        _check_list_args(limit, before_id, after_id)
        return await self._fetch_page(limit, before_id, after_id)

    async def _fetch_page(
        self, limit: int | None, before_id: str | None, after_id: str | None
    ) -> MessageBatchPage:
        params: dict[str, str | int] = {}
        if limit is not None:
            params["limit"] = limit
        if before_id is not None:
            params["before_id"] = before_id
        if after_id is not None:
            params["after_id"] = after_id
        response = await self._session.request("GET", self._session.url_for(_BATCHES_PATH), params=params)
        return _parse(MessageBatchPage, response)

    async def results_lines(
        self, batch_id: str, *, batch: MessageBatch | None = None
    ) -> AsyncIterator[bytes]:
        """Each results line exactly as sent, ``b"\\n"`` included.

        Pass ``batch`` (already retrieved) to skip retrieving it again. A stream that breaks or ends
        mid-line raises ``ResultsStreamError``; fetching again from the start is up to the caller.
        Stop early with ``contextlib.aclosing`` so the connection is released at once.
        """
        response = await self._open_results(batch_id, batch)
        try:
            async with lines_of(response, batch_id) as lines:
                async for line in lines:
                    yield line
        finally:
            await response.aclose()

    async def results_chunks(
        self, batch_id: str, *, batch: MessageBatch | None = None
    ) -> AsyncGenerator[LineChunk]:
        """The results body in chunks as received, each with the lines it completes (for bulk consumers).

        The chunks' ``data`` concatenated are the body byte for byte; their ``lines`` are every line once,
        in order, without its newline. Errors are those of :meth:`results_lines`.
        """
        response = await self._open_results(batch_id, batch)
        request_id = response.headers.get("request-id")
        splitter = LineSplitter(batch_id=batch_id, request_id=request_id)
        try:
            async with aclosing(body_chunks(response, batch_id, request_id)) as chunks:
                async for chunk in chunks:
                    yield LineChunk(chunk, splitter.feed(chunk))
            splitter.close()
        finally:
            await response.aclose()

    def results_chunks_sync(self, batch: MessageBatch) -> Generator[LineChunk] | None:
        """:meth:`results_chunks` of an ended ``batch`` read without an event loop, at a fraction of the CPU
        (for a synchronous bulk consumer: the landing). Call it where no event loop runs in this thread.

        ``None`` when this service cannot read synchronously (it was given an ``http_client``, or a transport
        that is async only) or the one synchronous attempt got no 2xx answer: then use
        :meth:`results_chunks`, whose retries and errors apply.
        """
        url = self._results_url(batch.id, batch)
        response = self._session.send_stream_sync(url, accept=_RESULTS_ACCEPT)
        return None if response is None else chunks_sync(response, batch.id)

    async def results_streaming(
        self, batch_id: str, *, batch: MessageBatch | None = None
    ) -> AsyncIterator[MessageBatchIndividualResponse]:
        """Each results line parsed; a line that is not a result raises ``ResultsStreamError``.

        A result type this client does not know yet comes as ``MessageBatchUnknownResult``, not an error.
        """
        response = await self._open_results(batch_id, batch)
        request_id = response.headers.get("request-id")
        line_no = 0
        try:
            async with lines_of(response, batch_id) as lines:
                async for line in lines:
                    line_no += 1
                    try:
                        parsed = MessageBatchIndividualResponse.model_validate_json(line)
                    except pydantic.ValidationError as exc:
                        raise ResultsStreamError(
                            f"results line {line_no} of batch {batch_id} is not a result "
                            f"({_first_error(exc)}): {line[:_SNIPPET_CHARS]!r}",
                            batch_id=batch_id,
                            line=line_no,
                            request_id=request_id,
                        ) from None
                    yield parsed
        finally:
            await response.aclose()

    async def _open_results(self, batch_id: str, batch: MessageBatch | None) -> httpx.Response:
        """The results response of an ended batch, its body not read yet (the caller must close it)."""
        validate_batch_id(batch_id)
        if batch is None:
            batch = await self.retrieve(batch_id)
        url = self._results_url(batch_id, batch)
        return await self._session.request("GET", url, accept=_RESULTS_ACCEPT, stream=True)

    def _results_url(self, batch_id: str, batch: MessageBatch) -> httpx.URL:
        """Where the results of ``batch`` are, once checked that there are results to fetch."""
        validate_batch_id(batch_id)
        if batch.id != batch_id:
            raise InvalidInputError(
                f"batch={batch.id!r} was passed for batch_id={batch_id!r}; they must match"
            )
        if batch.processing_status != "ended":
            raise BatchNotEndedError(batch_id, batch.processing_status)
        if batch.archived_at is not None:
            raise ResultsArchivedError(batch_id, batch.archived_at.isoformat())
        if not batch.results_url:
            raise BatchAPIError(
                f"batch {batch_id} has ended but the API gave no results_url, so there is nothing to "
                "download; retrieve it again later, or check it in the Console"
            )
        return self._session.results_url(batch.results_url, f"{_BATCHES_PATH}/{batch_id}/results")

    def _batch_url(self, batch_id: str, action: str | None = None) -> httpx.URL:
        path = f"{_BATCHES_PATH}/{validate_batch_id(batch_id)}"
        return self._session.url_for(f"{path}/{action}" if action else path)


def _parse_base_url(base_url: str) -> httpx.URL:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise InvalidInputError(f"base_url {base_url!r:.200} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidInputError(
            f"base_url {base_url!r:.200} must be an http(s) URL with a host, e.g. https://api.anthropic.com"
        )
    if url.userinfo or url.query or url.fragment:
        raise InvalidInputError(
            "base_url must not carry credentials, a query or a fragment; pass the key as api_key"
        )
    return url


def _check_list_args(limit: int | None, before_id: str | None, after_id: str | None) -> None:
    if before_id is not None and after_id is not None:
        raise InvalidInputError(
            "pass before_id (newer batches) or after_id (older batches), not both; "
            "the API pages in one direction"
        )
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT
    ):
        raise InvalidInputError(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {limit!r}")
    if before_id is not None:
        validate_batch_id(before_id, what="before_id")
    if after_id is not None:
        validate_batch_id(after_id, what="after_id")


def _parse(model: type[_Model], response: httpx.Response) -> _Model:
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url} answered {response.status_code} "
            f"with a body that is not a {model.__name__} ({_first_error(exc)}) [request-id: "
            f"{response.headers.get('request-id') or 'none'}]: {response.content[:_SNIPPET_CHARS]!r}"
        ) from None


def _first_error(exc: pydantic.ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _sync_twin(
    http_client: httpx.AsyncClient | None, transport: httpx.AsyncBaseTransport | None
) -> httpx.BaseTransport | bool:
    """What ``ApiSession.send_stream_sync`` may send through, mirroring the async client (see there)."""
    if http_client is not None:
        return False
    if transport is None:
        return True
    return transport if isinstance(transport, httpx.BaseTransport) else False
