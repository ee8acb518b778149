"""Write-behind: a landing's hashing, compressing and storing done on one worker thread.

sha256, zlib and file or socket writes release the GIL, so on a worker they run while the landing thread
reads and checks the next lines. One worker keeps the writes in order; at most ``depth`` writes wait for it
(the landing thread blocks when the worker falls behind, so memory stays bounded); a write that failed is
raised in the landing thread at its next :meth:`WriteBehind.submit` or at :meth:`WriteBehind.drain`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["WriteBehind"]


class WriteBehind:
    """Runs submitted writes one after the other on a worker thread; use as a context manager."""

    def __init__(self, depth: int = 4) -> None:
        self._depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airflow-batches-write")
        self._pending: deque[Future[None]] = deque()

    def submit(self, write: Callable[[], None]) -> None:
        """Queue ``write``; first wait while ``depth`` writes are queued, and raise a failed one."""
        pending = self._pending
        while pending and (len(pending) >= self._depth or pending[0].done()):
            pending.popleft().result()
        pending.append(self._pool.submit(write))

    def drain(self) -> None:
        """Wait for every queued write; raise the first that failed."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Drop the writes not started, wait for the running one, stop the worker; never raises.

        Errors of writes not drained are dropped: close runs after success (nothing left) or while another
        error is being raised.
        """
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
