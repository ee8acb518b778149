"""The package as a newcomer installs it: the README's install commands in a fresh virtual environment.

They run as written in a copy of the clone (so ``dist/`` and ``build/`` stay out of the working tree), with
the new environment's ``bin`` first on PATH; then the wheel they built is checked: ``py.typed``, the provider
entry point, every module of the package and nothing else, and dependencies equal to the README's list.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from readme import README, snippet

pytestmark = pytest.mark.e2e

REPO = README.parent


@dataclass(frozen=True)
class Installed:
    wheel: Path
    output: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("install")
    clone = root / "clone"
    clone.mkdir()
    for name in ("pyproject.toml", "README.md", "constraints"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, clone / name)
    shutil.copytree(
        REPO / "airflow_batches", clone / "airflow_batches", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", AIRFLOW_HOME=str(root / "airflow-home"))
    (root / "airflow-home").mkdir()
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet("install").code],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = (clone / "dist").glob("*.whl")
    return Installed(wheel=wheel, output=result.stdout, env=env)


def test_readme_install_commands_work_in_a_fresh_venv(installed: Installed) -> None:
    """The README's last command printed the provider; as JSON, in the same environment, it lists what we
    register, read from the installed wheel (not from this clone)."""
    assert "airflow-batches" in installed.output and "0.1.0" in installed.output
    where = subprocess.run(
        ["python", "-c", "import airflow_batches; print(airflow_batches.__file__)"],
        env=installed.env,
        cwd=installed.env["AIRFLOW_HOME"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages" in where and str(REPO) not in where
    result = subprocess.run(
        ["airflow", "providers", "get", "airflow-batches", "--full", "-o", "json"],
        env=installed.env,
        cwd=installed.env["AIRFLOW_HOME"],
        capture_output=True,
        text=True,
        check=True,
    )
    (info,) = json.loads(result.stdout[result.stdout.index("[") :])
    assert info["package-name"] == "airflow-batches"
    assert info["connection-types"][0]["hook-class-name"] == "airflow_batches.hooks.batch.BatchHook"
    assert {"airflow_batches.sensors.batch"} <= set(info["sensors"][0]["python-modules"])


def test_wheel_holds_the_package_typing_marker_and_provider_entry_point(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert "airflow_batches/py.typed" in names
    assert (
        "[apache_airflow_provider]\nprovider_info = airflow_batches.get_provider_info:get_provider_info"
        in (entry_points)
    )
    modules = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "airflow_batches").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    packaged = {n for n in names if n.endswith(".py")}
    assert packaged == modules
    assert not [n for n in names if n.startswith(("tests/", "example_dags/", "bench/", "scripts/"))]


def test_package_dependencies_equal_the_readme_list(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        dist_info = next(n.split("/")[0] for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
    required = metadata.get_all("Requires-Dist") or []
    core = {r for r in required if ";" not in r}
    s3 = {r.split(";")[0].strip() for r in required if re.search(r'extra == "s3"', r)}

    text = README.read_text()
    paragraph = text[text.index("**Dependencies**") :].split("\n\n")[0]
    listed_core, listed_extras = re.split(r"the `s3`\s+extra adds", paragraph)
    listed_extra, listed_parquet = re.split(r"the `parquet`\s+extra adds", listed_extras)
    parquet = {r.split(";")[0].strip() for r in required if re.search(r'extra == "parquet"', r)}
    names = re.compile(r"`([a-z][\w.-]*(?:\[[\w,]+\])?[<>=!~][^`]*|[a-z][\w.-]*\[[\w,]+\])`")
    assert _normalized(names.findall(listed_parquet)) == _normalized(parquet)
    assert _normalized(names.findall(listed_core)) == _normalized(core)
    assert _normalized(names.findall(listed_extra)) == _normalized(s3)


def _normalized(requirements: Iterable[str]) -> set[str]:
    """One spelling per requirement (the metadata sorts specifiers: ``<3.4,>=3.1``)."""
    from packaging.requirements import Requirement

    return {str(Requirement(text)) for text in requirements}
