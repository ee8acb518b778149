"""Records in, requests out: ``RequestTemplate`` and the structured output it can ask for."""

from __future__ import annotations

from airflow_batches.records.readers import Record, iter_records
from airflow_batches.records.structured import StructuredOutput
from airflow_batches.records.template import RequestTemplate

__all__ = ["Record", "RequestTemplate", "StructuredOutput", "iter_records"]
