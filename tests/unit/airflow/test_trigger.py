"""BatchTrigger's waiting logic over ``httpx.MockTransport`` on a fake clock: polling and jitter, groups,
the failure budget, throttling, fatal answers, the deadline, serialization, on_kill and secrecy.

The real event loop, sockets and emulator are exercised in tests/integration/test_trigger_emulator.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fake_api import FakeAPI, error_response
from ops_fakes import batch_json

from airflow_batches import waiting as waiting_module
from airflow_batches.events import validate_event
from airflow_batches.hooks import batch as hook_module
from airflow_batches.polling import poll_delay
from airflow_batches.triggers import BatchTrigger

KEY = "sk-ant-trigger-unit-secret-9999"
START = 1_800_000_000.0


def cancel_answer(request: httpx.Request) -> dict[str, Any]:
    assert request.method == "POST" and request.url.path.endswith("/cancel"), request
    return batch_json(request.url.path.split("/")[4], "canceling")


def polled(api: FakeAPI) -> list[str]:
    return [path.split("/")[4] for path in api.paths("GET")]


class FakeClock:
    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(waiting_module, "_now", fake.time)
    monkeypatch.setattr(waiting_module, "_sleep", fake.sleep)
    return fake


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[FakeAPI]:
    fake = FakeAPI(default=cancel_answer)
    # Retries inside one request are the api layer's business (tested there); here every poll is one request.
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT",
        json.dumps(
            {
                "conn_type": "anthropic",
                "host": "http://api.test",
                "password": KEY,
                "extra": {"max_retries": 0},
            }
        ),
    )
    monkeypatch.setattr(
        hook_module,
        "shared_client",
        lambda settings: httpx.AsyncClient(transport=fake.transport()),
    )
    yield fake


async def first_event(trigger: BatchTrigger) -> dict[str, Any]:
    events = trigger.run()
    event = await events.__anext__()
    await events.aclose()
    payload: dict[str, Any] = event.payload
    validate_event(payload)
    return payload


async def test_polls_until_ended_with_jittered_interval(api: FakeAPI, clock: FakeClock, capfd: Any) -> None:
    api.script(
        "msgbatch_a", batch_json("msgbatch_a"), batch_json("msgbatch_a"), batch_json("msgbatch_a", "ended")
    )
    event = await first_event(BatchTrigger("msgbatch_a", poll_interval=30))
    assert (event["status"], event["reason"], event["batch_ids"]) == ("success", "ended", ["msgbatch_a"])
    assert event["counts"]["succeeded"] == 3 and event["batches"][0]["processing_status"] == "ended"
    assert len(clock.sleeps) == 2 and all(27 <= s <= 33 for s in clock.sleeps)
    assert len(api.requests) == 3
    # A state is logged when it changes: the second poll (still in_progress, same counts) is DEBUG only.
    lines = [line for line in capfd.readouterr().out.splitlines() if "Batch msgbatch_a is" in line]
    assert len(lines) == 2
    assert "is in_progress: processing=3 succeeded=0 errored=0 canceled=0 expired=0" in lines[0]
    assert "is ended: processing=0 succeeded=3 errored=0 canceled=0 expired=0" in lines[1]


async def test_a_group_logs_one_summary_line_per_poll(api: FakeAPI, clock: FakeClock, capfd: Any) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended", errored=1, succeeded=2))
    api.script(
        "msgbatch_b", batch_json("msgbatch_b"), batch_json("msgbatch_b"), batch_json("msgbatch_b", "ended")
    )
    await first_event(BatchTrigger(["msgbatch_a", "msgbatch_b"], poll_interval=5))
    out = capfd.readouterr().out
    summaries = [line for line in out.splitlines() if "Group of 2 batches" in line]
    assert len(summaries) == 3  # one per poll
    assert "1 ended, 1 in_progress; processing=3 succeeded=2 errored=1" in summaries[0]
    assert "2 ended; processing=0 succeeded=5 errored=1 canceled=0 expired=0" in summaries[-1]
    assert len([line for line in out.splitlines() if "Batch msgbatch_b is" in line]) == 2


async def test_in_a_triggerer_the_first_poll_comes_at_a_random_point_of_the_interval(
    api: FakeAPI, clock: FakeClock
) -> None:
    firsts = []
    for _ in range(30):
        api.script("msgbatch_a", batch_json("msgbatch_a", "ended"))
        trigger = BatchTrigger("msgbatch_a", poll_interval=60)
        trigger.trigger_id = 7  # what the triggerer sets before running it
        clock.sleeps.clear()
        await first_event(trigger)
        assert len(clock.sleeps) == 1  # the spread, then one poll that found the batch ended
        firsts.append(clock.sleeps[0])
    assert all(0 <= s <= 60 for s in firsts) and max(firsts) - min(firsts) > 20


async def test_the_start_spread_never_passes_the_deadline(api: FakeAPI, clock: FakeClock) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a"))
    trigger = BatchTrigger("msgbatch_a", poll_interval=3600, deadline=clock.now + 5)
    trigger.trigger_id = 7
    event = await first_event(trigger)
    assert clock.sleeps[0] <= 5 and event["status"] == "timeout"


async def test_jitter_spreads_triggers_started_together() -> None:
    delays = {round(poll_delay(100, 0), 6) for _ in range(50)}
    assert len(delays) > 40 and min(delays) >= 90 and max(delays) <= 110


async def test_group_waits_for_all_and_polls_only_unfinished(api: FakeAPI, clock: FakeClock) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended", errored=1, succeeded=2))
    api.script(
        "msgbatch_b", batch_json("msgbatch_b"), batch_json("msgbatch_b"), batch_json("msgbatch_b", "ended")
    )
    group = {"batch_ids": ["msgbatch_a", "msgbatch_b"], "total_requests": 6}
    event = await first_event(BatchTrigger(group, poll_interval=5))
    assert event["status"] == "success" and event["batch_ids"] == ["msgbatch_a", "msgbatch_b"]
    assert polled(api) == [
        "msgbatch_a",
        "msgbatch_b",
        "msgbatch_b",
        "msgbatch_b",
    ]
    assert event["counts"] == {"processing": 0, "succeeded": 5, "errored": 1, "canceled": 0, "expired": 0}


async def test_canceling_is_not_terminal(api: FakeAPI, clock: FakeClock) -> None:
    api.script(
        "msgbatch_a", batch_json("msgbatch_a", "canceling"), batch_json("msgbatch_a", "ended", canceled=3)
    )
    event = await first_event(BatchTrigger("msgbatch_a", poll_interval=5))
    assert event["status"] == "success" and event["counts"]["canceled"] == 3 and len(api.requests) == 2


@pytest.mark.parametrize(
    "transient", [500, 529, 503, httpx.ConnectError, lambda r: httpx.Response(200, text="<html>proxy</html>")]
)
async def test_transient_failures_are_waited_out_with_backoff(
    api: FakeAPI, clock: FakeClock, transient: Any
) -> None:
    api.script("msgbatch_a", transient, transient, transient, batch_json("msgbatch_a", "ended"))
    event = await first_event(BatchTrigger("msgbatch_a", poll_interval=10, max_poll_errors=4))
    assert event["status"] == "success"
    # Backoff doubles from the poll interval (+-10% jitter): about 10, 20, 40.
    assert [round(s / 10) for s in clock.sleeps] == [1, 2, 4]


async def test_failure_budget_exhausted_gives_an_error_event_and_cancels_nothing(
    api: FakeAPI, clock: FakeClock
) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a"), 500)
    event = await first_event(BatchTrigger("msgbatch_a", poll_interval=10, max_poll_errors=3))
    assert (event["status"], event["reason"]) == ("error", "errors_exhausted")
    assert "3 polls in a row" in event["message"] and "HTTP 500" in event["message"]
    assert "not cancelled" in event["message"]
    assert event["batch_ids"] == ["msgbatch_a"] and event["batches"][0]["processing_status"] == "in_progress"
    assert len(api.requests) == 4 and all(r.method == "GET" for r in api.requests)


async def test_budget_counts_consecutive_failures_only(api: FakeAPI, clock: FakeClock) -> None:
    flaky = [500, 500, batch_json("msgbatch_a")] * 4
    api.script("msgbatch_a", *flaky, batch_json("msgbatch_a", "ended"))
    event = await first_event(BatchTrigger("msgbatch_a", poll_interval=10, max_poll_errors=3))
    assert event["status"] == "success"


async def test_throttling_never_uses_up_the_budget(api: FakeAPI, clock: FakeClock, capfd: Any) -> None:
    api.script("msgbatch_a", *[429] * 6, batch_json("msgbatch_a", "ended"))
    event = await first_event(BatchTrigger("msgbatch_a", poll_interval=1, max_poll_errors=2))
    assert event["status"] == "success"
    assert clock.sleeps == sorted(clock.sleeps) and clock.sleeps[-1] > 20  # backed off
    assert "Throttled by the API (429)" in capfd.readouterr().out


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, "auth"), (403, "permission"), (404, "not_found"), (400, "invalid_request"), (402, "permission")],
)
async def test_answers_that_will_not_change_end_the_wait_at_once(
    api: FakeAPI, clock: FakeClock, status: int, reason: str
) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended"))
    api.script("msgbatch_b", status)
    event = await first_event(BatchTrigger(["msgbatch_a", "msgbatch_b"], poll_interval=10))
    assert (event["status"], event["reason"]) == ("error", reason)
    assert "msgbatch_b" in event["message"] and f"HTTP {status}" in event["message"]
    assert event["batch_ids"] == ["msgbatch_a", "msgbatch_b"]
    assert clock.sleeps == []


async def test_deadline_gives_a_timeout_event_with_the_latest_states(api: FakeAPI, clock: FakeClock) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a"))
    trigger = BatchTrigger("msgbatch_a", poll_interval=30, deadline=START + 100)
    event = await first_event(trigger)
    assert (event["status"], event["reason"]) == ("timeout", "deadline")
    assert clock.now == START + 100  # never sleeps past the deadline, and polls once more at it
    assert event["batches"][0]["processing_status"] == "in_progress" and event["counts"]["processing"] == 3
    assert "keep running" in event["message"] and "msgbatch_a" in event["message"]
    assert datetime.fromtimestamp(START + 100, UTC).strftime("%Y-%m-%dT%H:%M:%S") in event["message"]


async def test_a_passed_deadline_still_gets_one_look(api: FakeAPI, clock: FakeClock) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended"))
    event = await first_event(BatchTrigger("msgbatch_a", poll_interval=30, deadline=START - 5))
    assert event["status"] == "success" and clock.sleeps == []


async def test_missing_connection_is_an_error_event_naming_it(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_CONN", raising=False)
    event = await first_event(BatchTrigger("msgbatch_a", conn_id="no_such_conn"))
    assert (event["status"], event["reason"]) == ("error", "invalid_request")
    assert "'no_such_conn'" in event["message"] and event["batch_ids"] == ["msgbatch_a"]


def test_serialize_is_primitives_only_and_round_trips() -> None:
    group = {"batch_ids": ["msgbatch_a", "msgbatch_b"], "request_counts": [2, 1], "fingerprint": "abc"}
    trigger = BatchTrigger(
        group, conn_id="c", poll_interval=12, deadline=START + 60, cancel_on_kill=True, max_poll_errors=4
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_batches.triggers.batch.BatchTrigger"
    assert kwargs == {
        "batch_id": ["msgbatch_a", "msgbatch_b"],
        "conn_id": "c",
        "poll_interval": 12.0,
        "deadline": START + 60,
        "cancel_on_kill": True,
        "max_poll_errors": 4,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_deadline_may_be_an_aware_datetime_and_is_stored_as_epoch() -> None:
    when = datetime(2027, 1, 1, tzinfo=UTC)
    assert BatchTrigger("msgbatch_a", deadline=when).serialize()[1]["deadline"] == when.timestamp()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_id": []}, "names no batch"),
        ({"batch_id": 5}, "cannot read batch ids"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"deadline": "tomorrow"}, "deadline"),
        ({"deadline": datetime(2027, 1, 1)}, "timezone-aware"),
        ({"max_poll_errors": 0}, "max_poll_errors"),
    ],
)
def test_bad_arguments_are_refused_when_deferring(kwargs: dict[str, Any], match: str) -> None:
    kwargs.setdefault("batch_id", "msgbatch_a")
    with pytest.raises(ValueError, match=match):
        BatchTrigger(**kwargs)


async def test_on_kill_cancels_only_unfinished_batches_when_asked(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a", "ended"))
    api.script("msgbatch_b", batch_json("msgbatch_b"))
    trigger = BatchTrigger(["msgbatch_a", "msgbatch_b"], poll_interval=5, cancel_on_kill=True)
    events = trigger.run()
    monkeypatch.setattr(waiting_module, "_sleep", _stop_after_first_poll)
    with pytest.raises(_Killed):
        await events.__anext__()
    await trigger.on_kill()
    assert [(r.method, r.url.path) for r in api.requests if r.method == "POST"] == [
        ("POST", "/v1/messages/batches/msgbatch_b/cancel")
    ]


async def test_on_kill_without_the_flag_and_cleanup_never_cancel(api: FakeAPI, clock: FakeClock) -> None:
    api.script("msgbatch_a", batch_json("msgbatch_a"))
    trigger = BatchTrigger("msgbatch_a")
    await trigger.on_kill()
    await trigger.cleanup()
    await BatchTrigger("msgbatch_a", cancel_on_kill=True).cleanup()
    assert api.requests == []


async def test_on_kill_with_an_unusable_connection_logs_why_nothing_was_cancelled(
    monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", json.dumps({"conn_type": "anthropic", "host": "ftp://x"}))
    await BatchTrigger("msgbatch_a", conn_id="broken", cancel_on_kill=True).on_kill()
    assert "Could not cancel batches msgbatch_a: connection 'broken' cannot be used" in capfd.readouterr().out


async def test_the_key_never_reaches_kwargs_logs_or_events(
    api: FakeAPI, clock: FakeClock, capfd: Any
) -> None:
    api.script("msgbatch_a", 500, error_response(401, f"bad key {KEY}"))
    trigger = BatchTrigger("msgbatch_a", poll_interval=1)
    event = await first_event(trigger)
    assert event["reason"] == "auth"
    assert KEY not in json.dumps(trigger.serialize()) and KEY not in repr(trigger)
    assert KEY not in json.dumps(event)
    assert KEY not in capfd.readouterr().out


class _Killed(Exception):
    pass


async def _stop_after_first_poll(seconds: float) -> None:
    raise _Killed
