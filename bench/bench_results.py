"""Benchmark: landing batch results from the emulator into file:// and s3://, against plain baselines.

Prints one table: for each case and destination, each method's median over ``--repeat`` runs (MB/s, the ratio
against the baseline of that destination, how many times faster than the official SDK the same batches land (a
ratio of times: the SDK writes other bytes, more of them for text outside ASCII), and the growth of resident
memory during the run, the kernel's high-water mark); no assertions. Every run is a fresh process whose
imports, connection lookup and client setup happen before the clock starts, and each starts after an
``os.sync()``, so the kernel's writeback of an earlier run's file does not fall into its time, and each
method writing into ``file://`` starts right after freeing as much page cache as it will fill (see
``free_page_cache``). The methods take turns run by run, so load from other processes falls on all of them
alike.

Cases (``--cases``): ``big`` is 20,000 results lines of about 10 KB (211 MB), ``small`` 200,000 lines of about
1 KB (two batches of 100,000, the API's limit), and ``cjk``, not run unless named, the ``small`` case with
replies in Japanese (the same bytes per line, nearly all of them outside ASCII, so the landing checks each
chunk's lines as UTF-8, a pass that ASCII spares). All are served by the emulator on loopback, which renders
an ended batch's results once and sends later reads from that file at close to the wire's speed; one untimed
read of each batch renders them before the runs, so curl shows the wire and not the rendering.

Methods:
  curl          ``curl -o`` of each batch's results URL into a file: the wire's limit here (file baseline)
  sdk           the official SDK's ``results()`` iterated, each result written as ``json.dumps`` of its
                ``model_dump()`` (the official provider's pattern; not byte-exact)
  land_results  this package, ``BatchHook().land_results(ids, destination)``: checked, byte-exact, atomic
  s3fs_put      s3fs ``put`` of the file curl downloaded, to the same moto server (s3 baseline)

Usage: .venv/bin/python bench/bench_results.py [--cases big,small,cjk] [--destinations file,s3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MAX_REQUESTS_PER_BATCH = 100_000
# name: (label, results lines, the text each reply repeats, how many times)
CASES = {
    "big": ("20,000 x 10 KB", 20_000, "x", 10_000),
    "small": ("200,000 x 1 KB", 200_000, "x", 600),
    "cjk": ("200,000 x 1 KB CJK", 200_000, "漢字かな交じり文。", 22),  # 27 bytes of UTF-8 a time
}
BASELINE = {"file": "curl", "s3": "s3fs_put"}


class PeakMemory:
    """The peak resident memory of this process above its level at start.

    The kernel keeps the high-water mark (``VmHWM``); writing ``5`` to ``/proc/self/clear_refs`` resets it to
    the current level, so the peak of the run alone is read at the end, spikes included, without a sampling
    thread (one that wakes every few ms takes the GIL from the method being measured).
    """

    def __init__(self) -> None:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        self._start = _status_mb("VmRSS")

    def growth(self) -> float:
        return _status_mb("VmHWM") - self._start


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1000
    raise LookupError(field)


def free_page_cache(directory: str, nbytes: int) -> None:
    """Write ``nbytes`` into a file in ``directory`` and delete it: run just before a clock starts, so the
    method timed writes into pages the kernel freed a moment before, as every other method does.

    The development VM's kernel reports free memory to its host (``page_reporting`` on its command line),
    which takes it back: the first write to a page that has been free for more than about 2 seconds waits
    for the host to back it again, about 4 µs a page (0.2-0.25 s for 211 MB of page cache on 2026-12-02,
    where the same copy into pages just freed took 0.03 s). Without this, whichever method started soonest
    after the last files were deleted (curl, within milliseconds) got the pages the host still backed, and
    a fresh Python process, which imports for 2-3 seconds first, got the others.
    """
    fd, name = tempfile.mkstemp(dir=directory)
    try:
        block = bytes(1 << 20)
        for _ in range(-(-nbytes // len(block))):
            os.write(fd, block)
    finally:
        os.close(fd)
        os.unlink(name)


def worker(method: str, spec_json: str) -> dict[str, Any]:
    """Run one measurement in this (fresh) process."""
    spec: dict[str, Any] = json.loads(spec_json)
    batch_ids: list[str] = spec["batch_ids"]
    destination: str = spec["destination"]
    os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
        {"conn_type": "anthropic", "host": spec["base_url"], "password": spec["api_key"]}
    )
    if method == "land_results":
        from airflow.sdk import ObjectStoragePath

        import airflow_batches.results  # noqa: F401 (land_results imports it on first use: an import)
        from airflow_batches.hooks import BatchHook

        hook = BatchHook()
        hook.retrieve(batch_ids[0])  # connection lookup and client imports before the clock
        options: dict[str, Any] = {"progress_interval": 3600}
        if destination.startswith("s3://"):
            options["destination_conn_id"] = "aws_default"
        # Attach the filesystem (Airflow's provider discovery; for s3 also botocore's service model): ``fs``
        # of a path below the destination, as the landing asks for it (``exists()`` alone does not attach).
        base = ObjectStoragePath(destination, conn_id=options.get("destination_conn_id"))
        base.exists()
        _ = (base / "attach").fs
        if destination.startswith("file://"):
            free_page_cache(destination.removeprefix("file://"), spec["bytes"])
        memory = PeakMemory()
        start = time.perf_counter()
        manifest = hook.land_results(batch_ids, destination, **options)
        seconds = time.perf_counter() - start
        size = manifest["bytes"]
    elif method == "sdk":
        import anthropic

        client = anthropic.Anthropic(api_key=spec["api_key"], base_url=spec["base_url"])
        client.messages.batches.retrieve(batch_ids[0])
        free_page_cache(destination.removeprefix("file://"), spec["bytes"])
        memory = PeakMemory()
        start = time.perf_counter()
        size = 0
        for batch_id in batch_ids:
            target = Path(destination.removeprefix("file://")) / f"{batch_id}.jsonl"
            with target.open("w") as out:
                for result in client.messages.batches.results(batch_id):
                    out.write(json.dumps(result.model_dump()) + "\n")
            size += target.stat().st_size
        seconds = time.perf_counter() - start
    elif method == "s3fs_put":
        import s3fs

        fs = s3fs.S3FileSystem(
            key="testing", secret="testing", client_kwargs={"endpoint_url": spec["endpoint"]}
        )
        fs.ls("bench")
        memory = PeakMemory()
        start = time.perf_counter()
        size = 0
        for local in spec["files"]:
            fs.put(local, f"{destination.rstrip('/')}/{Path(local).name}")
            size += Path(local).stat().st_size
        seconds = time.perf_counter() - start
    else:
        raise ValueError(method)
    return {"seconds": seconds, "bytes": size, "rss_growth_mb": memory.growth()}


def curl(
    batch_ids: list[str], base_url: str, api_key: str, out_dir: str, free_first: int = 0
) -> dict[str, Any]:
    """``curl -o`` of each batch's results, one after the other (the same requests the landing makes);
    ``out_dir`` ``os.devnull`` reads and drops them. ``free_first``: the bytes it will write, whose page
    cache is freed first (:func:`free_page_cache`)."""
    _sync()
    if out_dir != os.devnull:
        free_page_cache(out_dir, free_first)
    size = 0
    start = time.perf_counter()
    for batch_id in batch_ids:
        target = Path(os.devnull) if out_dir == os.devnull else Path(out_dir) / f"{batch_id}.jsonl"
        done = subprocess.run(
            [
                "curl", "-sSf", "-o", str(target), "-w", "%{size_download}",
                "-H", f"x-api-key: {api_key}", "-H", "anthropic-version: 2023-06-01",
                f"{base_url}/v1/messages/batches/{batch_id}/results",
            ],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        size += int(done.stdout)
    return {"seconds": time.perf_counter() - start, "bytes": size, "rss_growth_mb": None}


def _sync() -> None:
    os.sync()  # the writeback of what earlier runs wrote is not the next run's to pay


def in_process(method: str, spec: dict[str, Any]) -> dict[str, Any]:
    _sync()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", method, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def create_batches(hook: Any, count: int, text: str) -> list[str]:
    """``count`` requests echoing ``text`` (after their number), in as many batches as the API's limit
    needs."""
    from airflow_batches.emulator.testing import echo_request

    return [
        hook.create(
            echo_request(f"r{i}", f"{i} {text}")
            for i in range(first, min(count, first + MAX_REQUESTS_PER_BATCH))
        ).id
        for first in range(0, count, MAX_REQUESTS_PER_BATCH)
    ]


def run_case(
    batch_ids: list[str],
    size: int,
    destinations: list[str],
    repeat: int,
    emulator: Any,
    s3_endpoint: str | None,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """All runs of one case (``size`` bytes of results), the methods taking turns;
    ``{(destination, method): [run, ...]}``."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    base = {"batch_ids": batch_ids, "bytes": size, "base_url": emulator.base_url, "api_key": emulator.api_key}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-results-") as out_dir:
            curl_dir, sdk_dir, ours_dir = (Path(out_dir) / name for name in ("curl", "sdk", "ours"))
            for directory in (curl_dir, sdk_dir, ours_dir):
                directory.mkdir()
            runs.setdefault(("file", "curl"), []).append(
                curl(batch_ids, emulator.base_url, emulator.api_key, str(curl_dir), size)
            )
            if "file" in destinations:
                for method, directory in (("sdk", sdk_dir), ("land_results", ours_dir)):
                    spec = base | {"destination": f"file://{directory}/"}
                    runs.setdefault(("file", method), []).append(in_process(method, spec))
            if "s3" in destinations and s3_endpoint is not None:
                prefix = f"s3://bench/{Path(out_dir).name}"
                files = [str(curl_dir / f"{batch_id}.jsonl") for batch_id in batch_ids]
                put_spec = base | {"destination": f"{prefix}/put/", "files": files, "endpoint": s3_endpoint}
                runs.setdefault(("s3", "s3fs_put"), []).append(in_process("s3fs_put", put_spec))
                ours_spec = base | {"destination": f"{prefix}/ours/"}
                runs.setdefault(("s3", "land_results"), []).append(in_process("land_results", ours_spec))
    if "file" not in destinations:
        del runs[("file", "curl")]
    return runs


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = statistics.median(r["seconds"] for r in runs)
    growth = [r["rss_growth_mb"] for r in runs if r["rss_growth_mb"] is not None]
    return {"seconds": seconds, "bytes": runs[0]["bytes"], "rss_growth_mb": max(growth) if growth else None}


