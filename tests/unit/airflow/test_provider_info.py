"""Provider registration: the metadata itself, and Airflow's own CLI reading it from the installed package."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import BaseHook
from airflow.triggers.base import BaseTrigger

from airflow_batches.get_provider_info import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_package_name_matches_the_distribution() -> None:
    from importlib.metadata import distribution

    assert get_provider_info()["package-name"] == distribution("airflow-batches").metadata["Name"]


def test_every_listed_module_imports_and_holds_what_it_should() -> None:
    info = get_provider_info()
    expected = {
        "hooks": ["airflow_batches.hooks.batch"],
        "triggers": ["airflow_batches.triggers.batch"],
        "sensors": ["airflow_batches.sensors.batch"],
        "operators": [
            "airflow_batches.operators.create",
            "airflow_batches.operators.manage",
            "airflow_batches.operators.results",
        ],
    }
    for kind, modules in expected.items():
        assert [m for entry in info[kind] for m in entry["python-modules"]] == modules
    for kind in expected:
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    assert issubclass(importlib.import_module("airflow_batches.triggers.batch").BatchTrigger, BaseTrigger)


def test_connection_type_points_at_the_hook_and_describes_the_form() -> None:
    (conn,) = get_provider_info()["connection-types"]
    module, _, name = conn["hook-class-name"].rpartition(".")
    hook = getattr(importlib.import_module(module), name)
    assert issubclass(hook, BaseHook) and hook.conn_type == conn["connection-type"] == "anthropic_batches"
    assert conn["hook-name"] == hook.hook_name == "Anthropic Message Batches"
    assert set(conn["conn-fields"]) == {
        "anthropic_version",
        "timeout",
        "max_retries",
        "betas",
        "default_headers",
    }
    assert all(field["label"] for field in conn["conn-fields"].values())
    behaviour = conn["ui-field-behaviour"]
    assert behaviour["relabeling"] == {"password": "API key", "host": "Base URL"}
    assert {"schema", "port", "login"} <= set(behaviour["hidden-fields"])
    assert behaviour["placeholders"]["host"] == "https://api.anthropic.com"


def airflow_cli(tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # No metadata database is needed to list providers.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/missing/dir/airflow.db",
    }
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow-home")


def rows(output: str) -> list[dict[str, Any]]:
    """The JSON table from the output (log lines may come before it)."""
    table = next(line for line in output.splitlines() if line.startswith("[{"))
    parsed: list[dict[str, Any]] = json.loads(table)
    return parsed


def test_airflow_providers_list_shows_the_package(cli_home: Path) -> None:
    listed = {
        row["package_name"]: row for row in rows(airflow_cli(cli_home, "providers", "list", "-o", "json"))
    }
    assert "airflow-batches" in listed
    from airflow_batches import __version__

    assert listed["airflow-batches"]["version"] == __version__


def test_airflow_providers_get_full_shows_the_metadata(cli_home: Path) -> None:
    (row,) = rows(airflow_cli(cli_home, "providers", "get", "airflow-batches", "--full", "-o", "json"))
    assert row["package-name"] == "airflow-batches"
    assert row["connection-types"][0]["connection-type"] == "anthropic_batches"


def test_airflow_providers_hooks_lists_our_connection_type(cli_home: Path) -> None:
    hooks = {
        row["connection_type"]: row for row in rows(airflow_cli(cli_home, "providers", "hooks", "-o", "json"))
    }
    assert hooks["anthropic_batches"]["class"] == "airflow_batches.hooks.batch.BatchHook"
    assert hooks["anthropic_batches"]["conn_id_attribute_name"] == "conn_id"
