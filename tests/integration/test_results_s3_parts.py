"""PartsUpload against a real S3 API (a moto server on loopback): parts concurrent but bounded, stored in the
order written, the object visible only at commit, and a failed part leaving no object and no open upload."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import results_support
import s3fs
from results_support import ended_batch
from s3 import S3Bucket, moto_s3, s3_bucket  # noqa: F401 - fixtures

from airflow_batches.emulator.testing import RunningEmulator
from airflow_batches.errors import DestinationWriteError
from airflow_batches.hooks import BatchHook
from airflow_batches.results.s3_upload import MIN_PART_BYTES, PartsUpload

results_emulator = results_support.results_emulator
hook = results_support.hook

PART = MIN_PART_BYTES


def s3_filesystem(bucket: S3Bucket) -> Any:
    return s3fs.S3FileSystem(
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": bucket.endpoint_url, "region_name": "us-east-1"},
        skip_instance_cache=True,
    )


class PartCalls:
    """Wraps ``fs._call_s3`` (the real call still goes to moto) to see ``upload_part`` calls overlap."""

    def __init__(self, fs: Any, *, hold_until: int = 1, fail_part: int | None = None) -> None:
        self._call: Callable[..., Awaitable[Any]] = fs._call_s3
        self._hold_until = hold_until
        self._fail_part = fail_part
        self.active = 0
        self.most_active = 0
        self.finished: list[int] = []
        self._enough: asyncio.Event | None = None
        fs._call_s3 = self

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method != "upload_part":
            return await self._call(method, *args, **kwargs)
        number = kwargs["PartNumber"]
        if self._enough is None:
            self._enough = asyncio.Event()
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            if self.active >= self._hold_until:
                self._enough.set()
            # The first parts wait until enough are in flight (or 10 s), so the overlap does not depend on
            # how fast moto answers; part 1 then finishes last.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._enough.wait(), 10)
            if number == 1:
                await asyncio.sleep(0.3)
            if number == self._fail_part:
                raise OSError(f"part {number} could not be stored")
            answer = await self._call(method, *args, **kwargs)
            self.finished.append(number)
            return answer
        finally:
            self.active -= 1


def test_parts_upload_concurrently_bounded_in_write_order_and_appear_only_at_commit(
    s3_bucket: S3Bucket,  # noqa: F811
) -> None:
    fs = s3_filesystem(s3_bucket)
    calls = PartCalls(fs, hold_until=3)
    upload = PartsUpload(fs, f"{s3_bucket.name}/out/object.jsonl", part_bytes=PART, in_flight=3)
    pieces = [bytes([65 + i]) * (PART // 2) for i in range(11)]  # 5 full parts and a half one

    for piece in pieces:
        upload.write(piece)
    upload.close()

    assert calls.most_active == 3  # concurrent, never past the bound
    # Part 1 finished after parts 2 and 3: numbering follows the writes, not the finishes.
    assert sorted(calls.finished[:3]) == [1, 2, 3] and calls.finished[2] == 1
    assert s3_bucket.keys() == []  # nothing visible before commit
    assert s3_bucket.pending_uploads() == ["out/object.jsonl"]
    upload.commit()
    assert s3_bucket.read("out/object.jsonl") == b"".join(pieces)
    assert s3_bucket.pending_uploads() == []
    assert sorted(calls.finished) == [1, 2, 3, 4, 5, 6]


def test_an_object_smaller_than_a_part_is_one_put_at_commit(s3_bucket: S3Bucket) -> None:  # noqa: F811
    fs = s3_filesystem(s3_bucket)
    upload = PartsUpload(fs, f"{s3_bucket.name}/small.jsonl", part_bytes=PART, in_flight=3)

    upload.write(b'{"a": 1}\n')
    upload.write(b'{"b": 2}\n')
    upload.close()

    assert s3_bucket.keys() == []
    assert s3_bucket.pending_uploads() == []
    upload.commit()
    assert s3_bucket.read("small.jsonl") == b'{"a": 1}\n{"b": 2}\n'


def test_a_failed_part_is_raised_and_discard_leaves_no_object_and_no_upload(
    s3_bucket: S3Bucket,  # noqa: F811
) -> None:
    fs = s3_filesystem(s3_bucket)
    PartCalls(fs, fail_part=2)
    upload = PartsUpload(fs, f"{s3_bucket.name}/broken.jsonl", part_bytes=PART, in_flight=2)

    with pytest.raises(OSError, match="part 2 could not be stored"):
        for _ in range(12):
            upload.write(b"x" * PART)
        upload.close()
    upload.discard()

    assert s3_bucket.keys() == []
    assert s3_bucket.pending_uploads() == []
    with pytest.raises(ValueError, match="closed"):
        upload.write(b"more")


def test_a_part_failing_mid_landing_discards_the_object(
    hook: BatchHook,
    results_emulator: RunningEmulator,
    s3_bucket: S3Bucket,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch_id = ended_batch(hook, "s3partfail", 300, text_bytes=60_000)  # about 18 MB: 3 parts of 5 MB
    real_call = s3fs.S3FileSystem._call_s3

    async def failing_part_2(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part" and kwargs["PartNumber"] == 2:
            raise OSError("part 2 could not be stored")
        return await real_call(self, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", failing_part_2)

    with pytest.raises(DestinationWriteError, match="part 2 could not be stored"):
        hook.land_results(
            batch_id, f"s3://{s3_bucket.name}/out/", destination_conn_id="aws_default", block_size=PART
        )

    assert s3_bucket.keys() == []
    assert s3_bucket.pending_uploads() == []
