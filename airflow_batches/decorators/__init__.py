"""TaskFlow decorators: ``@task.anthropic_batch`` (registered through the provider info)."""

from __future__ import annotations

from airflow_batches.decorators.batch import anthropic_batch_task

__all__ = ["anthropic_batch_task"]
