"""Operators for Anthropic Message Batches.

Imported lazily so that ``from airflow_batches.operators import BatchCancelOperator`` does not pull in the
results landing machinery (object storage, gzip) in a DAG file that never uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_batches.operators.create import BatchCreateOperator
    from airflow_batches.operators.manage import BatchCancelOperator, BatchDeleteOperator
    from airflow_batches.operators.results import BatchResultsOperator

__all__ = ["BatchCancelOperator", "BatchCreateOperator", "BatchDeleteOperator", "BatchResultsOperator"]

_MODULES = {
    "BatchCreateOperator": "airflow_batches.operators.create",
    "BatchCancelOperator": "airflow_batches.operators.manage",
    "BatchDeleteOperator": "airflow_batches.operators.manage",
    "BatchResultsOperator": "airflow_batches.operators.results",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
