"""Airflow internals the end-to-end harness uses that moved between the supported lines (3.1 to 3.3)."""

from __future__ import annotations

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

__all__ = ["DagBag"]
