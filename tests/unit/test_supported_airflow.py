"""An Airflow outside the tested lines fails at import with what is supported."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

import airflow_batches
from airflow_batches import SUPPORTED_AIRFLOW, _check_airflow

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("installed", ["3.1.0", "3.1.8", "3.2.2", "3.3.2", "3.3.10rc1"])
def test_supported_lines_import(installed: str) -> None:
    _check_airflow(installed)


@pytest.mark.parametrize("installed", ["2.11.2", "3.0.6", "3.4.0", "4.0.0"])
def test_other_lines_fail_with_what_is_supported(installed: str) -> None:
    with pytest.raises(RuntimeError) as info:
        _check_airflow(installed)
    assert f"Airflow {installed} is installed" in str(info.value)
    assert "supports Apache Airflow 3.1 to 3.3" in str(info.value)


def test_the_installed_airflow_is_supported_and_pyproject_declares_the_same_range() -> None:
    _check_airflow(version("apache-airflow"))
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (airflow,) = [d for d in project["dependencies"] if re.match(r"apache-airflow[><=! ]", d)]
    (low, high) = SUPPORTED_AIRFLOW
    assert airflow == f"apache-airflow>={low[0]}.{low[1]},<{high[0]}.{high[1] + 1}"


def test_importing_the_provider_on_airflow_3_0_fails_at_import(tmp_path: Path) -> None:
    """The check runs on import of the package (what Airflow does when it parses a DAG using it)."""
    fake = tmp_path / "apache_airflow-3.0.6.dist-info"
    fake.mkdir()
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: apache-airflow\nVersion: 3.0.6\n")
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import airflow_batches.operators"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "RuntimeError: airflow-batches" in done.stderr and "Airflow 3.0.6 is installed" in done.stderr
    assert airflow_batches.__version__
