"""The server side of the emulator depends on the wire models only: never on the API client or Airflow."""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_batches.emulator

PACKAGE = Path(airflow_batches.emulator.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_emulator_imports_only_the_models_from_the_project() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        project = {
            name for name in imported_modules(path) if name.split(".")[0] in ("airflow", "airflow_batches")
        }
        foreign = {name for name in project if not name.startswith("airflow_batches.emulator")}
        assert foreign <= {"airflow_batches.api.models"}, f"{path.name} imports {sorted(foreign)}"
