"""A table next to the landed results: one row per request, as Parquet, CSV or JSONL, in bounded memory.

Built from the files a landing just wrote (the byte-exact raw results stay as they are):

1. every results line becomes a row (``table_rows``) stored by ``custom_id`` in a temporary SQLite file on
   local disk, so memory stays flat whatever the count. Files are read in manifest order and a later row
   replaces an earlier one with the same ``custom_id``: with resubmit rounds the last round's result is the
   final one, so the table has one row per original request.
2. rows go out in record order when the table is joined to the input records (``join`` =
   the ``RequestTemplate`` that made the requests: each record's ``custom_id`` is rendered again), then any
   result no record matched; without a join, in ``custom_id`` order. A record without a result gets a row
   with ``result_type`` ``"missing"``. Parquet is written in row groups of ``row_group_rows``.
3. the file is built in a local temp directory and stored with ``AtomicObject`` (one atomic step, like the
   results), as ``<destination>/table.<format>``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import sqlite3
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

from airflow.sdk import ObjectStoragePath

from airflow_batches.errors import DestinationExistsError, RecordsError
from airflow_batches.records.structured import StructuredOutput
from airflow_batches.records.template import RequestTemplate
from airflow_batches.results.manifest import Manifest
from airflow_batches.results.sink import AtomicObject
from airflow_batches.results.table_rows import Column, columns_for, record_columns, result_row
from airflow_batches.storage_path import path_conn_id

__all__ = ["TABLE_FORMATS", "TableEntry", "TableFormat", "TableSpec", "land_table"]

TableFormat = Literal["parquet", "csv", "jsonl"]
TABLE_FORMATS: tuple[TableFormat, ...] = ("parquet", "csv", "jsonl")
_COPY_BLOCK = 1 << 20


class TableEntry(TypedDict):
    uri: str
    format: str
    rows: int
    bytes: int
    sha256: str
    result_types: dict[str, int]
    valid: int  # structured answers that follow the schema (0 without output_schema)
    invalid: int  # structured answers that do not (kept, with invalid_reason)
    joined_records: int | None  # records read for the join (None: not joined)
    missing_results: int  # records without a result
    unmatched_results: int  # results no record matched (with a join)


@dataclass(frozen=True)
class TableSpec:
    format: TableFormat
    structured: StructuredOutput | None = None
    join: RequestTemplate | None = None
    row_group_rows: int = 10_000

    def __post_init__(self) -> None:
        if self.format not in TABLE_FORMATS:
            raise ValueError(f"table={self.format!r} is not a format; use 'parquet', 'csv' or 'jsonl'")
        if self.format == "parquet":
            _pyarrow()  # fail when the DAG is parsed, not after the landing
        columns_for(self.structured)  # a schema field with a fixed column's name fails here too


def land_table(
    manifest: Manifest, base: ObjectStoragePath, spec: TableSpec, *, overwrite: str, block_size: int
) -> TableEntry:
    """Write the table of the landing ``manifest`` under ``base`` and describe it."""
    final = base / f"table.{spec.format}"
    if overwrite == "error" and final.exists():
        raise DestinationExistsError(f"{final} exists and overwrite='error'; remove it or use 'replace'")
    with tempfile.TemporaryDirectory(prefix="airflow-batches-table-") as scratch:
        index = _Index(Path(scratch) / "rows.sqlite", spec.structured)
        try:
            for file in manifest["files"]:
                index.add_file(ObjectStoragePath(file["uri"], conn_id=path_conn_id(base)))
            local = Path(scratch) / final.name
            stats = _write(local, spec, index)
        finally:
            index.close()
        target = AtomicObject(final, gzip_level=None, block_size=block_size)
        try:
            with local.open("rb") as source:
                while block := source.read(_COPY_BLOCK):
                    target.write_lines([block])
            target.commit()
        except BaseException:
            target.discard()
            raise
    entry = {"uri": target.uri, "format": spec.format, "bytes": target.bytes, "sha256": target.sha256}
    return cast("TableEntry", {**entry, **stats})


class _Index:
    """Rows by custom_id in SQLite on local disk (the last file's row wins)."""

    def __init__(self, path: Path, structured: StructuredOutput | None) -> None:
        self.structured = structured
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE rows (custom_id TEXT PRIMARY KEY, row TEXT, matched INTEGER DEFAULT 0)")

    def add_file(self, path: ObjectStoragePath) -> None:
        with path.open("rb") as raw:  # type: ignore[no-untyped-call]
            handle: Any = gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
            batch: list[tuple[str, str]] = []
            for line in handle:
                row = result_row(json.loads(line), self.structured)
                batch.append((row["custom_id"], json.dumps(row, ensure_ascii=False)))
                if len(batch) >= 5_000:
                    self._store(batch)
            self._store(batch)
        self.db.commit()

    def _store(self, batch: list[tuple[str, str]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO rows (custom_id, row) VALUES (?, ?)", batch)
        batch.clear()

    def take(self, custom_id: str) -> dict[str, Any] | None:
        found = self.db.execute("SELECT row FROM rows WHERE custom_id = ?", (custom_id,)).fetchone()
        if found is None:
            return None
        self.db.execute("UPDATE rows SET matched = 1 WHERE custom_id = ?", (custom_id,))
        row: dict[str, Any] = json.loads(found[0])
        return row

    def rest(self) -> Iterator[dict[str, Any]]:
        for (text,) in self.db.execute("SELECT row FROM rows WHERE matched = 0 ORDER BY custom_id"):
            yield json.loads(text)

    def close(self) -> None:
        self.db.close()


def _joined_rows(spec: TableSpec, index: _Index, stats: dict[str, Any]) -> Iterator[dict[str, Any]]:
    assert spec.join is not None
    stats["joined_records"] = 0
    for record in spec.join.iter_records():
        try:
            custom_id = spec.join.custom_id_of(record)
        except ValueError as exc:
            raise RecordsError(f"cannot join the table to the records: {exc}") from None
        stats["joined_records"] += 1
        row = index.take(custom_id) or {"custom_id": custom_id, "result_type": "missing"}
        row.update({f"record_{key}": value for key, value in record.data.items()})
        yield row
    for row in index.rest():
        stats["unmatched_results"] += 1
        yield row


def _write(local: Path, spec: TableSpec, index: _Index) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "rows": 0,
        "result_types": {},
        "valid": 0,
        "invalid": 0,
        "joined_records": None,
        "missing_results": 0,
        "unmatched_results": 0,
    }
    rows = _joined_rows(spec, index, stats) if spec.join is not None else index.rest()
    columns = columns_for(spec.structured)
    if spec.join is not None:
        columns += record_columns(_first_record_fields(spec.join))
    with _writer(local, spec, columns) as write:
        for row in rows:
            kind = row["result_type"]
            stats["rows"] += 1
            stats["result_types"][kind] = stats["result_types"].get(kind, 0) + 1
            stats["missing_results"] += kind == "missing"
            if row.get("valid") is not None:
                stats["valid" if row["valid"] else "invalid"] += 1
            write([column.coerce(row.get(column.name)) for column in columns])
    return stats


def _first_record_fields(join: RequestTemplate) -> list[str]:
    """The record columns: the first record's fields (a CSV header, a Parquet schema)."""
    records = join.iter_records()
    first = next(records, None)
    cast("Generator[Any, None, None]", records).close()  # release the file now
    return [] if first is None else [str(key) for key in first.data]


@contextlib.contextmanager
def _writer(local: Path, spec: TableSpec, columns: list[Column]) -> Iterator[Any]:
    names = [column.name for column in columns]
    if spec.format == "jsonl":
        with local.open("w", encoding="utf-8") as out:
            yield lambda values: out.write(
                json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False) + "\n"
            )
        return
    if spec.format == "csv":
        with local.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(names)
            yield lambda values: writer.writerow(_csv_values(values))
        return
    pa, pq = _pyarrow()
    types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    schema = pa.schema([(c.name, types.get(c.kind, pa.string())) for c in columns])
    buffer: list[list[Any]] = []
    with pq.ParquetWriter(str(local), schema) as parquet:

        def flush() -> None:
            arrays = [list(column) for column in zip(*buffer, strict=True)]
            parquet.write_table(pa.Table.from_arrays(arrays, schema=schema))
            buffer.clear()

        def write(values: list[Any]) -> None:
            buffer.append(values)
            if len(buffer) >= spec.row_group_rows:
                flush()

        yield write
        if buffer:
            flush()


def _csv_values(values: list[Any]) -> list[Any]:
    return ["true" if v is True else "false" if v is False else "" if v is None else v for v in values]


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ValueError(
            "table='parquet' needs pyarrow: pip install 'airflow-batches[parquet]' "
            "(or use table='csv' or 'jsonl')"
        ) from None
    return pyarrow, pyarrow.parquet
