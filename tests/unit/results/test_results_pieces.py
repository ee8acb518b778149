"""The landing's small pieces on their own: the line checker, the atomic object, the async-to-sync pump."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath
from results_helpers import result_line

from airflow_batches.errors import ResultsCountMismatchError
from airflow_batches.results.checker import ResultChecker
from airflow_batches.results.sink import AtomicObject, clean_uri
from airflow_batches.results.stream import PrivateLoop, iter_line_chunks


def test_checker_counts_types_and_sums_usage_of_succeeded_results() -> None:
    checker = ResultChecker("msgbatch_c")
    types = [
        checker.check(line)
        for line in (
            result_line("a", tokens=4),
            result_line("b", tokens=6),
            result_line("c", "errored"),
            result_line("d", "expired"),
        )
    ]
    assert types == ["succeeded", "succeeded", "errored", "expired"]
    assert checker.counts == {"succeeded": 2, "errored": 1, "canceled": 0, "expired": 1}
    # cache_read_input_tokens is null in the helper's lines: counted as 0, not an error.
    assert checker.usage == {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_creation_input_tokens": 2,
        "cache_read_input_tokens": 0,
    }
    checker.verify_counts({"processing": 0, "succeeded": 2, "errored": 1, "expired": 1})


def test_count_mismatch_short_flag_tells_a_cut_from_wrong_content() -> None:
    checker = ResultChecker("msgbatch_c")
    checker.check(result_line("a"))
    with pytest.raises(ResultsCountMismatchError) as short:
        checker.verify_counts({"succeeded": 2})
    assert short.value.short
    with pytest.raises(ResultsCountMismatchError) as wrong:
        checker.verify_counts({"errored": 1})
    assert not wrong.value.short
    assert "succeeded: expected 0, got 1, errored: expected 1, got 0" in str(wrong.value)


def test_atomic_object_is_only_a_hidden_partial_until_commit(tmp_path: Path) -> None:
    final = ObjectStoragePath(f"file://{tmp_path}/deep/dir/out.jsonl")
    obj = AtomicObject(final, gzip_level=None, block_size=1 << 20)
    obj.write_lines([b"one\n", b"two\n"])
    obj.write_lines([b"three\n"])

    assert not final.exists()
    (temp,) = (tmp_path / "deep" / "dir").iterdir()
    assert temp.name.startswith(".out.jsonl.") and temp.name.endswith(".partial")

    obj.commit()
    assert (tmp_path / "deep/dir/out.jsonl").read_bytes() == b"one\ntwo\nthree\n"
    assert [p.name for p in (tmp_path / "deep/dir").iterdir()] == ["out.jsonl"]
    assert obj.lines == 3 and obj.bytes == 14
    assert obj.sha256 == hashlib.sha256(b"one\ntwo\nthree\n").hexdigest()


def test_atomic_object_discard_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    (tmp_path / "out.jsonl").write_bytes(b"previous\n")
    obj = AtomicObject(ObjectStoragePath(f"file://{tmp_path}/out.jsonl"), gzip_level=None, block_size=1 << 20)
    obj.write_lines([b"new\n"])
    obj.discard()

    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    assert (tmp_path / "out.jsonl").read_bytes() == b"previous\n"


def test_atomic_object_gzip_hashes_the_stored_bytes(tmp_path: Path) -> None:
    obj = AtomicObject(ObjectStoragePath(f"file://{tmp_path}/o.jsonl.gz"), gzip_level=6, block_size=1 << 20)
    obj.write_lines([b"x" * 1000 + b"\n"])
    obj.commit()
    stored = (tmp_path / "o.jsonl.gz").read_bytes()
    assert gzip.decompress(stored) == b"x" * 1000 + b"\n"
    assert obj.bytes == len(stored) and obj.content_bytes == 1001
    assert obj.sha256 == hashlib.sha256(stored).hexdigest()


def test_clean_uri_drops_the_connection_id() -> None:
    assert clean_uri("s3://aws_default@bucket/a/b.jsonl") == "s3://bucket/a/b.jsonl"
    assert clean_uri("file:///tmp/x") == "file:///tmp/x"


def test_pump_groups_lines_into_chunks_and_keeps_them_whole() -> None:
    async def lines() -> AsyncIterator[bytes]:
        for i in range(100):
            yield b"%d\n" % i

    with PrivateLoop() as runner:
        chunks = list(iter_line_chunks(runner, lines, chunk_bytes=30))
    assert b"".join(b"".join(c) for c in chunks) == b"".join(b"%d\n" % i for i in range(100))
    assert all(sum(map(len, c)) >= 30 for c in chunks[:-1])
    assert all(sum(map(len, c)) < 30 + 4 for c in chunks)


def test_pump_raises_the_readers_error_in_the_consumer() -> None:
    async def lines() -> AsyncIterator[bytes]:
        yield b"a\n"
        raise ConnectionResetError("peer went away")

    with PrivateLoop() as runner, pytest.raises(ConnectionResetError, match="peer went away"):
        list(iter_line_chunks(runner, lines, chunk_bytes=1))


def test_pump_reads_no_further_than_the_chunk_asked_for_and_closing_it_closes_the_stream() -> None:
    produced = 0
    closed = False

    async def lines() -> AsyncIterator[bytes]:
        nonlocal produced, closed
        try:
            while True:
                produced += 1
                yield b"line\n"
        finally:
            closed = True

    with PrivateLoop() as runner:
        chunks = iter_line_chunks(runner, lines, chunk_bytes=12)
        assert next(chunks) == [b"line\n"] * 3
        assert produced == 3  # nothing read ahead: memory holds one chunk
        chunks.close()
        assert closed
