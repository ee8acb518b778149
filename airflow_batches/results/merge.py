"""Landing a group with resubmit rounds as one merged result: one line per original request, its final one.

A create operator with ``resubmit_rounds`` returns a group whose ``rounds`` name the batches of each round.
Every request has exactly one line in each round it was sent in; its *final* line is the one of the last
round that sent it. The merged landing writes exactly those lines, byte for byte as the API sent them, into
``<destination>/merged_<first batch id>.jsonl`` (``split_by_type``:
``<destination>/merged_<first batch id>/<type>.jsonl``).

Rounds are read newest first, so a line is final unless its ``custom_id`` was already seen in a later round
(a dict of ``custom_id`` -> round, the one structure that grows with the number of requests). Each batch's
kept lines are spooled to a temp file and appended to the destination only once the batch's stream arrived
whole and matched its ``request_counts``, so a broken stream is fetched again without leaving half a batch
behind. Checks, besides the per-batch ones of a plain landing: every request of round ``r + 1`` had a line in
round ``r`` and that line was ``errored`` or ``expired`` (a request that succeeded is never replaced); each
round's batches hold the ``request_counts`` the group recorded; no ``custom_id`` is final twice; and the final
lines number ``total_requests``. Usage is summed over every line of every round.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Unpack

from airflow.sdk import ObjectStoragePath

from airflow_batches.api.jsonl import LineChunk, size_of_lines
from airflow_batches.api.models import RESULT_TYPES, MessageBatch
from airflow_batches.batch_ref import BatchGroup, BatchRef, ResultCounts, RoundRecord, group_in
from airflow_batches.cost.prices import PriceTable, validate_prices
from airflow_batches.cost.usage_cost import add_usage
from airflow_batches.errors import (
    ResultsCheckError,
)
from airflow_batches.hooks.sync_runner import PrivateLoop
from airflow_batches.results.checker import USAGE_FIELDS, ResultChecker
from airflow_batches.results.landed import Landed, exists_error, kept_existing
from airflow_batches.results.landing import (
    _GZIP_LEVEL,
    ResultsService,
    ServiceSource,
    _all_or_nothing,
    _base_path,
    _commit,
    _ended_batch,
    _manifest,
    _Run,
    _with_retries,
    file_entries,
)
from airflow_batches.results.manifest import Manifest, RoundEntry
from airflow_batches.results.options import LandingOptions, check_options
from airflow_batches.results.progress import Progress
from airflow_batches.results.sink import AtomicObject
from airflow_batches.results.stream import for_each_chunk

__all__ = ["group_with_rounds", "land_merged"]

log = logging.getLogger(__name__)

_RESUBMITTABLE = ("errored", "expired")
_SPOOL_READ = 1 << 20


def group_with_rounds(batch_ref: BatchRef | Any) -> BatchGroup | None:
    """The group when ``batch_ref`` is a create operator's group with ``rounds`` (or its JSON text)."""
    value = group_in(batch_ref)
    if value is None or not value.get("rounds"):
        return None
    rounds = value["rounds"]
    if not isinstance(rounds, list) or not all(isinstance(r, Mapping) and r.get("batch_ids") for r in rounds):
        raise ResultsCheckError(
            "the batch group's 'rounds' is not a list of {batch_ids, request_counts, resubmitted}; pass the "
            "create operator's return value unchanged"
        )
    if not isinstance(value.get("total_requests"), int):
        raise ResultsCheckError("a batch group with 'rounds' needs 'total_requests' (the create operator's)")
    return value  # type: ignore[return-value]


@dataclass
class _Merge:
    """What is known about the final lines so far, newest round first."""

    final_round: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULT_TYPES, 0))
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_FIELDS, 0))
    usage_by_model: dict[str, dict[str, int]] = field(default_factory=dict)  # every round's: all were paid


@dataclass
class _BatchPass:
    """One batch's stream, before it is accepted: the lines it keeps (spooled) and what it replaced."""

    spools: dict[str | None, IO[bytes]]
    kept: list[str] = field(default_factory=list)
    kept_types: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULT_TYPES, 0))
    replaced: int = 0


