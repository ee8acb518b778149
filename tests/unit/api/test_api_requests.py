"""Request validation (each rule, problems reported together) and spooling into batch bodies."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import request

from airflow_batches.api import (
    MAX_BATCH_BYTES,
    MAX_REQUESTS_PER_BATCH,
    InvalidInputError,
    RequestEncoder,
    RequestValidationError,
    SpooledBatch,
    spool_batches,
)


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def problems_of(items: list[Any], tmp_path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(RequestValidationError) as info:
        spool_batches(items, spool_dir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    return [str(p) for p in info.value.problems]


def test_valid_requests_make_one_ready_body(tmp_path: Path) -> None:
    items = [request("a"), request("b", system="be brief")]
    [batch] = spool_batches(items, spool_dir=tmp_path)
    with batch:
        body = batch.path.read_bytes()
        assert json.loads(body) == {"requests": items}
        assert b" " not in body.replace(b"be brief", b"")  # compact encoding
        assert (batch.request_count, batch.nbytes) == (2, len(body))
        assert (batch.first_custom_id, batch.last_custom_id) == ("a", "b")
        assert batch.fingerprint == hashlib.sha256(body).hexdigest()
    assert not batch.path.exists()  # the context manager removed it


def test_same_input_same_fingerprint(tmp_path: Path) -> None:
    first = spool_batches([request("a")], spool_dir=tmp_path)[0]
    second = spool_batches([line(request("a"))], spool_dir=tmp_path)[0]
    other = spool_batches([request("b")], spool_dir=tmp_path)[0]
    assert first.fingerprint == second.fingerprint != other.fingerprint


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"params": request()["params"]}, "field 'custom_id': custom_id is missing"),
        ({"custom_id": 7, "params": request()["params"]}, "custom_id must be a string, got int"),
        (request("has space"), "does not match ^[a-zA-Z0-9_-]{1,64}$"),
        (request("x" * 65), "(65 characters)"),
        (request("../etc"), "does not match"),
        ({"custom_id": "a"}, "field 'params': params is missing"),
        ({"custom_id": "a", "params": []}, "params must be an object, got list"),
        (request(model=None), "params.model is required"),
        (request(model=""), "params.model must be a non-empty string"),
        (request(max_tokens=None), "params.max_tokens is required"),
        (request(max_tokens=0), "params.max_tokens must be an integer >= 1, got 0"),
        (request(max_tokens=True), "params.max_tokens must be an integer >= 1, got True"),
        (request(max_tokens="5"), "params.max_tokens must be an integer >= 1, got '5'"),
        (request(messages=None), "params.messages is required"),
        (request(messages=[]), "params.messages must be a non-empty list"),
        (request(stream=True), "params.stream must not be set"),
        ({**request(), "extra": 1}, "field 'extra': unknown field"),
        (request(temperature=float("nan")), "cannot be encoded as JSON"),
        (request(metadata={1, 2}), "cannot be encoded as JSON"),
        (["not", "a", "mapping"], "a request must be an object with 'custom_id' and 'params', got list"),
    ],
)
def test_each_rule(bad: Any, expected: str, tmp_path: Path) -> None:
    problems = problems_of([request("ok"), bad], tmp_path)
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert "request #2" in problems[0]
    assert "fix:" in problems[0]


def test_none_model_filled_from_default_model(tmp_path: Path) -> None:
    params = request("a")["params"]
    del params["model"]
    [batch] = spool_batches(
        [{"custom_id": "a", "params": params}], default_model="claude-x", spool_dir=tmp_path
    )
    with batch:
        assert json.loads(batch.path.read_bytes())["requests"][0]["params"]["model"] == "claude-x"


def test_stream_false_is_allowed(tmp_path: Path) -> None:
    with spool_batches([request(stream=False)], spool_dir=tmp_path)[0] as batch:
        sent = json.loads(batch.path.read_bytes())["requests"]
    assert batch.request_count == 1
    assert sent[0]["params"]["stream"] is False


def test_many_problems_reported_together_with_lines_and_custom_ids(tmp_path: Path) -> None:
    lines = [
        line(request("r1")),
        b"\n",  # blank lines are skipped but counted
        line(request("r3", max_tokens=0)),
        b"{not json\n",
        line(request("r1")),
        line(request("r6", messages=[], stream=True)),
    ]
    problems = problems_of(lines, tmp_path)
    assert len(problems) == 5
    assert problems[0].startswith("line 3, custom_id 'r3', field 'params.max_tokens'")
    assert problems[1].startswith("line 4: not valid JSON")
    assert problems[2].startswith("line 5, custom_id 'r1', field 'custom_id': duplicate custom_id")
    assert "first used at line 1" in problems[2]
    assert problems[3].startswith("line 6, custom_id 'r6', field 'params.messages'")
    assert problems[4].startswith("line 6, custom_id 'r6', field 'params.stream'")
    with pytest.raises(RequestValidationError) as info:
        spool_batches(lines, spool_dir=tmp_path)
    message = str(info.value)
    assert message.startswith("5 problem(s) in the batch requests; nothing was sent:")
    assert message.count("\n  - ") == 5


def test_duplicates_among_mappings_name_the_first_position(tmp_path: Path) -> None:
    problems = problems_of([request("a"), request("b"), request("a")], tmp_path)
    assert problems == [
        "request #3, custom_id 'a', field 'custom_id': duplicate custom_id (first used at request #1); "
        "results are matched by custom_id (fix: give every request its own custom_id)"
    ]


def test_problems_are_capped(tmp_path: Path) -> None:
    with pytest.raises(RequestValidationError) as info:
        spool_batches(
            (request(f"r{i}", max_tokens=0) for i in range(1000)), spool_dir=tmp_path, max_problems=10
        )
    assert len(info.value.problems) == 10
    assert info.value.truncated
    assert "10+ problem(s)" in str(info.value) and "more problems not shown" in str(info.value)


def test_empty_input_is_a_problem(tmp_path: Path) -> None:
    assert problems_of([b"\n", b"  \n"], tmp_path) == [
        "no requests: a batch needs at least one (fix: check the input is not empty)"
    ]


def test_str_lines_are_accepted(tmp_path: Path) -> None:
    with spool_batches([line(request("a")).decode()], spool_dir=tmp_path)[0] as batch:
        sent = json.loads(batch.path.read_bytes())["requests"]
    assert (batch.request_count, batch.first_custom_id) == (1, "a")
    assert sent == [request("a")]


def test_split_by_count(tmp_path: Path) -> None:
    batches = spool_batches((request(f"r{i}") for i in range(25)), max_requests=10, spool_dir=tmp_path)
    try:
        assert [b.request_count for b in batches] == [10, 10, 5]
        assert [(b.first_custom_id, b.last_custom_id) for b in batches] == [
            ("r0", "r9"),
            ("r10", "r19"),
            ("r20", "r24"),
        ]
        ids = [r["custom_id"] for b in batches for r in json.loads(b.path.read_bytes())["requests"]]
        assert ids == [f"r{i}" for i in range(25)]
    finally:
        for b in batches:
            b.cleanup()


def test_split_by_bytes_measures_the_whole_body(tmp_path: Path) -> None:
    one = len(json.dumps(request("r00"), separators=(",", ":")))
    envelope = len(b'{"requests":[]}')
    limit = envelope + 3 * one + 2  # exactly three requests and their two commas
    batches = spool_batches((request(f"r{i:02}") for i in range(10)), max_bytes=limit, spool_dir=tmp_path)
    try:
        assert [b.request_count for b in batches] == [3, 3, 3, 1]
        for b in batches:
            assert b.path.stat().st_size == b.nbytes <= limit
            json.loads(b.path.read_bytes())
        assert batches[0].nbytes == limit
    finally:
        for b in batches:
            b.cleanup()


def test_a_request_bigger_than_a_batch_is_a_problem(tmp_path: Path) -> None:
    problems = problems_of([request("small"), request("huge", system="x" * 5000)], tmp_path, max_bytes=2000)
    assert len(problems) == 1
    assert "custom_id 'huge'" in problems[0] and "over the 2,000-byte limit" in problems[0]


def test_limits_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="max_requests"):
        spool_batches([request()], max_requests=MAX_REQUESTS_PER_BATCH + 1)
    with pytest.raises(InvalidInputError, match="max_bytes"):
        spool_batches([request()], max_bytes=MAX_BATCH_BYTES + 1)
    with pytest.raises(InvalidInputError, match="max_requests"):
        spool_batches([request()], max_requests=0)


def test_files_removed_when_the_input_fails_midway(tmp_path: Path) -> None:
    def items() -> Iterator[dict[str, Any]]:
        yield request("a")
        yield request("b")
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        spool_batches(items(), max_requests=1, spool_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_problems_after_batches_were_written_remove_them(tmp_path: Path) -> None:
    items = [request(f"r{i}") for i in range(5)] + [request("bad", max_tokens=-1)]
    problems_of(items, tmp_path, max_requests=2)


async def test_aiter_body_rereads_the_file_in_chunks(tmp_path: Path) -> None:
    [batch] = spool_batches([request(f"r{i}") for i in range(50)], spool_dir=tmp_path)
    with batch:
        first = [chunk async for chunk in batch.aiter_body(chunk_size=100)]
        second = b"".join([chunk async for chunk in batch.aiter_body()])
        assert len(first) > 1 and all(len(c) <= 100 for c in first)
        assert b"".join(first) == second == batch.path.read_bytes()


def test_encoder_keeps_duplicates_across_calls() -> None:
    encoder = RequestEncoder()
    assert encoder.encode(request("a"), item=1) is not None
    assert encoder.encode_line(line(request("a")), line=2) is None
    assert "first used at request #1" in str(encoder.problems[0])
    assert isinstance(encoder.error(), RequestValidationError)


def test_spooled_batch_is_a_plain_value(tmp_path: Path) -> None:
    [batch] = spool_batches([request("a")], spool_dir=tmp_path)
    assert isinstance(batch, SpooledBatch)
    assert str(tmp_path) in str(batch.path)
    batch.cleanup()
    batch.cleanup()  # idempotent


def test_select_writes_only_the_chosen_requests_with_the_same_bytes(tmp_path: Path) -> None:
    items = [line(request(f"r{n}", system="s" * n)) for n in range(6)]
    [full] = spool_batches(items, spool_dir=tmp_path)
    chosen = {"r1", "r4", "r5"}
    parts = spool_batches(items, spool_dir=tmp_path, max_requests=2, select=chosen.__contains__)
    assert [p.request_count for p in parts] == [2, 1]
    sent = [r for p in parts for r in json.loads(p.path.read_bytes())["requests"]]
    assert [r["custom_id"] for r in sent] == ["r1", "r4", "r5"]
    body = full.path.read_bytes()
    for part in parts:
        for piece in part.path.read_bytes()[len(b'{"requests":[') : -2].split(b',{"custom_id"'):
            encoded = piece if piece.startswith(b"{") else b'{"custom_id"' + piece
            assert encoded in body, "each request is written exactly as in the full body"


def test_select_still_validates_the_whole_input(tmp_path: Path) -> None:
    items = [request("a"), {"custom_id": "b"}]
    with pytest.raises(RequestValidationError, match="params"):
        spool_batches(items, spool_dir=tmp_path, select={"a"}.__contains__)
    assert list(tmp_path.iterdir()) == []
