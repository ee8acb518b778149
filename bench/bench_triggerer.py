"""Benchmark: N deferrable waits on one event loop, as one Airflow triggerer runs them.

For each size (N batches, poll interval) and each implementation, N batches of one request are created in
the emulator (its own process, answering every API call after ``--latency-ms``), timed to end spread over one
poll interval, starting 1.2 intervals after the waits start. Then a child process runs N triggers on one
event loop the way ``TriggerRunner`` does (each built from its serialized kwargs, its ``trigger_id`` set,
created one per loop iteration, a greenback portal each, ``async for event in trigger.run()``, then
``cleanup()``), with a ticker every 50 ms measuring how late the loop wakes it (the triggerer's own watchdog
warns at 200 ms). Airflow's
logging (INFO, to stdout) goes into a file, as a triggerer's goes to its log files.

Printed per run: detection lag (event time minus the batch's ``ended_at``) p50/p95/max, missed or wrong
events, loop lag p99/max and ``busy`` (the most CPU time the process used within one tick: a tick that is
late while the process used little CPU was waiting for a core, i.e. machine load, not a blocked loop), CPU
seconds per 1,000 batch polls (a batch read once by its trigger, whether by a retrieve or from a list page)
and in cores over the run, API calls that read batches (retrieves and list pages) per batch poll, log lines
per second, peak RSS of the child. No assertions: figures only.

Implementations:
  ours          ``BatchTrigger`` (this package: shared httpx pool behind its admission limiter, and the shared
                list sweep once 100 batches wait on the loop)
  ours-httpx2   the same trigger and client with one pool of ``httpx2`` (pydantic's fork of httpx used by the
                official SDK 2.x) of as many connections, under the same limiter
  official      ``AnthropicBatchTrigger`` of apache-airflow-providers-anthropic (the SDK in a thread per poll)
  floor         a trigger that only sleeps until its batch's planned end, run the same way: what the
                triggerer's own machinery (task, greenback portal, logger) costs per trigger, with no I/O

Usage: .venv/bin/python bench/bench_triggerer.py [--sizes 1000:5,10000:60] [--impls ours,official]
       [--repeat 1] [--latency-ms 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TICK = 0.05
IMPLS = ("ours", "ours-httpx2", "official", "floor")


# --- child: N triggers on one loop ---------------------------------------------------------------------


def floor_trigger_class() -> Any:
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    class SleepTrigger(BaseTrigger):
        """The least a trigger can be: sleep until the batch's planned end, then fire. No I/O."""

        def __init__(self, batch_id: str, until: float) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.batch_id, self.until = batch_id, until

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return ("bench_triggerer.SleepTrigger", {"batch_id": self.batch_id, "until": self.until})

        async def run(self) -> Any:
            await asyncio.sleep(max(0.0, self.until - time.time()))
            yield TriggerEvent({"batch_id": self.batch_id})  # type: ignore[no-untyped-call]

    return SleepTrigger


def make_trigger(impl: str, batch_id: str, interval: float, planned_end: float) -> Any:
    """Build the trigger, then rebuild it from its serialized form as the triggerer does."""
    if impl == "floor":
        trigger: Any = floor_trigger_class()(batch_id, planned_end)
    elif impl == "official":
        from airflow.providers.anthropic.triggers.batch import AnthropicBatchTrigger

        trigger = AnthropicBatchTrigger(
            conn_id="anthropic_default",
            batch_id=batch_id,
            poll_interval=interval,
            end_time=time.time() + 86400,
        )
    else:
        from airflow_batches.triggers import BatchTrigger

        trigger = BatchTrigger(batch_id, poll_interval=interval)
    _classpath, kwargs = trigger.serialize()
    return type(trigger)(**kwargs)


