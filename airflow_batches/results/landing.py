"""``land_results``: stream ended batches' results into object storage, checked and atomic, and describe them.

Per batch: retrieve it once (its ``request_counts`` are the expected line counts), refuse or wait when it has
not ended, apply the overwrite policy, then stream the results into the destination (see ``stream`` and
``sink``) while checking every line; the object appears only after the whole stream arrived and matched the
counts. A broken stream is fetched again from the start, up to ``max_attempts`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, TypeVar, Unpack

from airflow.sdk import ObjectStoragePath

from airflow_batches.api.errors import (
    BatchNotEndedError,
    ResultsArchivedError,
    ResultsStreamError,
)
from airflow_batches.api.jsonl import LineChunk
from airflow_batches.api.models import RESULT_TYPES, MessageBatch
from airflow_batches.api.retry import exponential_backoff, is_transient
from airflow_batches.batch_ref import BatchRef, ResultCounts, batch_snapshot, normalize_batch_ids
from airflow_batches.cost.prices import PriceTable, validate_prices
from airflow_batches.cost.usage_cost import add_usage, cost_of_usage
from airflow_batches.errors import (
    DestinationExistsError,
    DestinationWriteError,
    ResultsCheckError,
    ResultsCountMismatchError,
    ResultsWaitTimeoutError,
)
from airflow_batches.events import event_exception
from airflow_batches.hooks.sync_runner import PrivateLoop
from airflow_batches.results.checker import USAGE_FIELDS, ResultChecker
from airflow_batches.results.landed import Landed, exists_error, kept_existing
from airflow_batches.results.manifest import FileEntry, Manifest, UsageTotals
from airflow_batches.results.options import (
    LandingOptions,
    LandingSettings,
    check_destination,
    check_options,
)
from airflow_batches.results.progress import Progress
from airflow_batches.results.sink import AtomicObject, clean_uri
from airflow_batches.results.stream import ResultsReceiver, receive_results
from airflow_batches.results.writer import WriteBehind
from airflow_batches.storage_path import storage_path
from airflow_batches.waiting import DEFAULT_MAX_POLL_ERRORS, GroupWait

__all__ = ["ResultsService", "ServiceSource", "land_results"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_GZIP_LEVEL = 6  # most of level 9's ratio on JSON text at a fraction of its CPU
_WRITE_DEPTH = 4


class ResultsService(Protocol):
    """What the landing needs of ``BatchServiceAsync``."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any: ...

    async def retrieve(self, batch_id: str) -> MessageBatch: ...

    def results_chunks(
        self, batch_id: str, *, batch: MessageBatch | None = None
    ) -> AsyncGenerator[LineChunk]: ...

    def results_chunks_sync(self, batch: MessageBatch) -> Generator[LineChunk] | None: ...


class ServiceSource(Protocol):
    """``BatchHook``, or anything else that makes a fresh service (the landing closes it)."""

    def get_service(self) -> Any: ...


@dataclass
class _Run:
    loop: PrivateLoop
    service: ResultsService
    base: ObjectStoragePath
    options: LandingSettings
    progress: Progress
    landed: list[Landed] = field(default_factory=list)


