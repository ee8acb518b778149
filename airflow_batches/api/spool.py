"""Spooling validated requests into ready-to-send create bodies, split by the API's limits, in one pass.

Each request (checked and encoded by ``requests.RequestEncoder``) is appended to a temp file that already is
a complete create body ``{"requests":[...]}``; when the next one would break a batch's count or byte limit a
new file starts. Memory holds only the custom_ids; if the input has any problem, no file is left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from .errors import InvalidInputError
from .requests import (
    BODY_PREFIX,
    BODY_SUFFIX,
    EMPTY_BODY_BYTES,
    MAX_BATCH_BYTES,
    MAX_PROBLEMS_SHOWN,
    MAX_REQUESTS_PER_BATCH,
    EncodedRequest,
    RequestEncoder,
    SourcedRequest,
)

__all__ = ["SpooledBatch", "spool_batches"]

_READ_CHUNK = 1 << 20


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
        self.nbytes = EMPTY_BODY_BYTES
        self._first = self._last = ""
        self._write(BODY_PREFIX)

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
        self._write(BODY_SUFFIX)
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
    if not EMPTY_BODY_BYTES < max_bytes <= MAX_BATCH_BYTES:
        raise InvalidInputError(
            f"max_bytes must be between {EMPTY_BODY_BYTES + 1} and {MAX_BATCH_BYTES:,}, got {max_bytes}"
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
