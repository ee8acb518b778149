"""Destinations that already exist or cannot be written, on file:// and on s3:// (a moto server), with the
emulator serving the results over loopback."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import results_support
from results_support import ended_batch, raw_results_sha256
from s3 import S3Bucket, moto_s3, s3_bucket  # noqa: F401 - fixtures

from airflow_batches.emulator.testing import RunningEmulator
from airflow_batches.errors import DestinationExistsError, DestinationWriteError
from airflow_batches.hooks import BatchHook

results_emulator = results_support.results_emulator
hook = results_support.hook

OLD = b"someone else's data\n"


@dataclass(frozen=True)
class Store:
    """One destination prefix and plain access to what is stored under it (not through the landing)."""

    uri: str
    options: dict[str, Any]  # land_results arguments this store needs
    read: Callable[[str], bytes]
    write: Callable[[str, bytes], None]
    names: Callable[[], list[str]]  # every object under the prefix, hidden partial files included


def file_store(root: Path) -> Store:
    def write(name: str, data: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    return Store(
        uri=f"file://{root}/",
        options={"retry_backoff": 0.0},
        read=lambda name: (root / name).read_bytes(),
        write=write,
        names=lambda: sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
    )


def s3_store(bucket: S3Bucket) -> Store:
    prefix = "out/"

    def names() -> list[str]:
        # An unfinished multipart upload is S3's partial object: it must not be left behind either.
        pending = [f"(upload) {key}" for key in bucket.pending_uploads()]
        return [key.removeprefix(prefix) for key in bucket.keys(prefix)] + pending

    return Store(
        uri=f"s3://{bucket.name}/{prefix}",
        options={"destination_conn_id": "aws_default", "block_size": 5 * 2**20, "retry_backoff": 0.0},
        read=lambda name: bucket.read(prefix + name),
        write=lambda name, data: bucket.client.put_object(Bucket=bucket.name, Key=prefix + name, Body=data),
        names=names,
    )


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "file":
        return file_store(tmp_path / "out")
    return s3_store(request.getfixturevalue("s3_bucket"))


def results_requests(emulator: RunningEmulator) -> int:
    return int(emulator.stats()["requests"].get("results", 0))


def test_existing_destination_replace_swaps_it_atomically(
    hook: BatchHook, results_emulator: RunningEmulator, store: Store
) -> None:
    batch_id = ended_batch(hook, "replace", 20, text_bytes=1_000)
    name = f"{batch_id}.jsonl"
    store.write(name, OLD)

    manifest = hook.land_results(batch_id, store.uri, overwrite="replace", **store.options)

    reference_sha, _ = raw_results_sha256(results_emulator, batch_id)
    assert hashlib.sha256(store.read(name)).hexdigest() == reference_sha == manifest["files"][0]["sha256"]
    assert store.names() == [name]


def test_existing_destination_error_keeps_it_and_downloads_nothing(
    hook: BatchHook, results_emulator: RunningEmulator, store: Store
) -> None:
    batch_id = ended_batch(hook, "keep", 3)
    name = f"{batch_id}.jsonl"
    store.write(name, OLD)
    downloads = results_requests(results_emulator)

    with pytest.raises(DestinationExistsError, match=rf"{name}; overwrite='error' keeps them"):
        hook.land_results(batch_id, store.uri, overwrite="error", **store.options)

    assert results_requests(results_emulator) == downloads
    assert store.read(name) == OLD
    assert store.names() == [name]


def test_existing_destination_skip_keeps_a_checked_landing_without_downloading(
    hook: BatchHook, results_emulator: RunningEmulator, store: Store
) -> None:
    batch_id = ended_batch(hook, "skip", 6, errored=2)
    first = hook.land_results(batch_id, store.uri, split_by_type=True, compression="gzip", **store.options)
    downloads = results_requests(results_emulator)

    again = hook.land_results(
        batch_id, store.uri, split_by_type=True, compression="gzip", overwrite="skip", **store.options
    )

    assert results_requests(results_emulator) == downloads
    assert again["files"] == first["files"]
    assert again["counts"] == first["counts"] == {"succeeded": 4, "errored": 2, "canceled": 0, "expired": 0}
    assert again["usage"] == first["usage"]


def test_existing_destination_skip_lands_again_when_it_fails_the_checks(
    hook: BatchHook, results_emulator: RunningEmulator, store: Store
) -> None:
    batch_id = ended_batch(hook, "redo", 5)
    name = f"{batch_id}.jsonl"
    store.write(name, OLD)
    downloads = results_requests(results_emulator)

    manifest = hook.land_results(batch_id, store.uri, overwrite="skip", **store.options)

    assert results_requests(results_emulator) == downloads + 1
    assert manifest["lines"] == 5
    assert hashlib.sha256(store.read(name)).hexdigest() == manifest["files"][0]["sha256"]
    assert store.names() == [name]


# A landing in its own process, whose files may not grow past a limit (RLIMIT_FSIZE): the disk refuses a
# write part way through the stream, as a full disk or a quota would. SIGXFSZ is ignored so the write fails
# with EFBIG instead of killing the process.
_LAND_WITH_FILE_SIZE_LIMIT = """
import json, resource, signal, sys
from airflow_batches.hooks import BatchHook
from airflow_batches.results import land_results
batch_id, destination, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
hook = BatchHook()
hook.retrieve(batch_id)  # imports and the connection lookup happen before the limit
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    hook.land_results(batch_id, destination, retry_backoff=0.0)
except Exception as exc:
    print(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
else:
    print(json.dumps({"type": None}))
"""


def test_unwritable_file_destination_mid_stream_leaves_no_partial(
    hook: BatchHook, results_emulator: RunningEmulator, tmp_path: Path
) -> None:
    batch_id = ended_batch(hook, "full", 50, text_bytes=100_000)  # ~5 MB of results
    store = file_store(tmp_path / "out")
    name = f"{batch_id}.jsonl"
    store.write(name, OLD)

    done = subprocess.run(
        [sys.executable, "-c", _LAND_WITH_FILE_SIZE_LIMIT, batch_id, store.uri, str(1_000_000)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["type"] == "DestinationWriteError", outcome
    assert f"{store.uri}{name}: OSError: [Errno 27] File too large" in outcome["message"]
    assert store.names() == [name]  # no partial file
    assert store.read(name) == OLD  # the file being replaced is untouched


@pytest.fixture
def slow_results(results_emulator: RunningEmulator) -> Iterator[None]:
    results_emulator.set_faults(slow_results_ms=20)
    try:
        yield
    finally:
        results_emulator.set_faults(slow_results_ms=0)


@pytest.mark.usefixtures("slow_results")
def test_unwritable_s3_destination_mid_stream_aborts_the_upload(
    hook: BatchHook,
    s3_bucket: S3Bucket,  # noqa: F811
) -> None:
    batch_id = ended_batch(hook, "s3gone", 150, text_bytes=100_000)  # ~15 MB, streamed over ~3 s
    store = s3_store(s3_bucket)
    name = f"{batch_id}.jsonl"
    store.write(name, OLD)
    aborted: list[str] = []
    stop = threading.Event()

    def abort_the_first_upload() -> None:
        """S3 refuses the landing part way: its multipart upload is aborted behind its back."""
        while not stop.wait(0.02):
            uploads = s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", [])
            for upload in uploads:
                s3_bucket.client.abort_multipart_upload(
                    Bucket=s3_bucket.name, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted.append(upload["Key"])
            if aborted:
                return

    saboteur = threading.Thread(target=abort_the_first_upload)
    saboteur.start()
    try:
        with pytest.raises(DestinationWriteError, match=rf"{store.uri}{name}: .*Nothing was landed"):
            hook.land_results(batch_id, store.uri, **store.options)
    finally:
        stop.set()
        saboteur.join()

    assert aborted == [f"out/{name}"]  # the landing had uploaded parts when S3 refused it
    assert store.names() == [name]  # no open upload left
    assert store.read(name) == OLD
