"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

The connection form is declared here (``conn-fields`` and ``ui-field-behaviour``), the Airflow 3.2+ way: the
UI reads it without importing the hook. On Airflow 3.1 the form shows the plain fields and the raw extra
JSON instead, which the hook reads the same way.
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_provider_info"]

_INTEGRATION = "Anthropic Message Batches"


def _modules(*names: str) -> list[dict[str, Any]]:
    return [{"integration-name": _INTEGRATION, "python-modules": [f"airflow_batches.{n}" for n in names]}]


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-batches",
        "name": "Anthropic Message Batches",
        "description": "Run Anthropic Message Batches from Airflow: submit, wait deferrably, land results.",
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://docs.anthropic.com/en/docs/build-with-claude/batch-processing",
                "tags": ["ai"],
            }
        ],
        "hooks": _modules("hooks.batch"),
        "triggers": _modules("triggers.batch"),
        "sensors": _modules("sensors.batch"),
        "operators": _modules("operators.create", "operators.manage", "operators.results"),
        "task-decorators": [
            {"name": "anthropic_batch", "class-name": "airflow_batches.decorators.batch.anthropic_batch_task"}
        ],
        "connection-types": [
            {
                "connection-type": "anthropic_batches",
                "hook-class-name": "airflow_batches.hooks.batch.BatchHook",
                "hook-name": "Anthropic Message Batches",
                "conn-fields": {
                    "anthropic_version": {
                        "label": "API version",
                        "description": "Value of the anthropic-version header (empty: 2023-06-01).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "description": "Per request; empty: 600 s to read, 5 s to connect.",
                        "schema": {"type": ["number", "null"]},
                    },
                    "max_retries": {
                        "label": "Retries per request",
                        "description": "Retries of 429, 529 and 5xx answers (empty: 2).",
                        "schema": {"type": ["integer", "null"]},
                    },
                    "betas": {
                        "label": "Beta features",
                        "description": "Comma-separated names sent in the anthropic-beta header.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "default_headers": {
                        "label": "Extra headers (JSON)",
                        "description": 'Headers added to every request, as JSON, e.g. {"x-team": "etl"}.',
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"password": "API key", "host": "Base URL"},
                    "placeholders": {
                        "password": "sk-ant-...",
                        "host": "https://api.anthropic.com",
                        "anthropic_version": "2023-06-01",
                        "timeout": "600",
                        "max_retries": "2",
                        "betas": "beta-name-1,beta-name-2",
                        "default_headers": '{"x-team": "etl"}',
                    },
                },
            }
        ],
    }