def count_polls(impl: str) -> list[int]:
    """Count batch polls (one per batch each time a trigger reads it, however it reads), by wrapping the
    call each trigger makes per poll."""
    polls = [0]
    if impl == "official":
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        original_get = AnthropicHook.get_batch

        def counted_get(self: Any, *args: Any, **kwargs: Any) -> Any:
            polls[0] += 1
            return original_get(self, *args, **kwargs)

        AnthropicHook.get_batch = counted_get  # type: ignore[method-assign]
        return polls
    from airflow_batches.waiting import GroupWait

    original_read = GroupWait._read

    async def counted_read(self: Any, service: Any, sweep: Any, pending: list[str]) -> Any:
        results = await original_read(self, service, sweep, pending)
        polls[0] += sum(result is not None for result in results)
        return results

    GroupWait._read = counted_read  # type: ignore[method-assign]
    return polls


def use_httpx2_pool() -> None:
    import httpx

    from airflow_batches.api.admission import AdmissionTransport
    from airflow_batches.hooks import batch as hook_module
    from airflow_batches.hooks import client_pool

    sys.path.insert(0, str(Path(__file__).parent))
    from httpx2_pool import Httpx2Pool

    clients: dict[str, httpx.AsyncClient] = {}

    def shared_client(settings: Any) -> httpx.AsyncClient:
        key = settings.pool_key()
        if key not in clients:
            # httpx2's pool has no per-request scan of its connections: one pool of all of them.
            size = client_pool.POOLS * client_pool.POOL_SIZE
            transport = AdmissionTransport(Httpx2Pool, pools=1, pool_size=size)
            clients[key] = httpx.AsyncClient(transport=transport, follow_redirects=False)
        return clients[key]

    hook_module.shared_client = shared_client  # type: ignore[attr-defined]


async def warm_up(impl: str, batch_id: str) -> None:
    """One read through the implementation's own path: a triggerer that has run a trigger before has done
    these one-off imports and setups (connection lookup code, client, models) already."""
    if impl == "official":
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        await asyncio.to_thread(AnthropicHook(conn_id="anthropic_default").get_batch, batch_id)
    else:
        from airflow_batches.hooks import BatchHook

        await (await BatchHook().aget_service()).retrieve(batch_id)


