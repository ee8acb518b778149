"""Unit tests of results chunking and the cut fault."""

from __future__ import annotations

import pytest

from airflow_batches.emulator.results_stream import ResultsStreamCut, stream_chunks

LINES = [b"%03d-line\n" % i for i in range(10)]  # 9 bytes each
WHOLE = b"".join(LINES)


async def collect(cut_after: int | None, delay: float = 0.0) -> tuple[list[bytes], bool, int]:
    chunks: list[bytes] = []
    cuts = []
    try:
        async for chunk in stream_chunks(
            iter(LINES), cut_after=cut_after, delay_seconds=delay, on_cut=lambda: cuts.append(1)
        ):
            chunks.append(chunk)
    except ResultsStreamCut:
        return chunks, True, len(cuts)
    return chunks, False, len(cuts)


async def test_without_faults_lines_are_grouped_and_complete() -> None:
    chunks, cut, cuts = await collect(None)
    assert b"".join(chunks) == WHOLE and not cut and cuts == 0
    assert len(chunks) == 1, "small bodies go out as one chunk"


@pytest.mark.parametrize("cut_after", [0, 1, 8, 9, 10, 45, 89])
async def test_cut_sends_exactly_the_first_bytes_then_fails(cut_after: int) -> None:
    chunks, cut, cuts = await collect(cut_after)
    assert cut and cuts == 1
    assert b"".join(chunks) == WHOLE[:cut_after]


@pytest.mark.parametrize("cut_after", [90, 1000])
async def test_cut_at_or_beyond_the_end_sends_everything(cut_after: int) -> None:
    chunks, cut, cuts = await collect(cut_after)
    assert b"".join(chunks) == WHOLE and not cut and cuts == 0


async def test_slow_mode_sends_one_line_per_chunk_and_can_still_cut() -> None:
    chunks, cut, _ = await collect(None, delay=0.001)
    assert chunks == LINES and not cut
    chunks, cut, _ = await collect(22, delay=0.001)
    assert b"".join(chunks) == WHOLE[:22] and cut
