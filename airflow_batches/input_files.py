"""Opening an input file in object storage (requests JSONL, records) with errors that say what to fix."""

from __future__ import annotations

from typing import IO

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_batches.errors import RequestSourceError

__all__ = ["open_input"]


def open_input(path: ObjectStoragePath, what: str, error: type[RequestSourceError]) -> IO[bytes]:
    """``path`` opened for reading bytes; a missing or unreadable file raises ``error`` naming ``what``."""
    try:
        handle: IO[bytes] = path.open("rb")  # type: ignore[no-untyped-call]
    except FileNotFoundError:
        raise error(
            f"{what} file {path} does not exist; check the path (templated paths render with the run's "
            "values, e.g. {{ ds }})"
        ) from None
    except OSError as exc:
        raise error(f"cannot open {what} file {path}: {exc}") from None
    return handle