def land_merged(
    hook: ServiceSource,
    group: BatchGroup,
    destination: str | ObjectStoragePath,
    **options: Unpack[LandingOptions],
) -> Manifest:
    """Land one final line per original request of ``group`` (see the module docstring)."""
    settings = check_options(options)
    base = _base_path(destination, settings.destination_conn_id)
    rounds: list[RoundRecord] = list(group["rounds"])
    batch_ids = [b for r in rounds for b in r["batch_ids"]]
    name = f"merged_{rounds[0]['batch_ids'][0]}"
    started = time.monotonic()
    service: ResultsService = hook.get_service()
    with PrivateLoop() as loop:
        loop.run(service.__aenter__)
        try:
            run = _Run(
                loop=loop,
                service=service,
                base=base,
                options=settings,
                progress=Progress(log, settings.progress_interval),
            )
            landed, round_entries = _land(run, name, group, rounds)
        finally:
            loop.run(lambda: service.__aexit__(None, None, None))
    price_table = PriceTable(validate_prices(settings.prices))
    manifest = _manifest(batch_ids, base, [landed], time.monotonic() - started, price_table)
    manifest["rounds"] = round_entries
    log.info(
        "landed %d round(s) of %d batch(es) merged under %s: %s lines (one per request), counts %s",
        len(rounds),
        len(batch_ids),
        manifest["destination"],
        f"{manifest['lines']:,}",
        manifest["counts"],
    )
    return manifest


def _targets(run: _Run, name: str, counts: Mapping[str, int] | None) -> dict[str | None, ObjectStoragePath]:
    suffix = run.options.suffix
    if not run.options.split_by_type:
        return {None: run.base / f"{name}{suffix}"}
    types = [t for t in RESULT_TYPES if counts is None or counts.get(t, 0) > 0]
    return {t: run.base / name / f"{t}{suffix}" for t in types}


def _recorded_entries(rounds: list[RoundRecord]) -> list[RoundEntry]:
    return [
        RoundEntry(
            batch_ids=list(r["batch_ids"]),
            request_counts=list(r["request_counts"]),
            counts=ResultCounts(
                succeeded=r["counts"]["succeeded"],
                errored=r["counts"]["errored"],
                canceled=r["counts"]["canceled"],
                expired=r["counts"]["expired"],
            ),
            resubmitted=r["resubmitted"],
        )
        for r in rounds
    ]


def _land(
    run: _Run, name: str, group: BatchGroup, rounds: list[RoundRecord]
) -> tuple[Landed, list[RoundEntry]]:
    existing = [p for p in _targets(run, name, None).values() if p.exists()]
    if existing and run.options.overwrite == "error":
        raise exists_error(existing)
    final = {t: int(group["counts"][t]) for t in RESULT_TYPES}  # type: ignore[literal-required]
    wanted = _targets(run, name, final)
    if existing and run.options.overwrite == "skip" and all(p.exists() for p in wanted.values()):
        landed = kept_existing(name, name, wanted, final, run.options)
        if landed is not None:
            return landed, _recorded_entries(rounds)
    total = group["total_requests"]
    merge = _Merge()
    entries: list[RoundEntry] = []
    gzip_level = _GZIP_LEVEL if run.options.compression == "gzip" else None
    objects: dict[str | None, AtomicObject] = {}
    targets_all = _targets(run, name, None)
    with _all_or_nothing(name, targets_all, objects):
        later_lines = 0
        for number in range(len(rounds), 0, -1):
            record = rounds[number - 1]
            entry, replaced, lines = _land_round(run, merge, record, number, objects, targets_all, gzip_level)
            if number < len(rounds) and replaced != later_lines:
                raise ResultsCheckError(
                    f"round {number + 1} resent {later_lines} request(s), but {replaced} of them have an "
                    f"errored or expired line in round {number}; the group's rounds do not fit together. "
                    "Pass the create operator's return value unchanged."
                )
            entries.append(entry)
            later_lines = lines
        kept = len(merge.final_round)
        if kept != total:
            raise ResultsCheckError(
                f"the merged result has {kept} final line(s) but the group sent {total} original request(s): "
                "some requests have no line. Nothing was landed."
            )
        _commit(run, targets_all, objects)
    entries.reverse()
    # The merged file holds lines of every batch of every round: it is named, not a batch id.
    files = file_entries(name, objects)
    landed = Landed(files=files, counts=merge.counts, usage=merge.usage, usage_by_model=merge.usage_by_model)
    return landed, entries


