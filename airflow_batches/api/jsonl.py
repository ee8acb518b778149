"""Splitting a streamed JSONL body into lines, byte for byte, without letting a cut stream pass as whole.

The work per chunk is one C-level ``bytes.split``, never a per-byte Python loop: results bodies run to
gigabytes. A line split across chunks costs one join of its own pieces, nothing more. A final line without its
newline means the stream was cut and raises; so does a blank line, which no JSONL decoder accepts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable
from typing import NamedTuple

from .errors import ResultsStreamError

__all__ = ["LineChunk", "LineSplitter", "aiter_lines_exact"]

_SPACE = frozenset(b" \t\n\r\x0b\x0c")


class LineChunk(NamedTuple):
    """One chunk of a body as received, and the lines it completes."""

    data: bytes
    """The bytes exactly as received; they may end in the middle of a line."""
    lines: list[bytes]
    """The lines that end in this chunk, whole (joined with their start from earlier chunks), without
    their ``b"\\n"``."""


class LineSplitter:
    """Splits a byte stream fed chunk by chunk into its ``b"\\n"``-terminated lines."""

    def __init__(self, *, batch_id: str | None = None, request_id: str | None = None) -> None:
        self.batch_id = batch_id
        self.request_id = request_id
        self.lines = 0
        self._pending: list[bytes] = []  # pieces of a line that started in earlier chunks

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines ``chunk`` completes, without their newline; raises on a blank line."""
        pieces = chunk.split(b"\n")
        tail = pieces.pop()
        if not pieces:  # no newline: the chunk is all inside one line
            if tail:
                self._pending.append(tail)
            return pieces
        if self._pending:
            self._pending.append(pieces[0])
            pieces[0] = b"".join(self._pending)
            self._pending.clear()
        if tail:
            self._pending.append(tail)
        # Every blank line is empty or starts with a byte <= 0x20, so the smallest line tells in C whether a
        # line-by-line look is needed; the lines of a results stream start with "{".
        if min(pieces)[:1] > b" ":
            self.lines += len(pieces)
            return pieces
        for index, piece in enumerate(pieces):
            if not piece or (piece[0] in _SPACE and not piece.strip()):
                raise self._error(
                    f"results line {self.lines + index + 1} is blank; a results stream has one JSON object "
                    "per line and no empty lines",
                    self.lines + index + 1,
                )
        self.lines += len(pieces)
        return pieces

    def close(self) -> None:
        """Raise if the stream ended in the middle of a line (it was cut short)."""
        if self._pending:
            tail = sum(map(len, self._pending))
            raise self._error(
                f"results stream ended in the middle of line {self.lines + 1} ({tail:,} bytes without a "
                f"final newline, after {self.lines:,} complete lines): the stream was cut short; fetch the "
                "results again",
                self.lines + 1,
            )

    def _error(self, message: str, line: int) -> ResultsStreamError:
        return ResultsStreamError(message, batch_id=self.batch_id, line=line, request_id=self.request_id)


async def aiter_lines_exact(
    chunks: AsyncIterable[bytes], *, batch_id: str | None = None, request_id: str | None = None
) -> AsyncGenerator[bytes]:
    """Yield every ``b"\\n"``-terminated line of the byte stream ``chunks``, newline included."""
    splitter = LineSplitter(batch_id=batch_id, request_id=request_id)
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line + b"\n"
    splitter.close()
