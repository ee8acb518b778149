"""Landing batch results in object storage: streamed, byte-exact, checked and atomic.

``land_results(hook, batch_ref, destination, ...)`` is the engine behind ``BatchResultsOperator`` and
``BatchHook.land_results``; it returns a :class:`Manifest`. Its errors are in :mod:`airflow_batches.errors`.
"""

from __future__ import annotations

from airflow_batches.results.landing import land_results
from airflow_batches.results.manifest import FileEntry, Manifest
from airflow_batches.results.options import Compression, OverwritePolicy

__all__ = ["Compression", "FileEntry", "Manifest", "OverwritePolicy", "land_results"]
