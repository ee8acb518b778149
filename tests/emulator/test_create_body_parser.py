"""Unit tests of the chunked create-body parser, with tiny chunks so every value straddles a boundary."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest

from airflow_batches.emulator import create_body
from airflow_batches.emulator.create_body import CreateBodyError, parse_create_body
from airflow_batches.emulator.request_rules import RequestKind


def element(custom_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": "m",
            "max_tokens": 12345,
            "messages": [{"role": "user", "content": text}],
            **extra,
        },
    }


@pytest.fixture(params=[1, 3, 7, 1 << 20], ids=lambda size: f"chunk-{size}")
def chunk_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(create_body, "_CHUNK_BYTES", request.param)
    return int(request.param)


def test_offsets_point_at_each_request_exactly(chunk_size: int) -> None:
    elements = [
        element("a", "plain"),
        element("b", "ünïcödé ✓ \U0001f600", metadata={"emulator": "error"}),
        element("c", "x" * 50, metadata={"emulator": "expire"}),
        element("d", 'esc "quoted" \\ \n', metadata={"emulator": "uncancelable"}),
    ]
    body = (
        '  {  "other": [1, {"x": null}, 3.5e2] ,\n "requests" :\t[ '
        + " ,\n ".join(json.dumps(e, ensure_ascii=False) for e in elements)
        + ' ] , "tail": true }  \n'
    ).encode()
    parsed = parse_create_body(io.BytesIO(body))
    assert parsed.custom_ids == ["a", "b", "c", "d"]
    assert list(parsed.kinds) == [
        RequestKind.NORMAL,
        RequestKind.ERROR,
        RequestKind.EXPIRE,
        RequestKind.UNCANCELABLE,
    ]
    for index, expected in enumerate(elements):
        start, length = parsed.offsets[index], parsed.lengths[index]
        assert json.loads(body[start : start + length]) == expected


def test_number_at_a_chunk_edge_is_read_whole(chunk_size: int) -> None:
    body = b'{"requests":[{"custom_id":"a","params":{"model":"m","max_tokens":0,"messages":[]}}]}'
    with pytest.raises(CreateBodyError, match=r"max_tokens: Input should be greater than or equal to 1"):
        parse_create_body(io.BytesIO(body))
    good = body.replace(b'"max_tokens":0', b'"max_tokens":10').replace(
        b'"messages":[]', b'"messages":[{"role":"user","content":"q"}]'
    )
    assert parse_create_body(io.BytesIO(good)).custom_ids == ["a"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Request body should be a JSON object"),
        (b"{", "Expecting value at byte 1"),
        (b'{"requests": [', "Expecting value"),
        (b'{"requests": [{"custom_id": "a"', "Expecting ',' delimiter"),
        (b'{"requests": [] ', "expected ',' or '}' at byte 16, found the end of the body"),
        (b'{"requests": []}}', "extra data at byte 16"),
        (b'{"requests": [1]}', "requests.0: Input should be a valid dictionary"),
        (b'{"requests": "no"}', "requests: Input should be a valid list"),
    ],
)
def test_broken_bodies_name_the_problem(chunk_size: int, body: bytes, message: str) -> None:
    with pytest.raises(CreateBodyError, match=re.escape(message)):
        parse_create_body(io.BytesIO(body))


def test_non_ascii_custom_id_is_shown_readably(chunk_size: int) -> None:
    body = json.dumps({"requests": [element("café✓", "x")]}, ensure_ascii=False).encode()
    with pytest.raises(
        CreateBodyError, match=r"requests\.0\.custom_id: String should match pattern .*got 'café✓'"
    ):
        parse_create_body(io.BytesIO(body))


def test_custom_id_length_counts_characters_not_bytes(chunk_size: int) -> None:
    body = json.dumps({"requests": [element("é" * 64, "x")]}, ensure_ascii=False).encode()
    with pytest.raises(CreateBodyError, match="String should match pattern"):
        parse_create_body(io.BytesIO(body))