def _land_round(
    run: _Run,
    merge: _Merge,
    record: RoundRecord,
    number: int,
    objects: dict[str | None, AtomicObject],
    targets: dict[str | None, ObjectStoragePath],
    gzip_level: int | None,
) -> tuple[RoundEntry, int, int]:
    """Land round ``number``'s final lines: its manifest entry, how many lines of later rounds replaced lines
    of this one, and how many lines it has."""
    counts: dict[str, int] = dict.fromkeys(RESULT_TYPES, 0)
    replaced = 0
    lines = 0
    recorded = list(record.get("request_counts", []))
    for index, batch_id in enumerate(record["batch_ids"]):
        label = f"round {number} batch {index + 1}/{len(record['batch_ids'])} {batch_id}"
        batch = _ended_batch(run, batch_id)
        expected = {t: int(getattr(batch.request_counts, t)) for t in RESULT_TYPES}
        if index < len(recorded) and sum(expected.values()) != recorded[index]:
            raise ResultsCheckError(
                f"{label}: the batch holds {sum(expected.values())} requests but the group records "
                f"{recorded[index]}; pass the create operator's return value unchanged",
                batch_id=batch_id,
            )
        accepted, checker = _with_retries(
            run, label, functools.partial(_read_batch, run, merge, batch, expected, number, label)
        )
        try:
            for key, spool in accepted.spools.items():
                spool.seek(0)
                for chunk in _spooled_chunks(spool):
                    obj = objects.get(key)
                    if obj is None:
                        obj = objects[key] = AtomicObject(
                            targets[key], gzip_level=gzip_level, block_size=run.options.block_size
                        )
                    obj.write_lines(chunk)
        finally:
            for spool in accepted.spools.values():
                spool.close()
        for custom_id in accepted.kept:
            merge.final_round[custom_id] = number
        for t in RESULT_TYPES:
            merge.counts[t] += accepted.kept_types[t]
            counts[t] += checker.counts[t]
        for f in USAGE_FIELDS:
            merge.usage[f] += checker.usage[f]
        add_usage(merge.usage_by_model, checker.usage_by_model)
        replaced += accepted.replaced
        lines += checker.lines
    entry = RoundEntry(
        batch_ids=list(record["batch_ids"]),
        request_counts=recorded,
        counts=ResultCounts(
            succeeded=counts["succeeded"],
            errored=counts["errored"],
            canceled=counts["canceled"],
            expired=counts["expired"],
        ),
        resubmitted=int(record.get("resubmitted", 0)),
    )
    return entry, replaced, lines


def _read_batch(
    run: _Run, merge: _Merge, batch: MessageBatch, expected: dict[str, int], number: int, label: str
) -> tuple[_BatchPass, ResultChecker]:
    checker = ResultChecker(batch.id)
    split = run.options.split_by_type
    spools: dict[str | None, IO[bytes]] = {}
    state = _BatchPass(spools=spools)
    final_round = merge.final_round
    try:

        def consume(chunk: LineChunk) -> None:
            all_utf8 = chunk.is_utf8()
            for line in chunk.lines:
                result_type = checker.check(line, all_utf8=all_utf8)
                custom_id = checker.last_custom_id
                later = final_round.get(custom_id)
                if later is not None:
                    if later == number:
                        raise ResultsCheckError(
                            f"{label}: custom_id {custom_id!r} appears in two batches of round {number}",
                            batch_id=batch.id,
                        )
                    if result_type not in _RESUBMITTABLE:
                        raise ResultsCheckError(
                            f"{label}: custom_id {custom_id!r} was resent in round {later} although its "
                            f"result here is {result_type!r}; only errored or expired ones are resent",
                            batch_id=batch.id,
                        )
                    state.replaced += 1
                    continue
                key = result_type if split else None
                spool = spools.get(key)
                if spool is None:
                    # Closed by the caller once appended, or below on failure.
                    spool = spools[key] = tempfile.TemporaryFile()  # noqa: SIM115
                spool.write(line)
                spool.write(b"\n")
                state.kept.append(custom_id)
                state.kept_types[result_type] += 1
            run.progress.add(len(chunk.lines), size_of_lines(chunk.lines), label)

        for_each_chunk(run.loop, run.service, batch, consume)
        checker.verify_counts(expected)
    except BaseException:
        for spool in spools.values():
            spool.close()
        raise
    return state, checker


def _spooled_chunks(spool: IO[bytes]) -> Any:
    """The spooled lines again, in lists of about a megabyte."""
    chunk: list[bytes] = []
    size = 0
    for line in spool:
        chunk.append(line)
        size += len(line)
        if size >= _SPOOL_READ:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk
