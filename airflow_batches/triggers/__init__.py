"""Triggers: deferrable waiting for Message Batches in Airflow's triggerer."""

from __future__ import annotations

from airflow_batches.triggers.batch import BatchTrigger

__all__ = ["BatchTrigger"]
