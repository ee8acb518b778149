"""Kept results bodies: an ended batch's results rendered once into a file, later reads sent from it.

Rendering a results line (the fake model's reply, serialized by pydantic) costs far more CPU than sending it,
so a results download rendered on every read is bound by the emulator's CPU, not by the wire, and competes
for the cores with the client being measured. An ended batch's results never change, so the first whole read
keeps the bytes it sent in a file, and later reads of the same rendering send that file in large chunks.

A rendering is kept per ``lifecycle.RenderingKey``: how the batch ended and every setting that changes the
bytes (the content faults and ``invalid_output_rate``), so changing one renders again. Reads with a per-line
delay or a cut go through the line-by-line stream, as before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from airflow_batches.emulator.results_stream import stream_chunks

__all__ = ["keeping_chunks", "kept_file_chunks"]

# Large reads: each chunk costs a read and a send whatever its size, and a read from the page cache blocks
# the event loop for well under a millisecond.
_READ_BYTES = 1 << 20


async def keeping_chunks(
    lines: Iterator[bytes], path: Path, keep: Callable[[Path], None]
) -> AsyncIterator[bytes]:
    """The chunks of ``lines`` as :func:`stream_chunks` sends them, also written to ``path``; once all were
    sent, ``keep(path)``. A read that stops early (the client went away) removes the file."""
    kept = False
    try:
        with path.open("wb") as file:
            async for chunk in stream_chunks(lines, cut_after=None, delay_seconds=0):
                file.write(chunk)
                yield chunk
        keep(path)
        kept = True
    finally:
        if not kept:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


async def kept_file_chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    """A kept rendering, already open (so deleting the batch meanwhile does not cut the read), in large
    chunks; closes the file."""
    with file:
        while chunk := file.read(_READ_BYTES):
            yield chunk
