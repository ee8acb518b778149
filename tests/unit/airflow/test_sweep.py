"""The shared list sweep: which calls a round makes, what each batch gets, and how waits use the rounds."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fake_api import BATCHES_PATH, FakeAPI, error_response
from ops_fakes import batch_json

from airflow_batches import sweep as sweep_module
from airflow_batches import waiting as waiting_module
from airflow_batches.api import BatchServiceAsync
from airflow_batches.batch_ref import BatchSnapshot
from airflow_batches.polling import PollFailure
from airflow_batches.sweep import PAGE_WORTH, SWEEP_MIN, ListSweep, RoundResults, sweep_once
from airflow_batches.waiting import GroupWait

KEY = "sk-ant-sweep-unit-secret-4242"


def ids(count: int, prefix: str = "msgbatch_") -> list[str]:
    return [f"{prefix}{number:06d}" for number in range(count)]


def listing(all_ids: list[str], status: str = "in_progress", page_size: int = 1000) -> Any:
    """A list endpoint over ``all_ids`` (newest first) honouring ``limit`` and ``after_id``."""

    def answer(request: httpx.Request) -> dict[str, Any]:
        limit = int(request.url.params.get("limit", "20"))
        after = request.url.params.get("after_id")
        start = all_ids.index(after) + 1 if after else 0
        chunk = all_ids[start : start + min(limit, page_size)]
        return {
            "data": [batch_json(batch_id, status) for batch_id in chunk],
            "has_more": start + len(chunk) < len(all_ids),
            "first_id": chunk[0] if chunk else None,
            "last_id": chunk[-1] if chunk else None,
        }

    return answer


def service_for(api: FakeAPI) -> BatchServiceAsync:
    return BatchServiceAsync(
        api_key=KEY,
        base_url="http://api.test",
        http_client=httpx.AsyncClient(transport=api.transport()),
        max_retries=0,
    )


def calls(api: FakeAPI) -> list[str]:
    return [
        "list" if request.url.path == BATCHES_PATH else request.url.path.rsplit("/", 1)[1]
        for request in api.requests
    ]


async def test_a_round_walks_pages_until_every_wanted_batch_is_seen() -> None:
    workspace = ids(2500)
    api = FakeAPI().route("GET", BATCHES_PATH, listing(workspace))
    wanted = workspace[:50] + workspace[1500:1550]  # the second page holds the oldest wanted ones
    results, failed = await sweep_once(service_for(api), wanted)
    assert calls(api) == ["list", "list"] and not failed
    assert set(results) == set(wanted)
    assert all(isinstance(r, dict) and r["id"] == batch_id for batch_id, r in results.items())
    assert [request.url.params.get("after_id") for request in api.requests] == [None, workspace[999]]


async def test_pages_that_stop_paying_give_way_to_retrieving_the_rest() -> None:
    workspace = ids(5000)
    wanted = workspace[:10] + workspace[4990:]  # 20 wanted: a page must show PAGE_WORTH of them on average
    api = FakeAPI().route("GET", BATCHES_PATH, listing(workspace))
    for batch_id in workspace[4990:]:
        api.script(batch_id, batch_json(batch_id, "ended"))
    results, failed = await sweep_once(service_for(api), wanted)
    assert calls(api).count("list") == len(wanted) // PAGE_WORTH
    assert sorted(c for c in calls(api) if c != "list") == workspace[4990:]
    assert {r["processing_status"] for r in results.values() if isinstance(r, dict)} == {
        "in_progress",
        "ended",
    }
    assert len(results) == len(wanted) and not failed


async def test_a_batch_the_list_does_not_hold_is_read_alone_and_a_404_is_fatal_for_it() -> None:
    workspace = ids(30)
    api = FakeAPI().route("GET", BATCHES_PATH, listing(workspace)).script("msgbatch_gone", 404)
    results, _failed = await sweep_once(service_for(api), [*workspace, "msgbatch_gone"])
    gone = results["msgbatch_gone"]
    assert isinstance(gone, PollFailure) and gone.kind == "fatal" and gone.reason == "not_found"
    assert calls(api) == ["list", "msgbatch_gone"]


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [(429, "throttled", None), (503, "transient", None), (401, "fatal", "auth")],
)
async def test_a_failed_list_call_fails_the_batches_not_yet_seen(
    status: int, kind: str, reason: str | None
) -> None:
    workspace = ids(1500)
    api = FakeAPI().route("GET", BATCHES_PATH, listing(workspace), error_response(status))
    results, failed = await sweep_once(service_for(api), workspace)
    assert failed
    assert all(isinstance(results[i], dict) for i in workspace[:1000])  # the first page counted
    unseen = [results[i] for i in workspace[1000:]]
    assert all(isinstance(r, PollFailure) and (r.kind, r.reason) == (kind, reason) for r in unseen)
    assert calls(api) == ["list", "list"]


async def test_a_list_call_refused_as_a_bad_request_falls_back_to_retrieving() -> None:
    api = FakeAPI().route("GET", BATCHES_PATH, error_response(400, "no listing behind this gateway"))
    for batch_id in ids(3):
        api.script(batch_id, batch_json(batch_id, "ended"))
    results, failed = await sweep_once(service_for(api), ids(3))
    assert calls(api) == ["list", *ids(3)] and not failed
    assert all(isinstance(r, dict) and r["processing_status"] == "ended" for r in results.values())


async def test_the_sweep_serves_waits_only_once_enough_batches_joined() -> None:
    sweep = ListSweep(poll_interval=30)
    sweep.join(ids(SWEEP_MIN - 1))
    assert not sweep.active
    sweep.join(["msgbatch_one_more"])
    assert sweep.active
    sweep.leave(["msgbatch_one_more"])
    assert not sweep.active


async def test_group_waits_on_one_loop_share_rounds_and_each_gets_its_own_event() -> None:
    """150 waits of one batch each: one list page a round serves them all, no retrieve is sent, and each
    wait ends with its own batch when that batch has ended."""
    workspace = ids(150)
    rounds = [0]

    def answer(request: httpx.Request) -> dict[str, Any]:
        rounds[0] += 1
        status = "ended" if rounds[0] >= 3 else "in_progress"
        return listing(workspace, status)(request)

    api = FakeAPI().route("GET", BATCHES_PATH, answer)
    service = service_for(api)
    sweep = ListSweep(poll_interval=0.01)
    sweep.join(workspace)  # as if they had joined before: from the first poll on, the sweep serves them
    waits = [
        GroupWait([batch_id], poll_interval=0.01, deadline=None, max_poll_errors=3, log=_Quiet())
        for batch_id in workspace
    ]
    events = await asyncio.gather(*(wait.wait(service, sweep) for wait in waits))
    assert [event["status"] for event in events] == ["success"] * 150
    assert [event["batch_ids"] for event in events] == [[batch_id] for batch_id in workspace]
    assert set(calls(api)) == {"list"} and len(api.requests) == 3
    sweep.leave(workspace)
    assert not sweep.active


async def test_a_wait_on_the_sweep_still_times_out_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = ids(SWEEP_MIN)
    api = FakeAPI().route("GET", BATCHES_PATH, listing(workspace))
    service = service_for(api)
    sweep = ListSweep(poll_interval=3600)  # the second round would come in an hour
    sweep.join(workspace)
    loop_time = asyncio.get_running_loop().time
    monkeypatch.setattr(waiting_module, "_now", lambda: 1_000.0 + loop_time())
    deadline = 1_000.0 + loop_time() + 0.2
    waits = [
        GroupWait([batch_id], poll_interval=3600, deadline=deadline, max_poll_errors=3, log=_Quiet())
        for batch_id in workspace
    ]
    events = await asyncio.gather(*(wait.wait(service, sweep) for wait in waits))
    sweep.leave(workspace)
    assert {event["status"] for event in events} == {"timeout"}
    assert calls(api) == ["list"]


async def test_a_sweep_that_breaks_fails_its_waiters_reads_instead_of_leaving_them_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug in a round")

    monkeypatch.setattr(sweep_module, "sweep_once", broken)
    sweep = ListSweep(poll_interval=0.01)
    workspace = ids(SWEEP_MIN)
    sweep.join(workspace)
    waits = [
        GroupWait([batch_id], poll_interval=0.01, deadline=None, max_poll_errors=2, log=_Quiet())
        for batch_id in workspace
    ]
    service = service_for(FakeAPI())
    events = await asyncio.wait_for(asyncio.gather(*(w.wait(service, sweep) for w in waits)), timeout=10)
    sweep.leave(workspace)
    assert {(event["status"], event["reason"]) for event in events} == {("error", "errors_exhausted")}
    assert "a bug in a round" in events[0]["message"]


class _Quiet:
    def debug(self, msg: str, /, *args: Any) -> None:
        pass

    info = warning = debug


async def test_a_batch_read_unchanged_is_answered_with_the_object_already_held() -> None:
    workspace = ids(20)
    rounds = [0]

    def answer(request: httpx.Request) -> dict[str, Any]:
        rounds[0] += 1  # the last batch ends in the second round; the others stay as they were
        page: dict[str, Any] = listing(workspace)(request)
        if rounds[0] == 2:
            page["data"][-1] = batch_json(workspace[-1], "ended")
        return page

    service = service_for(FakeAPI().route("GET", BATCHES_PATH, answer))
    known: dict[str, BatchSnapshot] = {}
    first, _ = await sweep_once(service, workspace, known)
    second, _ = await sweep_once(service, workspace, known)
    assert all(second[i] is first[i] for i in workspace[:-1])
    changed = second[workspace[-1]]
    assert isinstance(changed, dict) and changed["processing_status"] == "ended"
    assert changed is not first[workspace[-1]] and known[workspace[-1]] is changed


async def test_rounds_start_one_poll_interval_apart_however_long_a_round_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1_000.0]
    slept: list[float] = []
    asleep = asyncio.Event()

    async def round_of_many_pages(*args: Any) -> tuple[RoundResults, bool]:
        clock[0] += 25.0
        return {}, False

    async def sleep(delay: float) -> None:
        slept.append(delay)
        asleep.set()
        await asyncio.Event().wait()  # no second round: the test ends here

    monkeypatch.setattr(sweep_module, "sweep_once", round_of_many_pages)
    monkeypatch.setattr(sweep_module, "_clock", lambda: clock[0])
    monkeypatch.setattr(sweep_module, "_sleep", sleep)
    monkeypatch.setattr(sweep_module, "poll_delay", lambda interval, streak: interval)
    sweep = ListSweep(poll_interval=60)
    sweep.join(ids(SWEEP_MIN))
    await sweep.next_round(service_for(FakeAPI()))
    await asyncio.wait_for(asleep.wait(), timeout=10)
    sweep.leave(ids(SWEEP_MIN))
    assert slept == [35.0]
