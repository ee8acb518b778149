"""Where the create ledger lives: the task state store when Airflow has one (3.3+), else a Variable."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ops_fakes import DictStore

from airflow_batches import ledger_store as ledger_store_module
from airflow_batches.ledger_store import VariableStateStore, ledger_store
from airflow_batches.reattach import LEDGER_KEY, CreateLedger, round_key

PARTS = [("a" * 64, 3), ("b" * 64, 2)]


class TI:
    def __init__(self, run_id: str = "manual__2026-12-01T16:00:00+00:00", map_index: int = -1) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "etl", run_id, "create", map_index


class FakeVariables:
    """Airflow's ``Variable`` get/set/delete with JSON (de)serialization, kept in a dict."""

    rows: dict[str, tuple[str, str | None]] = {}

    @classmethod
    def get(cls, key: str, default: Any = None, deserialize_json: bool = False) -> Any:
        if key not in cls.rows:
            return default
        text = cls.rows[key][0]
        return json.loads(text) if deserialize_json else text

    @classmethod
    def set(cls, key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        cls.rows[key] = (json.dumps(value) if serialize_json else str(value), description)

    @classmethod
    def delete(cls, key: str) -> None:
        del cls.rows[key]  # like the API: deleting a missing key is an error


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> type[FakeVariables]:
    monkeypatch.setattr(FakeVariables, "rows", {})
    monkeypatch.setattr(ledger_store_module, "Variable", FakeVariables)
    return FakeVariables


def test_the_task_state_store_is_used_when_airflow_has_one() -> None:
    store = DictStore()
    assert ledger_store({"ti": TI(), "task_state_store": store}) is store


def test_without_a_task_state_store_the_ledger_is_a_variable_of_the_task_instance(
    variables: type[FakeVariables],
) -> None:
    store = ledger_store({"ti": TI()})
    assert isinstance(store, VariableStateStore)
    CreateLedger.load(store, PARTS).record(0, "msgbatch_one")

    ((name, (text, description)),) = variables.rows.items()
    assert name.startswith(f"{LEDGER_KEY}.") and len(name) == len(LEDGER_KEY) + 1 + 24
    assert json.loads(text)["parts"][0]["batch_id"] == "msgbatch_one"
    assert description is not None and "'etl'" in description and "'create'" in description
    # A retry (a new store for the same task instance) finds the batch; success deletes the Variable.
    retry = CreateLedger.load(ledger_store({"ti": TI()}), PARTS)
    assert retry.batch_id(0) == "msgbatch_one"
    CreateLedger.discard(ledger_store({"ti": TI()}))
    assert variables.rows == {}
    CreateLedger.discard(ledger_store({"ti": TI()}))  # nothing left to delete: no error


def test_each_task_instance_has_its_own_variable(variables: type[FakeVariables]) -> None:
    names = {
        VariableStateStore("etl", run_id, "create", index).variable_name(LEDGER_KEY)
        for run_id in ("r1", "r2")
        for index in (-1, 0, 1)
    }
    assert len(names) == 6
    assert VariableStateStore("etl", "r1", "create", None).variable_name(LEDGER_KEY) in names


def test_every_resubmit_round_has_its_own_variable_and_success_deletes_them_all(
    variables: type[FakeVariables],
) -> None:
    store = ledger_store({"ti": TI()})
    CreateLedger.load(store, PARTS).record(0, "msgbatch_one")
    CreateLedger.load(store, [("c" * 64, 1)], key=round_key(2)).record(0, "msgbatch_two")
    assert len(variables.rows) == 2
    assert CreateLedger.load(ledger_store({"ti": TI()}), PARTS).batch_id(0) == "msgbatch_one"
    CreateLedger.discard(ledger_store({"ti": TI()}), rounds=3)
    assert variables.rows == {}