async def run_triggers(
    impl: str, ids: list[str], ends: list[float], interval: float, stop_at: float
) -> dict[str, Any]:
    import greenback

    if impl == "ours-httpx2":
        use_httpx2_pool()
    make_trigger(impl, ids[0], interval, ends[0])  # the trigger's imports: once per triggerer, not measured
    await warm_up(impl, ids[0])
    polls = count_polls(impl)
    lags: list[float] = []
    busy: list[float] = []
    events: dict[str, list[Any]] = {}
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start, cpu = time.monotonic(), time.process_time()
            await asyncio.sleep(TICK)
            lags.append(time.monotonic() - start - TICK)
            # CPU this process used meanwhile: a late tick with little of it waited for a core (load).
            busy.append(time.process_time() - cpu)

    async def run_trigger(batch_id: str, trigger: Any) -> None:
        await greenback.ensure_portal()
        try:
            async for event in trigger.run():
                events.setdefault(batch_id, []).append([time.time(), checked_fields(event.payload)])
                if len(events) == len(ids):
                    done.set()
        finally:
            await trigger.cleanup()

    tick = asyncio.create_task(ticker())
    cpu0 = _cpu()
    wall0 = time.monotonic()
    tasks = []
    for number, (batch_id, planned_end) in enumerate(zip(ids, ends, strict=True)):
        await asyncio.sleep(0)  # TriggerRunner.create_triggers: one per loop iteration
        trigger = make_trigger(impl, batch_id, interval, planned_end)
        trigger.trigger_id = number + 1  # as the triggerer sets it (a trigger can tell it runs there)
        tasks.append(asyncio.create_task(run_trigger(batch_id, trigger)))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=max(1.0, stop_at - time.time()))
    cpu = _cpu() - cpu0
    wall = time.monotonic() - wall0
    done.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, tick, return_exceptions=True)
    return {
        "events": events,
        "lags": lags,
        "busy": busy,
        "cpu": cpu,
        "wall": wall,
        "polls": polls[0],
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def checked_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """What :func:`check_event` reads of an event: the harness must not keep whole payloads (a triggerer
    hands them to its database and drops them), or its memory would count against the trigger's."""
    counts = payload.get("counts") or payload.get("request_counts") or {}
    kept: dict[str, Any] = {k: payload[k] for k in ("batch_id", "batch_ids", "status") if k in payload}
    return {**kept, "succeeded": counts.get("succeeded")}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(args: argparse.Namespace) -> None:
    planned = json.loads(Path(args.ids).read_text())
    result = asyncio.run(
        run_triggers(args.impl, planned["ids"], planned["ends"], args.interval, args.stop_at)
    )
    Path(args.out).write_text(json.dumps(result))


# --- parent: emulator, batches, figures -----------------------------------------------------------------


async def create_batches(
    emulator: Any, count: int, first_end: float, interval: float
) -> tuple[list[str], list[float]]:
    """``count`` one-request batches ending spread over [first_end, first_end + interval] (50 steps)."""
    import httpx

    from airflow_batches.emulator.testing import echo_request

    steps = 50
    ids: list[str] = []
    ends: list[float] = []
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=emulator.headers, timeout=60) as client:
        for step in range(steps):
            processing = first_end + interval * step / steps - time.time()
            if processing < 1:
                raise SystemExit("creating the batches took too long for the planned end times")
            emulator.configure(processing_seconds=processing)
            chunk = range(step * count // steps, (step + 1) * count // steps)

            async def create(i: int) -> str:
                async with limit:
                    body = {"requests": [echo_request(f"req-{i}", "hi")]}
                    response = await client.post("/v1/messages/batches", json=body)
                    response.raise_for_status()
                    batch_id: str = response.json()["id"]
                    return batch_id

            ids += await asyncio.gather(*(create(i) for i in chunk))
            ends += [first_end + interval * step / steps] * len(chunk)
    return ids, ends


async def ended_at(emulator: Any) -> dict[str, float]:
    import httpx

    found: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=emulator.headers, timeout=60) as client:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if after:
                params["after_id"] = after
            page = (await client.get("/v1/messages/batches", params=params)).json()
            for batch in page["data"]:
                if batch["ended_at"]:
                    found[batch["id"]] = datetime.fromisoformat(batch["ended_at"]).timestamp()
            if not page["has_more"]:
                return found
            after = page["last_id"]


def api_reads(emulator: Any) -> int:
    """API calls that read batches: retrieves and list pages."""
    counted = emulator.stats()["requests"]
    return int(counted.get("retrieve", 0) + counted.get("list", 0))