def land_results(
    hook: ServiceSource,
    batch_ref: BatchRef,
    destination: str | ObjectStoragePath,
    **options: Unpack[LandingOptions],
) -> Manifest:
    """Land the results of one batch or a batch group under ``destination`` and return the manifest.

    :param hook: ``BatchHook`` (anything with ``get_service()``).
    :param batch_ref: a batch id, a list of ids, or the ``BatchCreateOperator`` return value. A group with
        resubmit ``rounds`` lands merged: one line per original request, its final one
        (:mod:`airflow_batches.results.merge`).
    :param destination: a directory-like URI prefix or ``ObjectStoragePath``; each batch lands as
        ``<destination>/<batch_id>.jsonl`` or, with ``split_by_type``,
        ``<destination>/<batch_id>/<type>.jsonl`` (one file per result type the batch has).
    :param destination_conn_id: the storage connection; default: the one in the URI
        (``s3://conn_id@bucket/...``) or path, else the scheme's usual one (``aws_default`` for ``s3://``).
    :param overwrite: an existing destination file is ``"replace"``-d atomically (default, also ``True``),
        an ``"error"`` raised before downloading (also ``False``), or with ``"skip"`` kept when it passes the
        same checks as a fresh landing (else replaced), so a rerun does not download again.
    :param compression: ``"gzip"`` writes ``.jsonl.gz`` (deterministic: no timestamp in the header).
    :param wait: wait for a batch that has not ended, up to ``wait_timeout`` seconds, instead of failing at
        once; polled every ``poll_interval`` seconds the way ``BatchTrigger`` polls (failed reads back off
        and are tolerated, see :mod:`airflow_batches.waiting`).
    :param max_attempts: downloads per batch when the stream breaks; each retry starts from the beginning
        after ``retry_backoff * 2**n`` seconds.
    :param progress_interval: seconds between progress log lines.
    :param chunk_bytes: lines are checked and written in groups of about this size; at most a few groups
        are in memory at once.
    :param block_size: the storage write block (the multipart part size on S3).
    :param prices: ``{model: {"input", "output", "cache_write", "cache_read"}}`` in USD per million tokens
        at batch prices, over the package's price table, for the manifest's ``cost``.
    """
    _refuse_running_loop()
    # Imported here: merge builds on this module's helpers.
    from airflow_batches.results.merge import group_with_rounds, land_merged

    group = group_with_rounds(batch_ref)
    if group is not None:
        return land_merged(hook, group, destination, **options)
    batch_ids = normalize_batch_ids(batch_ref)
    settings = check_options(options)
    price_table = PriceTable(validate_prices(settings.prices))
    base = _base_path(destination, settings.destination_conn_id)
    started = time.monotonic()
    progress = Progress(log, settings.progress_interval)
    service: ResultsService = hook.get_service()
    with PrivateLoop() as loop:
        loop.run(service.__aenter__)
        try:
            run = _Run(loop=loop, service=service, base=base, options=settings, progress=progress)
            for index, batch_id in enumerate(batch_ids, start=1):
                run.landed.append(_land_batch(run, batch_id, f"batch {index}/{len(batch_ids)} {batch_id}"))
        finally:
            loop.run(lambda: service.__aexit__(None, None, None))
    manifest = _manifest(batch_ids, base, run.landed, time.monotonic() - started, price_table)
    log.info(
        "landed %d batch(es) under %s: %s lines, %s bytes, counts %s",
        len(batch_ids),
        manifest["destination"],
        f"{manifest['lines']:,}",
        f"{manifest['bytes']:,}",
        manifest["counts"],
    )
    return manifest


def _land_batch(run: _Run, batch_id: str, label: str) -> Landed:
    batch = _ended_batch(run, batch_id)
    expected = {t: int(getattr(batch.request_counts, t)) for t in RESULT_TYPES}
    targets = _targets(run, batch_id, expected)
    existing = [path for path in targets.values() if path.exists()]
    if existing and run.options.overwrite == "error":
        raise exists_error(existing)
    if existing and run.options.overwrite == "skip" and len(existing) == len(targets):
        landed = kept_existing(batch_id, label, targets, expected, run.options)
        if landed is not None:
            return landed
    return _with_retries(run, label, lambda: _download(run, batch, expected, targets, label))


def _with_retries(run: _Run, label: str, fetch: Callable[[], T]) -> T:
    """``fetch()`` (a whole download), again from the start after a broken stream, up to ``max_attempts``."""
    attempt = 1
    while True:
        try:
            return fetch()
        except Exception as exc:
            if attempt >= run.options.max_attempts or not _retryable(exc):
                raise
            delay = exponential_backoff(run.options.retry_backoff, attempt - 1)
            log.warning(
                "%s: results download %d/%d failed (%s); fetching again from the start in %.1f s",
                label,
                attempt,
                run.options.max_attempts,
                exc,
                delay,
            )
            time.sleep(delay)
            attempt += 1


def _download(
    run: _Run,
    batch: MessageBatch,
    expected: dict[str, int],
    targets: dict[str | None, ObjectStoragePath],
    label: str,
) -> Landed:
    batch_id = batch.id
    checker = ResultChecker(batch_id)
    gzip_level = _GZIP_LEVEL if run.options.compression == "gzip" else None
    objects: dict[str | None, AtomicObject] = {}
    writer = WriteBehind(depth=_WRITE_DEPTH)
    with _all_or_nothing(batch_id, targets, objects):
        with writer:
            for key, path in targets.items():
                objects[key] = AtomicObject(path, gzip_level=gzip_level, block_size=run.options.block_size)
            receiver = ResultsReceiver(
                checker,
                objects,
                writer,
                block_bytes=run.options.chunk_bytes,
                on_progress=lambda lines, nbytes: run.progress.add(lines, nbytes, label),
            )
            receive_results(run.loop, run.service, batch, receiver)
        checker.verify_counts(expected)
        _commit(run, targets, objects)
    log.info(
        "%s: landed %s (%s lines, %s bytes)",
        label,
        [obj.uri for obj in objects.values()],
        f"{checker.lines:,}",
        f"{sum(obj.content_bytes for obj in objects.values()):,}",
    )
    return Landed(
        files=file_entries(batch_id, objects),
        counts=dict(checker.counts),
        usage=dict(checker.usage),
        usage_by_model=checker.usage_by_model,
    )


@contextlib.contextmanager
def _all_or_nothing(
    name: str, targets: dict[str | None, ObjectStoragePath], objects: dict[str | None, AtomicObject]
) -> Iterator[None]:
    """On any failure inside, discard every object being written; a storage error names the targets."""
    try:
        yield
    except BaseException as exc:
        for obj in objects.values():
            obj.discard()
        if isinstance(exc, OSError) and not isinstance(exc, DestinationExistsError):
            raise DestinationWriteError(name, [clean_uri(p) for p in targets.values()], exc) from exc
        raise


