"""Exact line splitting of a chunked results body."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from airflow_batches.api import ResultsStreamError
from airflow_batches.api.jsonl import LineChunk, LineSplitter, aiter_lines_exact, size_of_lines


async def chunked(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for size in sizes:
        yield data[start : start + size]
        start += size
    if start < len(data):
        yield data[start:]


async def lines_of(data: bytes, sizes: list[int]) -> list[bytes]:
    return [line async for line in aiter_lines_exact(chunked(data, sizes))]


LINES = [b'{"custom_id":"a","result":{"type":"canceled"}}\n', b'{"x":"\xc3\xa9 \\u00e9"}\n', b"{}\r\n"]


@pytest.mark.parametrize("sizes", [[10_000], [1] * 200, [3, 0, 7, 50, 1], [48, 1, 1]])
async def test_lines_come_out_byte_exact_whatever_the_chunking(sizes: list[int]) -> None:
    assert await lines_of(b"".join(LINES), sizes) == LINES


async def test_random_chunking_of_many_lines() -> None:
    rng = random.Random(7)
    lines = [b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * rng.randrange(0, 300)) for i in range(2000)]
    data = b"".join(lines)
    sizes = [rng.randrange(0, 700) for _ in range(len(data) // 300)]
    assert await lines_of(data, sizes) == lines


async def test_a_line_spanning_many_chunks() -> None:
    big = b'{"text":"' + b"y" * 100_000 + b'"}\n'
    assert await lines_of(big + LINES[0], [1000] * 101) == [big, LINES[0]]


async def test_missing_final_newline_is_a_cut_stream() -> None:
    with pytest.raises(ResultsStreamError) as info:
        await lines_of(LINES[0] + b'{"custom_id":"b"', [5, 100])
    assert info.value.line == 2
    assert "ended in the middle of line 2" in str(info.value) and "1 complete lines" in str(info.value)


@pytest.mark.parametrize("blank", [b"\n", b"  \n", b"\r\n"])
async def test_a_blank_line_is_an_error(blank: bytes) -> None:
    with pytest.raises(ResultsStreamError, match="line 2 is blank") as info:
        await lines_of(LINES[0] + blank + LINES[0], [1000])
    assert info.value.line == 2


async def test_empty_body_gives_no_lines() -> None:
    assert await lines_of(b"", []) == []


def test_lines_whole_in_a_chunk_are_views_of_it_and_a_joined_line_is_bytes() -> None:
    splitter = LineSplitter()
    first = splitter.feed(b'{"a":1}\n{"b":')
    second = splitter.feed(b'2}\n{"c":3}\n')
    assert [bytes(line) for line in first + second] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert [type(line) for line in first + second] == [memoryview, bytes, memoryview]
    assert splitter.lines == 3


@pytest.mark.parametrize("sizes", [[5, 9, 100], [1] * 30, [30]])
def test_the_sizes_of_the_lines_fed_add_up_to_the_body(sizes: list[int]) -> None:
    body = b'{"a":1}\n{"bb":22}\n{"c":3}\n'
    splitter, start, total = LineSplitter(), 0, 0
    for size in sizes:
        total += size_of_lines(splitter.feed(body[start : start + size]))
        start += size
    assert total == len(body)


@pytest.mark.parametrize("sizes", [[1] * 40, [12, 1, 1, 30], [14, 100]])
async def test_a_blank_line_is_an_error_whatever_the_chunking(sizes: list[int]) -> None:
    with pytest.raises(ResultsStreamError, match="line 2 is blank") as info:
        await lines_of(b'{"custom_id":"a"}\n  \n{}\n', sizes)
    assert info.value.line == 2


def test_a_chunk_is_utf8_only_if_the_start_of_its_first_line_was_too() -> None:
    splitter = LineSplitter()
    head = b'{"t":"\xff'  # a line that starts in this chunk, not UTF-8, and ends in the next
    assert LineChunk(head, splitter.feed(head)).is_utf8() is True  # no whole line yet
    tail = b'"}\n{"t":"plain"}\n'
    assert tail.isascii()
    assert LineChunk(tail, splitter.feed(tail)).is_utf8() is False
    more = b'{"t":"ascii"}\n'
    assert LineChunk(more, splitter.feed(more)).is_utf8() is True


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64, 1000])
def test_utf8_lines_cut_anywhere_are_utf8_in_every_chunk(size: int) -> None:
    # Characters of two, three and four bytes, cut between chunks at every place.
    body = "".join(f'{{"t":"é漢🙂 {i}"}}\n' for i in range(20)).encode()
    splitter = LineSplitter()
    chunks = [body[start : start + size] for start in range(0, len(body), size)]
    assert all(LineChunk(chunk, splitter.feed(chunk)).is_utf8() for chunk in chunks)
    assert splitter.lines == 20


@pytest.mark.parametrize("bad_line", [0, 1, 5, 9])
@pytest.mark.parametrize("size", [7, 40, 1000])
def test_a_line_that_is_not_utf8_makes_its_chunk_not_utf8(bad_line: int, size: int) -> None:
    lines = [f'{{"t":"漢字 {i}"}}'.encode() for i in range(10)]
    lines[bad_line] = lines[bad_line].replace("字".encode(), "字".encode()[:2])  # a cut character
    body = b"".join(line + b"\n" for line in lines)
    splitter = LineSplitter()
    verdicts = []
    for start in range(0, len(body), size):
        chunk = LineChunk(body[start : start + size], splitter.feed(body[start : start + size]))
        verdicts.append((chunk.is_utf8(), [bytes(line) for line in chunk.lines]))
    # The chunk that completes the bad line, and no other, says it holds a line that is not UTF-8.
    assert [ok for ok, completed in verdicts if lines[bad_line] in completed] == [False]
    assert all(ok for ok, completed in verdicts if lines[bad_line] not in completed)
