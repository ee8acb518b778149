"""Atomic, hashed, optionally gzip-compressed writes of one object under a destination.

Two ways to make an object appear only when it is complete, chosen by filesystem:

* S3 (through s3fs): the object is written under its final key as a multipart upload whose parts go up
  concurrently (:class:`~airflow_batches.results.s3_upload.PartsUpload`); it becomes visible only when the
  upload is completed in :meth:`AtomicObject.commit`, and :meth:`AtomicObject.discard` aborts it. S3 has no
  rename, so this avoids a copy of the whole object and never shows a temporary object at all.
* everything else (local disks, and filesystems without deferred commit): the object is written to
  ``.<name>.<uuid>.partial`` next to the final name and moved over it at the end, which on a local
  filesystem is an atomic ``rename``; a failure removes the temporary file.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import uuid
from typing import IO, Any

from airflow.sdk import ObjectStoragePath

from airflow_batches.results.s3_upload import PartsUpload

__all__ = ["AtomicObject", "clean_uri"]

log = logging.getLogger(__name__)

DEFERRED_COMMIT_PROTOCOLS = frozenset({"s3", "s3a"})
LOCAL_PROTOCOLS = frozenset({"file", "local"})
# Parts uploading at once on S3. Each is held twice while it goes up (botocore hands aiohttp the bytes as a
# BytesIO, which aiohttp copies), so memory is about 4 parts of block_size; against moto (one core) 2 kept the
# server busy as well as 4 did.
PARTS_IN_FLIGHT = 2


def clean_uri(path: ObjectStoragePath | str) -> str:
    """The URI of ``path`` without the connection id that ``ObjectStoragePath`` keeps as user info."""
    text = str(path)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, tail = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{tail}"


class _HashingWriter:
    """Counts and hashes exactly the bytes that reach storage (the compressed ones with gzip)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


class AtomicObject:
    """One object being written; nothing exists under ``final`` until :meth:`commit` returns."""

    def __init__(self, final: ObjectStoragePath, *, gzip_level: int | None, block_size: int) -> None:
        self.final = final
        self.uri = clean_uri(final)
        self._deferred = final.protocol in DEFERRED_COMMIT_PROTOCOLS
        self._temp: ObjectStoragePath | None = None
        if final.protocol in LOCAL_PROTOCOLS:
            final.parent.mkdir(parents=True, exist_ok=True)
        if self._deferred:
            self._raw: Any = PartsUpload(
                final.fs, final.path, part_bytes=block_size, in_flight=PARTS_IN_FLIGHT
            )
        else:
            self._temp = final.parent / f".{final.name}.{uuid.uuid4().hex}.partial"
            self._raw = self._temp.fs.open(self._temp.path, "wb", block_size=block_size)
        self._hashing = _HashingWriter(self._raw)
        # mtime=0 and no file name in the gzip header: a retried landing is byte-identical to the first.
        self._gzip = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, compresslevel=gzip_level, mtime=0)
            if gzip_level is not None
            else None
        )
        self._out: Any = self._gzip if self._gzip is not None else self._hashing
        self.lines = 0
        self.content_bytes = 0

    def write_lines(self, lines: list[bytes]) -> None:
        """Write whole lines, as received, in one call."""
        self.write(lines[0] if len(lines) == 1 else b"".join(lines), len(lines))

    def write(self, data: bytes, lines: int) -> None:
        """Write ``data``, which completes ``lines`` lines (it may end inside the next one)."""
        self._out.write(data)
        self.lines += lines
        self.content_bytes += len(data)

    @property
    def bytes(self) -> int:
        return self._hashing.bytes

    @property
    def sha256(self) -> str:
        return self._hashing.sha256.hexdigest()

    def commit(self) -> None:
        """Finish the write and make the object appear under its final name in one step."""
        if self._gzip is not None:
            self._gzip.close()
        self._raw.close()
        if self._deferred:
            self._raw.commit()
        else:
            assert self._temp is not None
            self._temp.fs.mv(self._temp.path, self.final.path)
            self._temp = None

    def discard(self) -> None:
        """Drop everything written so far; never raises (it runs while another error is being raised)."""
        try:
            if self._deferred:
                self._raw.discard()  # closed first: never sends a part again, even if the abort fails
            else:
                try:
                    self._raw.close()  # may fail again on the error being handled (a full disk)
                finally:
                    if self._temp is not None and self._temp.exists():
                        self._temp.unlink()
        except Exception:
            log.warning("could not remove the unfinished object for %s", self.uri, exc_info=True)
