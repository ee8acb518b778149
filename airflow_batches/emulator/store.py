"""The emulator's batches: creation order, lookup, deletion, list pages, and their spooled bodies on disk."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from airflow_batches.emulator.create_body import ParsedRequests
from airflow_batches.emulator.ids import random_id
from airflow_batches.emulator.lifecycle import Batch, RenderingKey

__all__ = ["BatchStore", "UnknownCursorError"]


class UnknownCursorError(LookupError):
    """A list cursor that names no batch this emulator ever created."""


class BatchStore:
    """Batches in creation order. Request bodies live as files in a private temporary directory."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="airflow-batches-emulator-"))
        self._batches: dict[str, Batch] = {}
        # Sequence numbers of every id ever created, deleted ones included, so a deleted batch's id still
        # works as a list cursor.
        self._seq_by_id: dict[str, int] = {}
        self.created_count = 0

    def new_body_path(self) -> Path:
        handle, name = tempfile.mkstemp(dir=self._dir, suffix=".json")
        os.close(handle)
        return Path(name)

    def new_results_path(self) -> Path:
        handle, name = tempfile.mkstemp(dir=self._dir, suffix=".jsonl")
        os.close(handle)
        return Path(name)

    def keep_results(self, batch: Batch, key: RenderingKey, path: Path) -> None:
        """Keep ``path`` as ``batch``'s results rendered for ``key``, unless the batch is gone meanwhile."""
        if self._batches.get(batch.id) is not batch:
            path.unlink(missing_ok=True)
            return
        replaced = batch.kept_results.get(key)
        batch.kept_results[key] = path
        if replaced is not None:  # two first reads at once: the same bytes, keep one
            replaced.unlink(missing_ok=True)

    def add(
        self,
        requests: ParsedRequests,
        body_path: Path,
        *,
        now: datetime,
        processing_seconds: float,
        transient_error_type: str = "overloaded_error",
    ) -> Batch:
        batch_id = random_id("msgbatch_")
        batch = Batch(
            id=batch_id,
            seq=self.created_count,
            created_at=now,
            processing_seconds=processing_seconds,
            requests=requests,
            body_path=body_path,
            transient_error_type=transient_error_type,
        )
        self._batches[batch_id] = batch
        self._seq_by_id[batch_id] = batch.seq
        self.created_count += 1
        return batch

    @property
    def stored_count(self) -> int:
        return len(self._batches)

    def get(self, batch_id: str) -> Batch | None:
        return self._batches.get(batch_id)

    def delete(self, batch: Batch) -> None:
        del self._batches[batch.id]
        batch.body_path.unlink(missing_ok=True)
        for path in batch.kept_results.values():
            path.unlink(missing_ok=True)
        batch.kept_results.clear()

    def page(
        self, *, limit: int, before_id: str | None = None, after_id: str | None = None
    ) -> tuple[Sequence[Batch], bool]:
        """One list page, newest first, and whether more batches lie beyond it in the requested direction.

        Cursors are exclusive: ``after_id`` pages towards older batches, ``before_id`` towards newer ones.
        """
        newest_first = list(reversed(self._batches.values()))
        if after_id is not None:
            cursor = self._cursor(after_id, "after_id")
            older = [batch for batch in newest_first if batch.seq < cursor]
            return older[:limit], len(older) > limit
        if before_id is not None:
            cursor = self._cursor(before_id, "before_id")
            newer = [batch for batch in newest_first if batch.seq > cursor]
            return newer[-limit:], len(newer) > limit
        return newest_first[:limit], len(newest_first) > limit

    def _cursor(self, batch_id: str, name: str) -> int:
        if batch_id not in self._seq_by_id:
            raise UnknownCursorError(f"{name}: no message batch with id {batch_id!r}")
        return self._seq_by_id[batch_id]

    def clear(self) -> None:
        """Drop every batch and its body (the created count and cursors are reset too)."""
        for batch in list(self._batches.values()):
            self.delete(batch)
        self._seq_by_id.clear()
        self.created_count = 0

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
