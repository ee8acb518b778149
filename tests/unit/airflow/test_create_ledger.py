"""The create ledger: what a retry of BatchCreateOperator reuses, and what it creates again."""

from __future__ import annotations

import logging
from typing import Any

from ops_fakes import DictStore

from airflow_batches import reattach as reattach_module
from airflow_batches.reattach import LEDGER_KEY, CreateLedger, group_fingerprint, round_key

PARTS = [("a" * 64, 3), ("b" * 64, 2)]


def test_fresh_ledger_records_each_batch_as_soon_as_it_is_created() -> None:
    store = DictStore()
    ledger = CreateLedger.load(store, PARTS)
    assert [ledger.batch_id(i) for i in range(2)] == [None, None]
    ledger.mark_started(0)
    ledger.record(0, "msgbatch_one")
    stored = store.data[LEDGER_KEY]
    assert stored["fingerprint"] == group_fingerprint(["a" * 64, "b" * 64])
    assert stored["parts"][0]["batch_id"] == "msgbatch_one"
    assert stored["parts"][0]["started_at"]
    assert stored["parts"][1]["batch_id"] is None


def test_retry_with_same_input_reuses_recorded_batches_and_creates_only_missing_ones() -> None:
    store = DictStore()
    first_try = CreateLedger.load(store, PARTS)
    first_try.mark_started(0)
    first_try.record(0, "msgbatch_one")
    # The first try crashed before creating part 2.
    retry = CreateLedger.load(store, PARTS)
    assert retry.batch_id(0) == "msgbatch_one"
    assert retry.batch_id(1) is None


def test_retry_with_different_input_starts_a_new_ledger(caplog: Any) -> None:
    store = DictStore()
    first_try = CreateLedger.load(store, PARTS)
    first_try.record(0, "msgbatch_one")
    caplog.set_level(logging.INFO)
    retry = CreateLedger.load(store, [("c" * 64, 3), ("b" * 64, 2)])
    assert retry.batch_id(0) is None and retry.batch_id(1) is None
    assert "msgbatch_one" in caplog.text and "different input" in caplog.text


def test_same_parts_split_differently_do_not_match() -> None:
    store = DictStore()
    CreateLedger.load(store, PARTS).record(0, "msgbatch_one")
    assert CreateLedger.load(store, PARTS[:1]).batch_id(0) is None


def test_crash_inside_create_is_reported_on_retry(caplog: Any) -> None:
    store = DictStore()
    CreateLedger.load(store, PARTS).mark_started(1)
    caplog.set_level(logging.WARNING)
    retry = CreateLedger.load(store, PARTS)
    assert retry.batch_id(1) is None
    assert "part 2 of 2" in caplog.text and "may have created that batch" in caplog.text


def test_discard_forgets_the_group() -> None:
    store = DictStore()
    CreateLedger.load(store, PARTS).record(0, "msgbatch_one")
    CreateLedger.discard(store)
    assert LEDGER_KEY not in store.data
    assert CreateLedger.load(store, PARTS).batch_id(0) is None


def test_garbage_in_the_store_is_ignored() -> None:
    store = DictStore()
    store.data[LEDGER_KEY] = {"fingerprint": group_fingerprint(["a" * 64, "b" * 64]), "parts": ["x", None]}
    ledger = CreateLedger.load(store, PARTS)
    assert ledger.batch_id(0) is None and ledger.batch_id(1) is None


def test_a_short_or_broken_parts_list_keeps_every_part() -> None:
    store = DictStore()
    fingerprint = group_fingerprint(["a" * 64, "b" * 64])
    store.data[LEDGER_KEY] = {
        "fingerprint": fingerprint,
        "parts": [{"fingerprint": "a" * 64, "batch_id": "msgbatch_x"}],
    }
    ledger = CreateLedger.load(store, PARTS)
    assert len(ledger.parts) == 2 and ledger.batch_id(0) == "msgbatch_x" and ledger.batch_id(1) is None
    store.data[LEDGER_KEY] = {"fingerprint": fingerprint, "parts": None}
    assert len(CreateLedger.load(store, PARTS).parts) == 2


def test_the_wait_clock_starts_once_and_is_shared_by_every_try(monkeypatch: Any) -> None:
    store = DictStore()
    monkeypatch.setattr(reattach_module, "_now", lambda: 1000.0)
    assert CreateLedger.load(store, PARTS).deadline(60) == 1060.0
    assert store.data[LEDGER_KEY]["wait_started_at"] == 1000.0  # saved before anything is created
    monkeypatch.setattr(reattach_module, "_now", lambda: 5000.0)
    retry = CreateLedger.load(store, PARTS)
    assert retry.deadline(60) == 1060.0 and retry.deadline(None) is None
    assert CreateLedger.load(store, [("c" * 64, 5)]).deadline(60) == 5060.0  # other input: a new clock


def test_restart_clock_gives_the_next_try_a_fresh_timeout(monkeypatch: Any) -> None:
    store = DictStore()
    monkeypatch.setattr(reattach_module, "_now", lambda: 1000.0)
    CreateLedger.load(store, PARTS).record(0, "msgbatch_one")
    CreateLedger.restart_clock(store)
    monkeypatch.setattr(reattach_module, "_now", lambda: 5000.0)
    cleared = CreateLedger.load(store, PARTS)
    assert cleared.deadline(60) == 5060.0 and cleared.batch_id(0) == "msgbatch_one"
    CreateLedger.restart_clock(DictStore())  # no ledger: nothing to do


def test_a_stored_clock_that_is_not_a_number_starts_anew(monkeypatch: Any) -> None:
    store = DictStore()
    fingerprint = group_fingerprint(["a" * 64, "b" * 64])
    store.data[LEDGER_KEY] = {"fingerprint": fingerprint, "wait_started_at": True, "parts": []}
    monkeypatch.setattr(reattach_module, "_now", lambda: 7.0)
    assert CreateLedger.load(store, PARTS).deadline(3) == 10.0


def test_each_resubmit_round_has_its_own_ledger_and_discard_forgets_them_all() -> None:
    store = DictStore()
    CreateLedger.load(store, PARTS).record(0, "msgbatch_one")
    second = CreateLedger.load(store, [("d" * 64, 2)], key=round_key(2))
    second.record(0, "msgbatch_two")
    assert round_key(1) == LEDGER_KEY and round_key(2) != LEDGER_KEY
    assert store.data[LEDGER_KEY]["parts"][0]["batch_id"] == "msgbatch_one", "round 2 left round 1 alone"
    assert CreateLedger.load(store, [("d" * 64, 2)], key=round_key(2)).batch_id(0) == "msgbatch_two"
    assert CreateLedger.load(store, [("e" * 64, 2)], key=round_key(2)).batch_id(0) is None, "other requests"
    CreateLedger.discard(store, rounds=3)
    assert store.data == {}
