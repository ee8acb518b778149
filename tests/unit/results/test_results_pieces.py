"""The landing's small pieces on their own: line checker, atomic object, receiver, write-behind."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from results_helpers import result_line

from airflow_batches.api.jsonl import LineChunk, LineSplitter
from airflow_batches.api.models import RESULT_TYPES
from airflow_batches.errors import ResultsCheckError, ResultsCountMismatchError
from airflow_batches.results.checker import USAGE_FIELDS, ResultChecker
from airflow_batches.results.sink import AtomicObject, clean_uri
from airflow_batches.results.stream import ResultsReceiver
from airflow_batches.results.writer import WriteBehind


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


@pytest.mark.parametrize(
    "line",
    [
        # accepted by json.loads, refused by the fast decoder: the plain check decides, as before
        b'{"custom_id":"t","result":{"type":"canceled","x":NaN}}',
        b'{"custom_id":"t","result":{"type":"canceled","x":"\\ud800"}}',
        b'{"custom_id":"t","result":{"type":"succeeded","message":{"usage":{"input_tokens":true}}}}',
        b'{"custom_id":"t","result":{"type":"succeeded","message":{"usage":{"input_tokens":2.0}}}}',
        b'{"custom_id":"t","result":{"type":"canceled","message":"not an object"}}',
        b'{"custom_id":"t","result":{"type":"succeeded","message":{"model":5,"usage":{"input_tokens":1}}}}',
        b'{"custom_id":"t","result":{"type":"succeeded","message":{"model":"","usage":{"input_tokens":1}}}}',
        b'{"custom_id":"t","result":{"type":"succeeded","message":{"model":"m","usage":{"output_tokens":4}}}}',
        '{"custom_id":"t","result":{"type":"canceled"}}'.encode("utf-16"),
        # duplicate keys: the last one counts, in both decoders
        b'{"custom_id":"x","custom_id":"t","result":{"type":"succeeded"},"result":{"type":"expired"}}',
        b'{"custom_id":"t","result":{"type":"succeeded","message":{"usage":{"input_tokens":1,"input_tokens":7}}}}',
        # refused by both
        b'{"custom_id":"t","result":{"type":"canceled","x":"\xff"}}',
        b'{"custom_id":"t","result":{"type":"canceled","x":"a\tb"}}',
        b'{"custom_id":"t","result":{"type":"canceled"}} trailing',
        b'{"custom_id":"t","result":{"type":"succeeded","message":{}}}',
        b'{"custom_id":"t","result":{"type":"succeeded","message":null}}',
        b'{"custom_id":"","result":{"type":"canceled"}}',
        b'{"custom_id":7,"result":{"type":"canceled"}}',
        b'{"custom_id":"t","result":{"type":"unknown"}}',
        b'{"custom_id":"t","result":[]}',
        b"[]",
    ],
)
def test_checker_accepts_and_counts_exactly_what_json_loads_does(line: bytes) -> None:
    """The fast decoder is only a shortcut: every verdict and every sum is that of json.loads."""
    fast = ResultChecker("msgbatch_f")
    try:
        expected: object = reference_check(line)
    except (ValueError, TypeError, KeyError) as exc:
        expected = type(exc)
    if isinstance(expected, type):
        with pytest.raises(ResultsCheckError, match="line 1 is not a valid result"):
            fast.check(line)
    else:
        assert (fast.check(line), fast.counts, fast.usage, fast.usage_by_model) == expected


def reference_check(line: bytes) -> tuple[str, dict[str, int], dict[str, int], dict[str, dict[str, int]]]:
    """The checks spelled out on json.loads: what a results line must be, and what it adds up to."""
    obj = json.loads(line)
    custom_id, result = obj["custom_id"], obj["result"]
    result_type = result["type"]
    if not isinstance(custom_id, str) or not custom_id or result_type not in RESULT_TYPES:
        raise ValueError("not a result")
    usage = dict.fromkeys(USAGE_FIELDS, 0)
    by_model = {}
    if result_type == "succeeded":
        fields = result["message"]["usage"]
        usage = {f: v if isinstance(v := fields.get(f), int) else 0 for f in USAGE_FIELDS}
        by_model = {str(result["message"].get("model") or "unknown"): usage}
    return result_type, dict.fromkeys(RESULT_TYPES, 0) | {result_type: 1}, usage, by_model


def test_checker_reports_a_duplicate_with_its_line_whichever_path_saw_it_first() -> None:
    checker = ResultChecker("msgbatch_d")
    checker.check(b'{"custom_id":"a","result":{"type":"canceled","x":NaN}}')  # plain path
    checker.check(result_line("b"))
    with pytest.raises(ResultsCheckError, match="custom_id 'a' appears twice") as info:
        checker.check(result_line("a", "expired"))  # fast path sees it
    assert info.value.line == 3


def test_check_lines_checks_a_chunk_as_line_by_line_checks_would() -> None:
    lines = [
        result_line("a"),
        b'{"custom_id":"b","result":{"type":"canceled","x":NaN}}',  # the plain path, in the middle
        result_line("c", "errored"),
    ]
    one_by_one = ResultChecker("msgbatch_l")
    types = [one_by_one.check(line) for line in lines]
    together = ResultChecker("msgbatch_l")
    assert together.check_lines(lines) == types == ["succeeded", "canceled", "errored"]
    assert (together.lines, together.last_custom_id, together.counts, together.usage_by_model) == (
        one_by_one.lines,
        "c",
        one_by_one.counts,
        one_by_one.usage_by_model,
    )
    with pytest.raises(ResultsCheckError, match="results line 5 is not a valid result") as info:
        together.check_lines([result_line("d"), b'{"custom_id":"e"}', result_line("f")])
    assert info.value.line == 5


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (result_line("b"), "custom_id 'b' appears twice"),
        (result_line("a"), "custom_id 'a' appears twice"),
        (b'{"custom_id":"x","result":{"type":"canceled","t":"\xff"}}', "is not a valid result"),
        (b'{"custom_id":"x\xff","result":{"type":"canceled"}}', "is not a valid result"),
        (b'{"custom_id":"x","result":{"type":"unknown"}}', "unknown result type"),
        (b'{"custom_id":"","result":{"type":"canceled"}}', "custom_id is not a non-empty string"),
        (b'{"custom_id":"x","result":{"type":"succeeded","message":{}}}', "without result.message.usage"),
    ],
    ids=[
        "duplicate",
        "duplicate-of-an-earlier-group",
        "not-utf8",
        "not-utf8-id",
        "unknown-type",
        "empty-id",
        "no-usage",
    ],
)
def test_check_lines_finds_a_bad_line_inside_a_group_on_its_own_line(bad: bytes, why: str) -> None:
    checker = ResultChecker("msgbatch_g")
    checker.check_lines([result_line("a")])
    with pytest.raises(ResultsCheckError, match=why) as info:
        checker.check_lines([result_line("b"), result_line("c", "errored"), bad, result_line("d")])
    assert info.value.line == 4


def receiver_for(tmp_path: Path, keys: list[str | None], block_bytes: int = 50) -> tuple[Any, ...]:
    objects = {
        key: AtomicObject(
            ObjectStoragePath(f"file://{tmp_path}/{key or 'all'}.jsonl"), gzip_level=None, block_size=1 << 20
        )
        for key in keys
    }
    progress: list[tuple[int, int]] = []
    checker = ResultChecker("msgbatch_r")
    writer = WriteBehind(depth=2)
    receiver = ResultsReceiver(
        checker, objects, writer, block_bytes=block_bytes, on_progress=lambda *p: progress.append(p)
    )
    return receiver, objects, checker, writer, progress


def test_receiver_writes_the_bytes_as_received_and_checks_every_line(tmp_path: Path) -> None:
    lines = [result_line(f"r{i}", "succeeded" if i % 3 else "errored", text="y" * i) for i in range(40)]
    body = b"".join(lines)
    receiver, objects, checker, writer, progress = receiver_for(tmp_path, [None])
    splitter = LineSplitter()
    with writer:
        for start in range(0, len(body), 97):  # chunks that end inside lines
            data = body[start : start + 97]
            receiver.feed(LineChunk(data, splitter.feed(data)))
        receiver.finish()
    splitter.close()
    objects[None].commit()

    assert (tmp_path / "all.jsonl").read_bytes() == body
    assert objects[None].lines == 40 and checker.lines == 40
    assert checker.counts == {"succeeded": 26, "errored": 14, "canceled": 0, "expired": 0}
    assert sum(n for n, _ in progress) == 40 and sum(b for _, b in progress) == len(body)


def test_receiver_checks_a_whole_body_in_groups_of_about_block_bytes(tmp_path: Path) -> None:
    lines = [result_line(f"r{i}") for i in range(30)]
    body = b"".join(lines)
    receiver, _, _, writer, progress = receiver_for(tmp_path, [None], block_bytes=len(body) // 6)
    with writer:
        receiver.feed(LineChunk(body, [line[:-1] for line in lines]))
        receiver.finish()
    assert len(progress) >= 5 and sum(n for n, _ in progress) == 30


def test_receiver_splits_by_type_with_each_line_whole(tmp_path: Path) -> None:
    lines = [result_line(f"r{i}", ("succeeded", "errored", "expired")[i % 3]) for i in range(12)]
    receiver, objects, _, writer, _ = receiver_for(tmp_path, ["succeeded", "errored"])
    splitter = LineSplitter()
    with writer:
        for line in lines:
            receiver.feed(LineChunk(line, splitter.feed(line)))
        receiver.finish()
    for obj in objects.values():
        obj.commit()
    assert (tmp_path / "succeeded.jsonl").read_bytes() == b"".join(lines[0::3])
    assert (tmp_path / "errored.jsonl").read_bytes() == b"".join(lines[1::3])
    assert objects["succeeded"].lines == 4 and objects["errored"].lines == 4
    assert not (tmp_path / "expired.jsonl").exists()  # no object: checked and counted, written nowhere


def test_write_behind_keeps_order_and_raises_a_failed_write() -> None:
    done: list[int] = []
    with WriteBehind(depth=2) as writer:
        for i in range(10):
            writer.submit(lambda i=i: done.append(i))
        writer.drain()
        assert done == list(range(10))

        def fail() -> None:
            raise OSError("disk full")

        writer.submit(fail)
        with pytest.raises(OSError, match="disk full"):
            for _ in range(3):  # raised at a later submit at the latest
                writer.submit(lambda: None)
                time.sleep(0.05)
            writer.drain()


def test_write_behind_holds_at_most_depth_writes() -> None:
    gate = threading.Event()
    started = threading.Event()

    def slow() -> None:
        started.set()
        gate.wait(5)

    with WriteBehind(depth=2) as writer:
        writer.submit(slow)
        started.wait(5)
        writer.submit(lambda: None)
        blocked = threading.Thread(target=writer.submit, args=(lambda: None,))
        blocked.start()
        blocked.join(0.2)
        assert blocked.is_alive()  # a third write waits for room
        gate.set()
        blocked.join(5)
        assert not blocked.is_alive()
        writer.drain()


@pytest.mark.parametrize("after", [-40, 1, 10], ids=["before-the-bad-byte", "just-after-it", "near-the-end"])
def test_receiver_refuses_bad_utf8_that_arrived_in_an_earlier_chunk(tmp_path: Path, after: int) -> None:
    # In a field the fast decoder skips: only the UTF-8 check of the line can find it.
    bad = b'{"custom_id":"x","result":{"type":"canceled","t":"\xff"}}\n'
    body = bad + result_line("y")
    cut = bad.index(b"\xff") + after
    receiver, _, _, writer, _ = receiver_for(tmp_path, [None])
    splitter = LineSplitter()
    with writer, pytest.raises(ResultsCheckError, match="results line 1 is not a valid result"):
        for data in (body[:cut], body[cut:]):
            receiver.feed(LineChunk(data, splitter.feed(data)))


def test_receiver_keeps_valid_utf8_lines_byte_exact(tmp_path: Path) -> None:
    lines = [result_line(f"r{i}", text="é €" * i) for i in range(10)]
    body = b"".join(lines)
    receiver, objects, checker, writer, _ = receiver_for(tmp_path, [None])
    splitter = LineSplitter()
    with writer:
        for start in range(0, len(body), 64):
            data = body[start : start + 64]
            receiver.feed(LineChunk(data, splitter.feed(data)))
        receiver.finish()
    objects[None].commit()
    assert (tmp_path / "all.jsonl").read_bytes() == body and checker.lines == 10


def test_a_group_with_models_in_turn_adds_each_line_to_its_own_model() -> None:
    def line(number: int, model: str | None) -> bytes:
        usage = {"input_tokens": number, "output_tokens": 10 * number, "cache_read_input_tokens": None}
        message = {"model": model, "usage": usage, "content": []}
        return json.dumps(
            {"custom_id": f"m{number}", "result": {"type": "succeeded", "message": message}}
        ).encode()

    models = ["a", "a", "b", None, "a", "", "b", "b"]
    lines = [line(number, model) for number, model in enumerate(models, 1)]
    lines.insert(3, result_line("e", "errored"))
    one_by_one = ResultChecker("msgbatch_m")
    for each in lines:
        one_by_one.check(each)
    together = ResultChecker("msgbatch_m")
    together.count_lines(lines)

    assert together.usage_by_model == one_by_one.usage_by_model
    assert together.usage_by_model["a"]["input_tokens"] == 1 + 2 + 5
    assert together.usage_by_model["unknown"]["output_tokens"] == 40 + 60  # no model and an empty one
    assert together.counts == one_by_one.counts == {"succeeded": 8, "errored": 1, "canceled": 0, "expired": 0}
