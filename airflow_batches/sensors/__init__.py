"""Sensors: wait for Message Batches to end."""

from __future__ import annotations

from airflow_batches.sensors.batch import BatchSensor

__all__ = ["BatchSensor"]
