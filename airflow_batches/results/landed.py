"""What landing one batch produced (``Landed``), and the overwrite policy's look at files already there.

``overwrite="error"`` refuses them (``exists_error``); ``overwrite="skip"`` reads them back through the same
checks as a download (``kept_existing``) and keeps them only when they pass. Shared by the plain landing and
the merged landing of resubmit rounds.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_batches.api.errors import ResultsStreamError
from airflow_batches.errors import DestinationExistsError, ResultsCheckError
from airflow_batches.results.checker import ResultChecker
from airflow_batches.results.manifest import FileEntry
from airflow_batches.results.options import LandingSettings
from airflow_batches.results.sink import clean_uri

__all__ = ["Landed", "StoredFile", "exists_error", "kept_existing", "verify_existing"]

log = logging.getLogger(__name__)

_READ_BLOCK = 1 << 20


@dataclass
class Landed:
    """One batch's (or one merged group's) landed files, result counts and usage, for the manifest."""

    files: list[FileEntry]
    counts: dict[str, int]
    usage: dict[str, int]
    usage_by_model: dict[str, dict[str, int]]


def kept_existing(
    name: str,
    label: str,
    targets: dict[str | None, ObjectStoragePath],
    expected: dict[str, int],
    options: LandingSettings,
) -> Landed | None:
    """The ``"skip"`` policy: the existing files when they pass the checks, else ``None`` (land again)."""
    try:
        landed = verify_existing(name, targets, expected, options)
    except ResultsStreamError as exc:
        log.warning("%s: the existing files do not pass the checks (%s); landing again", label, exc)
        return None
    log.info("%s: already landed and checked, skipped: %s", label, [f["uri"] for f in landed.files])
    return landed


def verify_existing(
    batch_id: str,
    targets: dict[str | None, ObjectStoragePath],
    expected: dict[str, int],
    options: LandingSettings,
) -> Landed:
    """Read existing files through the same checks as a download (the ``"skip"`` policy)."""
    checker = ResultChecker(batch_id)
    files: list[FileEntry] = []
    for key, path in targets.items():
        stored = StoredFile(clean_uri(path), batch_id, compressed=options.compression is not None)
        lines = 0
        with path.fs.open(path.path, "rb") as raw:
            for line in stored.lines(raw):
                result_type = checker.check(line)
                lines += 1
                if key is not None and result_type != key:
                    raise ResultsCheckError(
                        f"{stored.uri} holds a {result_type!r} result on line {lines}", batch_id=batch_id
                    )
        files.append(
            FileEntry(
                batch_id=batch_id,
                uri=stored.uri,
                result_type=key,
                lines=lines,
                bytes=stored.bytes,
                sha256=stored.sha256.hexdigest(),
            )
        )
    checker.verify_counts(expected)
    return Landed(
        files=files,
        counts=dict(checker.counts),
        usage=dict(checker.usage),
        usage_by_model=checker.usage_by_model,
    )


class StoredFile:
    """Reads a landed file back: its lines (gunzipped on the fly) and the size and sha256 of its bytes."""

    def __init__(self, uri: str, batch_id: str, *, compressed: bool) -> None:
        self.uri = uri
        self.batch_id = batch_id
        self.compressed = compressed
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def lines(self, raw: Any) -> Iterator[bytes]:
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if self.compressed else None
        pending = b""
        for block in iter(lambda: raw.read(_READ_BLOCK), b""):
            self.sha256.update(block)
            self.bytes += len(block)
            data = inflate.decompress(block) if inflate is not None else block
            parts = (pending + data).split(b"\n")
            pending = parts.pop()
            for part in parts:
                yield part + b"\n"
        if pending or (inflate is not None and not inflate.eof):
            raise ResultsCheckError(
                f"{self.uri} is truncated (no final newline, or no gzip end)", batch_id=self.batch_id
            )


def exists_error(existing: list[ObjectStoragePath]) -> DestinationExistsError:
    names = ", ".join(clean_uri(path) for path in existing)
    return DestinationExistsError(
        f"destination file(s) already exist: {names}; overwrite='error' keeps them. Use "
        "overwrite='replace' to swap them atomically, overwrite='skip' to keep files that pass the checks, "
        "or another destination."
    )
