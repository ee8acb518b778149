"""Merged landing of a group with resubmit rounds (real HTTP to the emulator, file:// storage): one line per
original request, byte for byte its final round's line, with the checks that make that true."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
import results_support
from results_support import requests_for

from airflow_batches.batch_ref import BatchGroup, batch_snapshot, group_of, new_group
from airflow_batches.emulator.testing import RunningEmulator
from airflow_batches.errors import ResultsCheckError
from airflow_batches.hooks import BatchHook
from airflow_batches.operators.resubmit import (
    DEFAULT_RESUBMIT_ERROR_TYPES,
    Resubmit,
    find_resubmittable,
    first_round,
    next_round,
)

results_emulator = results_support.results_emulator
hook = results_support.hook

FAST = {"retry_backoff": 0.0}


def raw_lines(emulator: RunningEmulator, batch_id: str) -> dict[str, bytes]:
    url = f"{emulator.base_url}/v1/messages/batches/{batch_id}/results"
    body = httpx.get(url, headers=emulator.headers, timeout=60).content
    return {json.loads(line)["custom_id"]: line for line in body.splitlines(keepends=True)}


def rounds_group(
    hook: BatchHook, emulator: RunningEmulator, prefix: str, n: int, text_bytes: int = 300
) -> tuple[BatchGroup, list[Any]]:
    """Round 1 in two batches (two requests always invalid), round 2 the transient failures, as the operator
    would record them; also the requests."""
    emulator.set_faults(transient_errored_rate=0.2, transient_expired_rate=0.1, transient_seed=2)
    requests = list(requests_for(prefix, n, text_bytes=text_bytes, errored=2))
    half = n // 2
    first = [hook.create(requests[:half]).id, hook.create(requests[half:]).id]
    group = first_round(new_group(first, [half, n - half], "f" * 64))
    snapshots = [batch_snapshot(hook.retrieve(b)) for b in first]
    group = group_of(snapshots, group)
    found = find_resubmittable(hook, snapshots, DEFAULT_RESUBMIT_ERROR_TYPES)
    assert 0 < len(found.custom_ids) < n // 2
    resent = [r for r in requests if r["custom_id"] in found.custom_ids]
    second = hook.create(resent).id
    group = next_round(group, [second], [len(resent)], found)
    group = group_of([batch_snapshot(hook.retrieve(second))], group)
    emulator.set_faults(transient_errored_rate=0.0, transient_expired_rate=0.0)
    return group, requests


def test_one_final_line_per_request_byte_for_byte(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    group, requests = rounds_group(hook, results_emulator, "merge", 60)
    first, second = group["rounds"]
    round_one = {
        **raw_lines(results_emulator, first["batch_ids"][0]),
        **raw_lines(results_emulator, first["batch_ids"][1]),
    }
    round_two = raw_lines(results_emulator, second["batch_ids"][0])

    manifest = hook.land_results(group, f"file://{tmp_path}/out/", **FAST)

    (landed,) = (tmp_path / "out").iterdir()
    assert landed.name == f"merged_{first['batch_ids'][0]}.jsonl"
    lines = landed.read_bytes().splitlines(keepends=True)
    by_id = {json.loads(line)["custom_id"]: line for line in lines}
    assert len(lines) == len(by_id) == 60, "exactly one line per original request"
    assert sorted(by_id) == sorted(r["custom_id"] for r in requests)
    for custom_id, line in by_id.items():
        assert line == round_two.get(custom_id, round_one[custom_id]), custom_id
    assert {
        json.loads(line)["result"]["type"] for c, line in by_id.items() if c not in ("merge-0", "merge-1")
    } == {"succeeded"}
    assert manifest["lines"] == 60 and manifest["counts"] == {
        "succeeded": 58,
        "errored": 2,
        "canceled": 0,
        "expired": 0,
    }
    assert manifest["batch_ids"] == group["batch_ids"]
    assert [r["batch_ids"] for r in manifest["rounds"]] == [first["batch_ids"], second["batch_ids"]]
    assert [r["resubmitted"] for r in manifest["rounds"]] == [0, len(round_two)]
    assert manifest["rounds"][1]["counts"]["succeeded"] == len(round_two)
    assert sum(manifest["rounds"][0]["counts"].values()) == 60
    usage = {"input_tokens": 0, "output_tokens": 0}
    for line in [*round_one.values(), *round_two.values()]:
        result = json.loads(line)["result"]
        if result["type"] == "succeeded":
            for key in usage:
                usage[key] += result["message"]["usage"][key]
    assert manifest["usage"]["input_tokens"] == usage["input_tokens"] > 0
    assert manifest["usage"]["output_tokens"] == usage["output_tokens"]
    assert manifest["files"][0]["lines"] == 60


def test_split_by_type_splits_the_final_results(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    group, _ = rounds_group(hook, results_emulator, "split", 40)
    manifest = hook.land_results(group, f"file://{tmp_path}/out/", split_by_type=True, **FAST)
    folder = tmp_path / "out" / f"merged_{group['batch_ids'][0]}"
    assert sorted(p.name for p in folder.iterdir()) == ["errored.jsonl", "succeeded.jsonl"]
    assert len((folder / "succeeded.jsonl").read_text().splitlines()) == 38
    assert {
        json.loads(line)["custom_id"] for line in (folder / "errored.jsonl").read_text().splitlines()
    } == {
        "split-0",
        "split-1",
    }
    assert {f["result_type"]: f["lines"] for f in manifest["files"]} == {"succeeded": 38, "errored": 2}


def test_a_broken_stream_is_fetched_again_without_duplicating_lines(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    group, _ = rounds_group(hook, results_emulator, "cut", 30)
    results_emulator.set_faults(cut_results_after=3000, cut_results_times=2)
    manifest = hook.land_results(group, f"file://{tmp_path}/out/", max_attempts=3, **FAST)
    lines = (tmp_path / "out" / f"merged_{group['batch_ids'][0]}.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(line)["custom_id"] for line in lines}) == 30
    assert manifest["lines"] == 30


def test_a_rerun_with_skip_keeps_the_checked_merged_file(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    group, _ = rounds_group(hook, results_emulator, "skip", 20)
    first = hook.land_results(group, f"file://{tmp_path}/out/", **FAST)
    results_before = results_emulator.stats()["requests"].get("results", 0)
    again = hook.land_results(group, f"file://{tmp_path}/out/", overwrite="skip", **FAST)
    assert results_emulator.stats()["requests"].get("results", 0) == results_before, "nothing downloaded"
    assert again["files"] == first["files"] and again["counts"] == first["counts"]
    assert [r["batch_ids"] for r in again["rounds"]] == [r["batch_ids"] for r in first["rounds"]]


def one_round(hook: BatchHook, requests: list[Any]) -> BatchGroup:
    """A group with rounds whose round 1 is one ended batch of ``requests``."""
    batch_id = hook.create(requests).id
    group = first_round(new_group([batch_id], [len(requests)], "f" * 64))
    return group_of([batch_snapshot(hook.retrieve(batch_id))], group)


def test_a_resent_request_that_had_succeeded_is_refused(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    requests = list(requests_for("tamper", 4))
    group = one_round(hook, requests)
    second = hook.create(requests[:1]).id
    group = next_round(group, [second], [1], Resubmit({"tamper-0"}, errored=1))
    group = group_of([batch_snapshot(hook.retrieve(second))], group)
    with pytest.raises(
        ResultsCheckError, match="'tamper-0' was resent in round 2 although its result here is 'succeeded'"
    ):
        hook.land_results(group, f"file://{tmp_path}/out/", **FAST)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == [], "nothing landed"


def test_a_group_whose_rounds_miss_requests_is_refused(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    group = one_round(hook, list(requests_for("short", 3)))
    group["total_requests"] = 4
    with pytest.raises(ResultsCheckError, match=r"3 final line.*4 original request"):
        hook.land_results(group, f"file://{tmp_path}/out/", **FAST)
    group["total_requests"] = 3
    group["rounds"][0]["request_counts"] = [2]
    with pytest.raises(ResultsCheckError, match="holds 3 requests but the group records 2"):
        hook.land_results(group, f"file://{tmp_path}/out/", **FAST)


def test_big_rounds_are_scanned_and_land_merged_in_bounded_memory(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    group, _ = rounds_group(hook, results_emulator, "bigmerge", 300, text_bytes=100_000)
    first = [batch_snapshot(hook.retrieve(b)) for b in group["rounds"][0]["batch_ids"]]
    tracemalloc.start()
    try:
        found = find_resubmittable(hook, first, DEFAULT_RESUBMIT_ERROR_TYPES)
        _, scan_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        manifest = hook.land_results(group, f"file://{tmp_path}/out/", **FAST)
        _, land_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(found.custom_ids) == group["rounds"][1]["resubmitted"]
    assert manifest["lines"] == 300 and manifest["bytes"] > 25_000_000
    assert scan_peak < 5_000_000, f"finding the failed ids peaked at {scan_peak / 1e6:.1f} MB"
    assert land_peak < 20_000_000, f"the merged landing peaked at {land_peak / 1e6:.1f} MB"