def _commit(
    run: _Run, targets: dict[str | None, ObjectStoragePath], objects: dict[str | None, AtomicObject]
) -> None:
    if run.options.overwrite == "error":
        # Checked before downloading too; this closes most of the window in which another writer appears.
        existing = [path for path in targets.values() if path.exists()]
        if existing:
            raise exists_error(existing)
    for obj in objects.values():
        obj.commit()


def file_entries(batch_id: str, objects: dict[str | None, AtomicObject]) -> list[FileEntry]:
    """The manifest's entries for the objects just committed."""
    return [
        FileEntry(
            batch_id=batch_id,
            uri=obj.uri,
            result_type=key,
            lines=obj.lines,
            bytes=obj.bytes,
            sha256=obj.sha256,
        )
        for key, obj in objects.items()
    ]


def _ended_batch(run: _Run, batch_id: str) -> MessageBatch:
    batch = run.loop.run(lambda: run.service.retrieve(batch_id))
    if batch.processing_status != "ended":
        if not run.options.wait:
            raise BatchNotEndedError(batch_id, batch.processing_status)
        batch = _wait_until_ended(run, batch)
    if batch.archived_at is not None:
        raise ResultsArchivedError(batch_id, batch.archived_at.isoformat())
    return batch


def _wait_until_ended(run: _Run, batch: MessageBatch) -> MessageBatch:
    """Poll like ``BatchTrigger`` (same backoff and tolerance of failed reads) until the batch ends."""
    waiter = GroupWait(
        [batch.id],
        poll_interval=run.options.poll_interval,
        deadline=time.time() + run.options.wait_timeout,
        max_poll_errors=DEFAULT_MAX_POLL_ERRORS,
        log=log,
    )
    waiter.latest[batch.id] = batch_snapshot(batch)
    event = run.loop.run(lambda: waiter.wait(run.service))  # type: ignore[arg-type]
    latest = waiter.latest[batch.id]
    if event["status"] == "timeout":
        raise ResultsWaitTimeoutError(batch.id, latest["processing_status"], run.options.wait_timeout)
    if event["status"] != "success":
        raise event_exception(event)
    # The wait keeps each state as its snapshot, which holds every field of the model.
    return MessageBatch.model_validate(latest)


def _targets(run: _Run, batch_id: str, expected: dict[str, int]) -> dict[str | None, ObjectStoragePath]:
    suffix = run.options.suffix
    if not run.options.split_by_type:
        return {None: run.base / f"{batch_id}{suffix}"}
    return {t: run.base / batch_id / f"{t}{suffix}" for t in RESULT_TYPES if expected[t] > 0}


def _manifest(
    batch_ids: list[str],
    base: ObjectStoragePath,
    landed: list[Landed],
    duration: float,
    price_table: PriceTable,
) -> Manifest:
    counts = ResultCounts(succeeded=0, errored=0, canceled=0, expired=0)
    usage = UsageTotals(
        input_tokens=0, output_tokens=0, cache_creation_input_tokens=0, cache_read_input_tokens=0
    )
    files: list[FileEntry] = []
    usage_by_model: dict[str, dict[str, int]] = {}
    for item in landed:
        files.extend(item.files)
        add_usage(usage_by_model, item.usage_by_model)
        for result_type in RESULT_TYPES:
            counts[result_type] += item.counts[result_type]  # type: ignore[literal-required]
        for name in USAGE_FIELDS:
            usage[name] += item.usage[name]  # type: ignore[literal-required]
    return Manifest(
        batch_ids=batch_ids,
        destination=clean_uri(base),
        files=files,
        counts=counts,
        lines=sum(f["lines"] for f in files),
        bytes=sum(f["bytes"] for f in files),
        usage=usage,
        cost=cost_of_usage(usage_by_model, price_table),
        duration_seconds=round(duration, 3),
    )


def _retryable(exc: BaseException) -> bool:
    """A broken or short stream is fetched again; content that is wrong in itself is not."""
    if isinstance(exc, ResultsCountMismatchError):
        return exc.short
    if isinstance(exc, ResultsCheckError):
        return False
    return isinstance(exc, ResultsStreamError) or is_transient(exc)


def _base_path(destination: str | ObjectStoragePath, conn_id: str | None) -> ObjectStoragePath:
    if isinstance(destination, ObjectStoragePath):
        return storage_path(destination, conn_id)
    return storage_path(check_destination(destination), conn_id)


def _refuse_running_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "land_results is synchronous (it writes through object storage, whose S3 filesystem cannot be built "
        "inside a running event loop); call it from synchronous code, e.g. `await asyncio.to_thread(...)`"
    )
