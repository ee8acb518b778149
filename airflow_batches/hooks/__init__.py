"""Hooks: Airflow connections turned into Message Batches API clients."""

from __future__ import annotations

from airflow_batches.hooks.batch import BatchHook

__all__ = ["BatchHook"]
