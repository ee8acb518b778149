"""Where the create ledger is kept: Airflow 3.3's task state store, or one Airflow Variable before 3.3.

Both survive what the ledger is for: a retry (Airflow 3 clears a task's XComs when a new try starts), a
cleared task and a killed worker, because both live in the metadata database and are written through the
task's API client as soon as :class:`~airflow_batches.reattach.CreateLedger` saves.

Before 3.3 (no ``context["task_state_store"]``) the ledger is one Variable per task instance, named
``airflow_batches.create_ledger.<24 hex digits>`` (a hash of dag_id, run_id, task_id and map_index: run ids
hold characters a key should not, and they can be long). Its description names the task instance, so it can
be found in the UI or with ``airflow variables list``. Like the state store row, it is deleted when the task
succeeds; a task that failed for good leaves it behind (a few hundred bytes): clearing that task reattaches
to its batches, and ``airflow variables delete <name>`` drops it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Variable

from airflow_batches.reattach import StateStore

__all__ = ["VariableStateStore", "ledger_store"]


def ledger_store(context: Mapping[str, Any]) -> StateStore:
    """The task state store of this task instance (Airflow 3.3+), else its :class:`VariableStateStore`."""
    store = context.get("task_state_store")
    if store is not None:
        return store  # type: ignore[no-any-return]
    ti = context["ti"]
    return VariableStateStore(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)


class VariableStateStore:
    """The state store's ``get``/``set``/``delete`` for one task instance, on Airflow Variables."""

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int | None) -> None:
        index = -1 if map_index is None else map_index
        self.task_instance = f"dag {dag_id!r}, run {run_id!r}, task {task_id!r}, map index {index}"
        scope = "\n".join((dag_id, run_id, task_id, str(index)))
        self._suffix = hashlib.sha256(scope.encode()).hexdigest()[:24]

    def variable_name(self, key: str) -> str:
        return f"{key}.{self._suffix}"

    def get(self, key: str, default: Any = None) -> Any:
        return Variable.get(self.variable_name(key), default=default, deserialize_json=True)

    def set(self, key: str, value: Any) -> None:
        Variable.set(
            self.variable_name(key),
            value,
            description=f"airflow-batches create ledger of {self.task_instance}; deleted when it succeeds",
            serialize_json=True,
        )

    def delete(self, key: str) -> None:
        name = self.variable_name(key)
        if Variable.get(name, default=None) is not None:
            Variable.delete(name)
