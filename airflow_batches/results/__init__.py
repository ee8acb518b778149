"""Landing batch results in object storage: streamed, byte-exact, checked and atomic."""

from __future__ import annotations

from airflow_batches.results.options import Compression, OverwritePolicy

__all__ = ["Compression", "OverwritePolicy"]
