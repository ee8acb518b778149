"""Splitting a streamed JSONL body into lines, byte for byte, without letting a cut stream pass as whole.

The work per line is one C-level ``bytes.find`` and a view of the chunk, never a per-byte Python loop or a
copy: results bodies run to gigabytes. A line split across chunks costs one join of its own pieces, nothing
more. A final line without its newline means the stream was cut and raises; so does a blank line, which no
JSONL decoder accepts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable
from typing import NamedTuple, TypeAlias

from .errors import ResultsStreamError

__all__ = ["Line", "LineChunk", "LineSplitter", "aiter_lines_exact", "size_of_lines", "valid_utf8"]

Line: TypeAlias = bytes | memoryview
"""One line of a body without its ``b"\\n"``: a view into the chunk it came in when it lies whole in that
chunk (no copy), else the bytes its pieces were joined into. msgspec, ``bytes.join``, ``str(line, "utf-8")``
and file writes take either; ``bytes(line)`` copies it where bytes are needed."""


def size_of_lines(lines: list[Line]) -> int:
    """The bytes ``lines`` held in the body, newlines included."""
    return sum(map(len, lines)) + len(lines)


class LineChunk(NamedTuple):
    """One chunk of a body as received, and the lines it completes."""

    data: bytes
    """The bytes exactly as received; they may end in the middle of a line."""
    lines: list[Line]
    """The lines that end in this chunk, whole (joined with their start from earlier chunks), without
    their ``b"\\n"``."""

    def is_utf8(self) -> bool:
        """Whether every line is UTF-8, found with one check of the chunk rather than one per line.

        ``data`` holds every line but the start of a first line joined from earlier chunks (only such a line
        is ``bytes``; the others are views into ``data``). ASCII is UTF-8 and ``isascii`` is cheap; otherwise
        the part of ``data`` that holds whole lines is decoded once: the bytes of a character of more than
        one byte are all above 0x7f, so none is a newline, and that part is UTF-8 exactly when each of its
        lines is. ``False`` says only that some line is not: the checker then finds which.
        """
        lines, data = self.lines, self.data
        if not lines:
            return True
        start = 0
        if isinstance(lines[0], bytes):
            if not valid_utf8(lines[0]):
                return False
            start = data.find(b"\n") + 1
        return data.isascii() or valid_utf8(memoryview(data)[start : data.rfind(b"\n")])


def valid_utf8(data: Line) -> bool:
    """Whether ``data`` is UTF-8 (decoding is the standard library's only check of it)."""
    if isinstance(data, bytes) and data.isascii():
        return True
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


class LineSplitter:
    """Splits a byte stream fed chunk by chunk into its ``b"\\n"``-terminated lines."""

    def __init__(self, *, batch_id: str | None = None, request_id: str | None = None) -> None:
        self.batch_id = batch_id
        self.request_id = request_id
        self.lines = 0
        self._pending: list[bytes] = []  # pieces of a line that started in earlier chunks

    def feed(self, chunk: bytes) -> list[Line]:
        """The lines ``chunk`` completes, without their newline; raises on a blank line.

        Lines are found with ``bytes.find`` and cut as views: a copy of each line (``bytes.split``) cost the
        landing more CPU than this loop does.
        """
        find = chunk.find
        end = find(b"\n")
        if end < 0:  # no newline: the chunk is all inside one line
            if chunk:
                self._pending.append(chunk)
            return []
        lines: list[Line] = []
        start = 0
        if self._pending:  # its first line began in an earlier chunk: the one copy, of that line alone
            self._pending.append(chunk[:end])
            head = b"".join(self._pending)
            self._pending.clear()
            if head[0] <= 32 and not head.strip():
                raise self._blank(0)
            lines.append(head)
            start = end + 1
        # A blank line is empty or starts with a byte <= 0x20; the lines of a results stream start with "{".
        append, view = lines.append, memoryview(chunk)
        while (end := find(b"\n", start)) >= 0:
            if chunk[start] <= 32 and not chunk[start:end].strip():
                raise self._blank(len(lines))
            append(view[start:end])
            start = end + 1
        if start < len(chunk):
            self._pending.append(chunk[start:])
        self.lines += len(lines)
        return lines

    def _blank(self, index: int) -> ResultsStreamError:
        number = self.lines + index + 1
        return self._error(
            f"results line {number} is blank; a results stream has one JSON object per line and no empty "
            "lines",
            number,
        )

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
            yield b"".join((line, b"\n"))
    splitter.close()
