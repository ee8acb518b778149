"""Reading input records one at a time from JSONL, CSV or Parquet in object storage, or from a list.

Every reader streams: a JSONL or CSV file line by line, a Parquet file one row group slice
(``PARQUET_BATCH_ROWS`` rows) at a time, so a file of any size is read in bounded memory. Each record comes
with its origin (``"records.csv line 12"``, ``"records.parquet row 7"``, ``"record #3"``) so a problem
found later names the record it came from. Parquet needs the ``parquet`` extra (``pyarrow``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_batches.errors import RecordsError
from airflow_batches.input_files import open_input
from airflow_batches.storage_path import storage_path

__all__ = ["PARQUET_BATCH_ROWS", "Record", "RecordFormat", "iter_records", "records_format", "to_path"]

RecordFormat = Literal["jsonl", "csv", "parquet"]
PARQUET_BATCH_ROWS = 1024
_MISSING: Any = object()

_SUFFIXES: dict[str, RecordFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True, slots=True)
class Record:
    number: int  # 1-based position among the records
    origin: str  # where it came from, for messages
    data: Mapping[str, Any]


def records_format(uri: str, given: str | None = None) -> RecordFormat:
    """The format of a records file: ``given`` if set, else from the file name's suffix."""
    if given is not None:
        if given not in ("jsonl", "csv", "parquet"):
            raise RecordsError(f"records_format={given!r} is not supported; use 'jsonl', 'csv' or 'parquet'")
        return given  # type: ignore[return-value]
    name = uri.rstrip("/").rsplit("/", 1)[-1].lower()
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise RecordsError(
        f"cannot tell the format of records file {uri!r} from its name; name it *.jsonl, *.csv or "
        "*.parquet, or pass records_format='jsonl' | 'csv' | 'parquet'"
    )


def to_path(uri: str | ObjectStoragePath, conn_id: str | None = None) -> ObjectStoragePath:
    """``uri`` with its storage connection: ``conn_id``, else the URI's own, else the scheme's usual one."""
    if isinstance(uri, ObjectStoragePath):
        return storage_path(uri, conn_id)
    text = uri.strip()
    full = f"file://{text}" if text.startswith("/") else text
    if "://" not in full:
        raise RecordsError(
            f"records {text!r} is neither a list nor a URI; use e.g. file:///data/records.csv, "
            "s3://bucket/records.parquet or an absolute local path"
        )
    return storage_path(full, conn_id)


def iter_records(source: Any, *, fmt: str | None = None, conn_id: str | None = None) -> Iterator[Record]:
    """Yield every record of ``source``: a URI, an ``ObjectStoragePath`` or a list of mappings.

    ``conn_id`` is the storage connection of a file (default: the URI's, else the scheme's usual one).
    """
    if isinstance(source, str | ObjectStoragePath):
        path = to_path(source, conn_id)
        yield from _iter_file(path, records_format(str(path), fmt))
        return
    if isinstance(source, Mapping) or not isinstance(source, Iterable) or isinstance(source, bytes):
        raise RecordsError(
            f"records must be a list of mappings, an XComArg holding one, or the URI of a JSONL, CSV or "
            f"Parquet file; got a {type(source).__name__}"
        )
    for number, data in enumerate(source, start=1):
        if not isinstance(data, Mapping):
            raise RecordsError(f"record #{number} is a {type(data).__name__}, not a mapping field -> value")
        yield Record(number, f"record #{number}", data)


def _iter_file(path: ObjectStoragePath, fmt: RecordFormat) -> Iterator[Record]:
    name = path.name
    readers = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}
    with open_input(path, "records", RecordsError) as handle:
        yield from readers[fmt](handle, name)


def _jsonl(handle: Any, name: str) -> Iterator[Record]:
    number = 0
    for line_number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RecordsError(
                f"{name} line {line_number}: not valid JSON ({exc}); write one JSON object per line"
            ) from None
        if not isinstance(data, dict):
            raise RecordsError(
                f"{name} line {line_number}: a record must be a JSON object, got {type(data).__name__}"
            )
        number += 1
        yield Record(number, f"{name} line {line_number}", data)


def _csv(handle: Any, name: str) -> Iterator[Record]:
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    # A short row leaves its last fields out (not None), so a template using one names the line and field.
    reader = csv.DictReader(text, restval=_MISSING, strict=True)
    start = 2  # the line a record starts on (a quoted value may span lines); line 1 is the header
    try:
        for number, row in enumerate(reader, start=1):
            if None in row:
                raise RecordsError(
                    f"{name} line {start}: more values than the {len(reader.fieldnames or [])} columns "
                    "of the header; quote values that contain commas"
                )
            data = {key: value for key, value in row.items() if value is not _MISSING}
            yield Record(number, f"{name} line {start}", data)
            start = reader.line_num + 1
    except (csv.Error, UnicodeDecodeError) as exc:
        raise RecordsError(f"{name} line {reader.line_num}: not valid CSV ({exc})") from None
    finally:
        text.detach()


def _parquet(handle: Any, name: str) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise RecordsError(f"reading {name} needs pyarrow: pip install 'airflow-batches[parquet]'") from None
    try:
        parquet = pq.ParquetFile(handle)
    except Exception as exc:  # pyarrow raises ArrowInvalid (a ValueError) and OSError subclasses
        raise RecordsError(f"{name} is not a readable Parquet file: {exc}") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for data in batch.to_pylist():
            number += 1
            yield Record(number, f"{name} row {number}", data)