def print_table(results: list[tuple[str, str, str, dict[str, Any]]], repeat: int) -> None:
    print(
        f"\nresults landing, emulator on loopback, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node() or 'host'}: {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; median of {repeat}"
    )
    print(
        f"{'case':<18} {'to':<4} {'method':<13} {'MB':>6} {'s':>6} {'MB/s':>6} "
        f"{'vs base':>8} {'vs SDK':>7} {'peak RSS +MB':>12}"
    )
    speed = {(case, dest, method): r["bytes"] / r["seconds"] / 1e6 for case, dest, method, r in results}
    seconds = {(case, dest, method): r["seconds"] for case, dest, method, r in results}
    for case, dest, method, r in results:
        mbps = speed[(case, dest, method)]
        base = speed.get((case, dest, BASELINE[dest]))
        sdk_seconds = seconds.get((case, "file", "sdk"))
        vs_base = f"{mbps / base:.2f}x" if base else "-"
        # The SDK path writes files only: an s3 landing is not set against it.
        vs_sdk = (
            f"{sdk_seconds / r['seconds']:.1f}x"
            if sdk_seconds and method == "land_results" and dest == "file"
            else "-"
        )
        growth = "-" if r["rss_growth_mb"] is None else f"{r['rss_growth_mb']:.0f}"
        print(
            f"{case:<18} {dest:<4} {method:<13} {r['bytes'] / 1e6:>6.0f} {r['seconds']:>6.2f} {mbps:>6.0f} "
            f"{vs_base:>8} {vs_sdk:>7} {growth:>12}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases",
        default="big,small",
        help="big (20,000 x 10 KB), small (200,000 x 1 KB) and/or cjk (small in Japanese)",
    )
    parser.add_argument("--destinations", default="file,s3", help="file and/or s3 (moto on loopback)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the median is shown")
    args = parser.parse_args()

    from airflow_batches.emulator.testing import run_emulator
    from airflow_batches.hooks import BatchHook

    sys.path.insert(0, str(REPO / "tests"))
    from s3 import aws_connection, run_moto_s3

    destinations = args.destinations.split(",")
    results: list[tuple[str, str, str, dict[str, Any]]] = []
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(run_emulator(processing_seconds=0))
        os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
            {"conn_type": "anthropic", "host": emulator.base_url, "password": emulator.api_key}
        )
        s3_endpoint = None
        if "s3" in destinations:
            import boto3

            s3_endpoint = stack.enter_context(run_moto_s3())
            os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(s3_endpoint)
            boto3.client(
                "s3",
                endpoint_url=s3_endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ).create_bucket(Bucket="bench")
        hook = BatchHook()
        for name in args.cases.split(","):
            label, count, filler, times = CASES[name]
            batch_ids = create_batches(hook, count, filler * times)
            # One untimed read renders them; it also gives their size.
            size = curl(batch_ids, emulator.base_url, emulator.api_key, os.devnull)["bytes"]
            runs = run_case(batch_ids, size, destinations, args.repeat, emulator, s3_endpoint)
            results.extend((label, dest, method, median_run(r)) for (dest, method), r in runs.items())
            for batch_id in batch_ids:
                hook.delete(batch_id)
    print_table(results, args.repeat)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3])))
    else:
        main()
