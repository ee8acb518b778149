"""Landing results from the emulator into a real S3 API (a moto server on loopback) via ObjectStoragePath."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest
import results_support
from results_support import ended_batch, raw_results_sha256
from s3 import S3Bucket, moto_s3, s3_bucket  # noqa: F401 - fixtures

from airflow_batches.api.errors import ResultsStreamError
from airflow_batches.emulator.testing import RunningEmulator
from airflow_batches.errors import DestinationWriteError
from airflow_batches.hooks import BatchHook

results_emulator = results_support.results_emulator
hook = results_support.hook

S3 = {"destination_conn_id": "aws_default", "block_size": 5 * 2**20, "retry_backoff": 0.0}


def test_big_results_land_on_s3_byte_exact_in_bounded_memory(
    hook: BatchHook,
    results_emulator: RunningEmulator,
    s3_bucket: S3Bucket,  # noqa: F811
) -> None:
    batch_id = ended_batch(hook, "s3big", 550, text_bytes=100_000)
    reference_sha, reference_size = raw_results_sha256(results_emulator, batch_id)
    assert reference_size > 50_000_000
    # Warm-up: the first S3 call of a process loads botocore's service model (tens of MB, once).
    hook.land_results(ended_batch(hook, "s3warm", 2), f"s3://{s3_bucket.name}/warmup/", **S3)

    tracemalloc.start()
    try:
        manifest = hook.land_results(batch_id, f"s3://{s3_bucket.name}/claude/2026-01-01/", **S3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    key = f"claude/2026-01-01/{batch_id}.jsonl"
    assert s3_bucket.keys("claude/") == [key]
    assert hashlib.sha256(s3_bucket.read(key)).hexdigest() == reference_sha
    assert manifest["destination"] == f"s3://{s3_bucket.name}/claude/2026-01-01"
    assert manifest["files"][0]["uri"] == f"s3://{s3_bucket.name}/{key}"
    assert manifest["files"][0]["sha256"] == reference_sha
    assert manifest["bytes"] == reference_size
    assert s3_bucket.pending_uploads() == []
    # One 5 MB part (copied a few times by s3fs and botocore on its way out) plus a few 1 MB chunks in
    # flight, whatever the object size.
    assert peak < 40_000_000, f"peak traced memory {peak:,} bytes while landing {reference_size:,} bytes"


def test_a_cut_landing_aborts_the_upload_and_leaves_no_object(
    hook: BatchHook,
    results_emulator: RunningEmulator,
    s3_bucket: S3Bucket,  # noqa: F811
) -> None:
    batch_id = ended_batch(hook, "s3cut", 200, text_bytes=60_000)  # 12 MB: parts are uploaded before the cut
    results_emulator.set_faults(cut_results_after=11_000_000)

    with pytest.raises(ResultsStreamError):
        hook.land_results(batch_id, f"s3://{s3_bucket.name}/out/", max_attempts=2, **S3)

    assert s3_bucket.keys() == []
    assert s3_bucket.pending_uploads() == []


def test_unwritable_destination_a_missing_bucket_fails_and_is_named(
    hook: BatchHook,
    s3_bucket: S3Bucket,  # noqa: F811
) -> None:
    batch_id = ended_batch(hook, "s3nobucket", 3)

    with pytest.raises(DestinationWriteError, match=r"s3://no-such-bucket-here/out/.*bucket does not exist"):
        hook.land_results(batch_id, "s3://no-such-bucket-here/out/", **S3)

    assert "no-such-bucket-here" not in [b["Name"] for b in s3_bucket.client.list_buckets()["Buckets"]]
