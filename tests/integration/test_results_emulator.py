"""Landing results from the emulator (real HTTP over loopback) into file:// through BatchHook.land_results."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import tracemalloc
from pathlib import Path

import pytest
import results_support
from results_support import ended_batch, raw_results_sha256

from airflow_batches.api.errors import BatchNotEndedError, ResultsArchivedError, ResultsStreamError
from airflow_batches.emulator.testing import RunningEmulator
from airflow_batches.errors import ResultsCheckError, ResultsCountMismatchError
from airflow_batches.hooks import BatchHook

results_emulator = results_support.results_emulator
hook = results_support.hook

FAST = {"retry_backoff": 0.0}


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_big_results_land_byte_exact_in_bounded_memory(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    batch_id = ended_batch(hook, "big", 600, text_bytes=100_000)
    reference_sha, reference_size = raw_results_sha256(results_emulator, batch_id)
    assert reference_size > 50_000_000
    # A first landing imports modules, whose memory would count as the landing's if traced: whether it does
    # would depend on which tests ran before.
    hook.land_results(ended_batch(hook, "warm", 2), f"file://{tmp_path}/warm/")

    tracemalloc.start()
    try:
        manifest = hook.land_results(batch_id, f"file://{tmp_path}/out/", progress_interval=1.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    landed = tmp_path / "out" / f"{batch_id}.jsonl"
    assert hashlib.sha256(landed.read_bytes()).hexdigest() == reference_sha
    assert manifest["files"][0]["sha256"] == reference_sha
    assert manifest["bytes"] == reference_size
    assert manifest["lines"] == 600
    assert manifest["counts"] == {"succeeded": 600, "errored": 0, "canceled": 0, "expired": 0}
    assert manifest["usage"]["output_tokens"] > 600 * 100_000 // 4 - 1
    # Streaming: about 1 MB being read and checked, up to 4 blocks of 1 MB waiting for the writer and one
    # being joined (about 7 MB measured), nothing close to the 60 MB of results.
    assert peak < 12_000_000, f"peak traced memory {peak:,} bytes while landing {reference_size:,} bytes"


def test_results_outside_ascii_land_byte_exact(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    # Characters of two, three and four bytes in every reply, over a few dozen reads of the body, so some
    # are cut between two reads: the landing checks each read's whole lines as UTF-8 and must accept them.
    batch_id = ended_batch(hook, "utf8", 300, text_bytes=20_000, filler="é漢🙂")
    reference_sha, reference_size = raw_results_sha256(results_emulator, batch_id)
    assert reference_size > 5_000_000

    manifest = hook.land_results(batch_id, f"file://{tmp_path}/")

    landed = (tmp_path / f"{batch_id}.jsonl").read_bytes()
    assert "é漢🙂".encode() in landed  # sent as UTF-8, not as JSON escapes
    assert hashlib.sha256(landed).hexdigest() == reference_sha == manifest["files"][0]["sha256"]
    assert manifest["lines"] == 300
    assert manifest["counts"] == {"succeeded": 300, "errored": 0, "canceled": 0, "expired": 0}


def test_cut_stream_is_fetched_again_and_lands_byte_identical(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    batch_id = ended_batch(hook, "cut", 200, text_bytes=2_000)
    uncut = hook.land_results(batch_id, f"file://{tmp_path}/uncut")
    cuts_before = results_emulator.stats()["results_cut"]
    results_emulator.set_faults(cut_results_after=150_000, cut_results_times=2)

    manifest = hook.land_results(batch_id, f"file://{tmp_path}/cut", max_attempts=3, **FAST)

    assert results_emulator.stats()["results_cut"] - cuts_before == 2
    assert manifest["files"][0]["sha256"] == uncut["files"][0]["sha256"]
    assert (tmp_path / "cut" / f"{batch_id}.jsonl").read_bytes() == (
        tmp_path / "uncut" / f"{batch_id}.jsonl"
    ).read_bytes()
    assert files_under(tmp_path / "cut") == [f"{batch_id}.jsonl"]


def test_a_stream_cut_every_time_fails_and_leaves_no_partial(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    batch_id = ended_batch(hook, "always", 50, text_bytes=2_000)
    results_emulator.set_faults(cut_results_after=20_000)

    with pytest.raises(ResultsStreamError, match="fetch the results again"):
        hook.land_results(batch_id, f"file://{tmp_path}/out", max_attempts=2, **FAST)

    assert files_under(tmp_path) == []


def results_downloads(emulator: RunningEmulator) -> int:
    return int(emulator.stats()["requests"].get("results", 0))  # absent until the first download


def test_a_short_stream_is_fetched_again_then_fails_naming_each_type(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    # Results come in reverse input order, so the three lines left out are requests 0-2: both errored ones
    # and one succeeded. The body still ends at a line boundary; only the counts show it is short.
    batch_id = ended_batch(hook, "short", 6, errored=2)
    results_emulator.set_faults(results_drop_lines=3)
    downloads_before = results_downloads(results_emulator)

    with pytest.raises(ResultsCountMismatchError) as caught:
        hook.land_results(batch_id, f"file://{tmp_path}/out", max_attempts=3, **FAST)

    message = str(caught.value)
    assert "succeeded: expected 4, got 3" in message
    assert "errored: expected 2, got 0" in message
    assert "3 lines in total, 6 expected" in message
    assert results_downloads(results_emulator) - downloads_before == 3, "fetched again up to max_attempts"
    assert files_under(tmp_path) == []


def test_a_duplicated_line_fails_at_once_naming_the_custom_id(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    batch_id = ended_batch(hook, "dup", 4)
    results_emulator.set_faults(results_duplicate_line=True)
    downloads_before = results_downloads(results_emulator)

    # The first line sent is the last request's result.
    with pytest.raises(ResultsCheckError, match=r"custom_id 'dup-3' appears twice .*line 2"):
        hook.land_results(batch_id, f"file://{tmp_path}/out", max_attempts=3, **FAST)

    assert results_downloads(results_emulator) - downloads_before == 1, "wrong content is not fetched again"
    assert files_under(tmp_path) == []


def test_group_split_by_type_and_gzip(hook: BatchHook, tmp_path: Path) -> None:
    first = ended_batch(hook, "g1", 5, errored=2)
    second = ended_batch(hook, "g2", 3)
    group = {"batch_ids": [first, second], "request_counts": [5, 3], "total_requests": 8}

    manifest = hook.land_results(group, f"file://{tmp_path}/r/", split_by_type=True, compression="gzip")

    assert files_under(tmp_path / "r") == sorted(
        [f"{first}/errored.jsonl.gz", f"{first}/succeeded.jsonl.gz", f"{second}/succeeded.jsonl.gz"]
    )
    assert manifest["counts"] == {"succeeded": 6, "errored": 2, "canceled": 0, "expired": 0}
    errored = gzip.decompress((tmp_path / "r" / first / "errored.jsonl.gz").read_bytes()).splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in errored) == ["g1-0", "g1-1"]
    assert {json.loads(line)["result"]["type"] for line in errored} == {"errored"}
    assert sum(f["lines"] for f in manifest["files"]) == manifest["lines"] == 8


def test_a_batch_in_progress_is_refused_or_waited_for(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    results_emulator.configure(processing_seconds=3600)
    batch = hook.create(
        [
            {
                "custom_id": "w",
                "params": {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
            }
        ]
    )

    with pytest.raises(BatchNotEndedError, match="in_progress"):
        hook.land_results(batch.id, f"file://{tmp_path}")

    # Another party moves time on while land_results polls.
    timer = threading.Timer(0.5, results_emulator.advance_clock, args=(3600,))
    timer.start()
    try:
        manifest = hook.land_results(
            batch.id, f"file://{tmp_path}", wait=True, poll_interval=0.1, wait_timeout=30
        )
    finally:
        timer.join()
    assert manifest["counts"]["succeeded"] == 1


def test_archived_results_are_a_clear_error(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    batch_id = ended_batch(hook, "old", 2)
    results_emulator.advance_clock(30 * 24 * 3600)

    with pytest.raises(ResultsArchivedError, match="29 days"):
        hook.land_results(batch_id, f"file://{tmp_path}")
    assert files_under(tmp_path) == []


def test_api_key_never_reaches_the_landing_output(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch_id = ended_batch(hook, "secret", 3)
    caplog.set_level("DEBUG")

    manifest = hook.land_results(batch_id, f"file://{tmp_path}", progress_interval=1e-9)

    key = results_emulator.api_key
    assert key not in json.dumps(manifest)
    assert key not in caplog.text
    assert all(key.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
