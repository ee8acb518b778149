"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-batches",
        "name": "Anthropic Message Batches",
        "description": "Run Anthropic Message Batches from Airflow: submit, wait deferrably, land results.",
    }