def check_event(impl: str, batch_id: str, payload: dict[str, Any]) -> bool:
    """Whether an event (its :func:`checked_fields`) is the right one for ``batch_id``."""
    if impl == "floor":
        return bool(payload.get("batch_id") == batch_id)
    if impl == "official":
        return bool(payload.get("batch_id") == batch_id and payload.get("status") == "success") and (
            payload["succeeded"] == 1
        )
    return bool(
        payload.get("batch_ids") == [batch_id]
        and payload.get("status") == "success"
        and payload["succeeded"] == 1
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_run(emulator: Any, impl: str, count: int, interval: float, latency_ms: float) -> dict[str, Any]:
    emulator.reset()
    emulator.set_faults(latency_ms=0)
    startup = 6.0 + count * 0.004  # creating the batches, then the child's imports
    first_end = time.time() + startup + 1.2 * interval
    ids, planned_ends = asyncio.run(create_batches(emulator, count, first_end, interval))
    emulator.set_faults(latency_ms=latency_ms)
    before = api_reads(emulator)
    stop_at = first_end + interval + 2.5 * interval + 15
    with tempfile.TemporaryDirectory() as tmp:
        ids_file, out = Path(tmp) / "ids.json", Path(tmp) / "out.json"
        ids_file.write_text(json.dumps({"ids": ids, "ends": planned_ends}))
        env = {
            **os.environ,
            "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
            ),
        }
        command = [sys.executable, __file__, "--child", "--impl", impl, "--ids", str(ids_file)]
        command += ["--interval", str(interval), "--stop-at", str(stop_at), "--out", str(out)]
        # Airflow logs (structlog, INFO) to stdout: into a file, as the triggerer's go to its log files.
        log_file = Path(tmp) / "child.log"
        with log_file.open("wb") as log:
            subprocess.run(command, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
        result: dict[str, Any] = json.loads(out.read_text())
        with log_file.open("rb") as lines:
            result["log_lines"] = sum(1 for _ in lines)
    emulator.set_faults(latency_ms=0)
    requests = api_reads(emulator) - before
    ends = asyncio.run(ended_at(emulator))
    detection, wrong = [], 0
    for batch_id in ids:
        got = result["events"].get(batch_id, [])
        if len(got) != 1 or not check_event(impl, batch_id, got[0][1]) or batch_id not in ends:
            wrong += len(got) != 0
            continue
        detection.append(got[0][0] - ends[batch_id])
    return {
        "impl": impl,
        "count": count,
        "interval": interval,
        "det_p50": percentile(detection, 0.5),
        "det_p95": percentile(detection, 0.95),
        "det_max": max(detection, default=float("nan")),
        "missed": count - len(detection) - wrong,
        "wrong": wrong,
        "lag_p99": percentile(result["lags"], 0.99) * 1000,
        "lag_max": max(result["lags"], default=float("nan")) * 1000,
        "busy_max": max(result["busy"], default=float("nan")) * 1000,
        "cpu_per_1k_polls": result["cpu"] / result["polls"] * 1000 if result["polls"] else float("nan"),
        "cores": result["cpu"] / result["wall"],
        "req_per_poll": requests / result["polls"] if result["polls"] else float("nan"),
        "log_lines_per_s": result["log_lines"] / result["wall"],
        "rss_mb": result["maxrss_mb"],
    }


HEADER = (
    f"{'impl':<12} {'N':>6} {'poll':>5} | {'det p50':>8} {'p95':>7} {'max':>7} {'missed':>6} {'wrong':>5} | "
    f"{'lag p99':>8} {'max':>8} {'busy':>7} | "
    f"{'CPU s/1k':>8} {'cores':>5} {'req/poll':>8} {'log/s':>6} {'RSS MB':>6}"
)


def row(r: dict[str, Any]) -> str:
    return (
        f"{r['impl']:<12} {r['count']:>6} {r['interval']:>4g}s | {r['det_p50']:>7.1f}s {r['det_p95']:>6.1f}s "
        f"{r['det_max']:>6.1f}s {r['missed']:>6} {r['wrong']:>5} | "
        f"{r['lag_p99']:>6.0f}ms {r['lag_max']:>6.0f}ms {r['busy_max']:>5.0f}ms | "
        f"{r['cpu_per_1k_polls']:>8.2f} {r['cores']:>5.2f} "
        f"{r['req_per_poll']:>8.2f} "
        f"{r['log_lines_per_s']:>6.1f} {r['rss_mb']:>6.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000:5,10000:60", help="N:poll_seconds, comma-separated")
    parser.add_argument("--impls", default="ours,ours-httpx2,official")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--stop-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, str(REPO))
    from airflow_batches.emulator.testing import run_emulator

    impls = args.impls.split(",")
    unknown = set(impls) - set(IMPLS)
    if unknown:
        raise SystemExit(f"unknown --impls {sorted(unknown)}; choose from {', '.join(IMPLS)}")
    sizes = [(int(n), float(p)) for n, p in (s.split(":") for s in args.sizes.split(","))]
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(HEADER)
    results = []
    with run_emulator(processing_seconds=3600) as emulator:
        for count, interval in sizes:
            for _ in range(args.repeat):
                for impl in impls:
                    result = one_run(emulator, impl, count, interval, args.latency_ms)
                    results.append(result)
                    load = os.getloadavg()
                    print(f"{row(result)}  (load {load[0]:.2f})", flush=True)
    for count, _interval in sizes:
        for impl in impls:
            mine = [r["cores"] for r in results if (r["impl"], r["count"]) == (impl, count)]
            if len(mine) > 1:
                print(f"{impl} N={count}: cores over {len(mine)} runs, median {statistics.median(mine):.3f}")


if __name__ == "__main__":
    main()
