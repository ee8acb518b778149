"""Splitting a streamed JSONL body into lines, byte for byte, without letting a cut stream pass as whole.

Lines are yielded exactly as received, each ending in ``b"\\n"``. The work per chunk is a handful of C-level
``bytes`` operations (``rfind``/``split``), never a per-byte Python loop: results bodies run to gigabytes.
A final line without its newline means the stream was cut and raises; so does a blank line, which no
JSONL decoder accepts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable

from .errors import ResultsStreamError

__all__ = ["aiter_lines_exact"]


async def aiter_lines_exact(
    chunks: AsyncIterable[bytes], *, batch_id: str | None = None, request_id: str | None = None
) -> AsyncGenerator[bytes]:
    """Yield every ``b"\\n"``-terminated line of the byte stream ``chunks``."""
    pending: list[bytes] = []  # pieces of a line that started in earlier chunks
    line_no = 0
    async for chunk in chunks:
        end = chunk.rfind(b"\n")
        if end < 0:
            if chunk:
                pending.append(chunk)
            continue
        head = chunk[: end + 1]
        if pending:
            pending.append(head)
            head = b"".join(pending)
            pending.clear()
        if end + 1 < len(chunk):
            pending.append(chunk[end + 1 :])
        pieces = head.split(b"\n")
        pieces.pop()  # the empty piece after the last newline
        for piece in pieces:
            line_no += 1
            if not piece or (piece[:1].isspace() and not piece.strip()):
                raise ResultsStreamError(
                    f"results line {line_no} is blank; a results stream has one JSON object per line "
                    "and no empty lines",
                    batch_id=batch_id,
                    line=line_no,
                    request_id=request_id,
                )
            yield piece + b"\n"
    if pending:
        tail = b"".join(pending)
        raise ResultsStreamError(
            f"results stream ended in the middle of line {line_no + 1} ({len(tail):,} bytes without a final "
            f"newline, after {line_no:,} complete lines): the stream was cut short; fetch the results again",
            batch_id=batch_id,
            line=line_no + 1,
            request_id=request_id,
        )
