"""Resubmit rounds in real Airflow (dag.test: metadata DB, task runner, deferral) against an emulator that
fails ~10% of requests transiently (errored) and ~5% by expiry on their first submission."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_batches.emulator.transient import draw

pytestmark = pytest.mark.e2e

ERRORED, EXPIRED, SEED = 0.10, 0.05, 11


@pytest.fixture
def flaky_emulator() -> Iterator[Any]:
    from airflow_batches.emulator.testing import run_emulator

    with run_emulator(
        processing_seconds=1,
        transient_errored_rate=ERRORED,
        transient_expired_rate=EXPIRED,
        transient_seed=SEED,
        transient_error_type="overloaded_error",
    ) as running:
        yield running


def first_failures(custom_ids: list[str]) -> dict[str, str]:
    """What the emulator makes of each request on its first submission, when it fails."""
    out = {}
    for custom_id in custom_ids:
        value = draw(SEED, custom_id)
        if value < ERRORED:
            out[custom_id] = "errored"
        elif value < ERRORED + EXPIRED:
            out[custom_id] = "expired"
    return out


def results_of(emulator: Any, batch_id: str) -> dict[str, str]:
    response = httpx.get(
        f"{emulator.base_url}/v1/messages/batches/{batch_id}/results", headers=emulator.headers, timeout=30
    )
    assert response.status_code == 200, response.text
    return {
        line["custom_id"]: line["result"]["type"] for line in map(json.loads, response.content.splitlines())
    }


def round_results(emulator: Any, record: dict[str, Any]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for batch_id in record["batch_ids"]:
        merged.update(results_of(emulator, batch_id))
    return merged


def check_rounds(emulator: Any, group: dict[str, Any], custom_ids: list[str], never: set[str]) -> None:
    """Round 1 sends everything, round 2 exactly the transient failures, then nothing is left to resend."""
    failures = first_failures(custom_ids)
    assert 0 < len(failures) < len(custom_ids) // 3, "the draw should fail some but not most requests"
    first, second = group["rounds"]
    assert first["resubmitted"] == 0 and sum(first["request_counts"]) == len(custom_ids)
    assert round_results(emulator, first) == {
        c: failures.get(c, "errored" if c in never else "succeeded") for c in custom_ids
    }
    resent = round_results(emulator, second)
    assert sorted(resent) == sorted(failures), "exactly the transient failures are sent again, nothing else"
    assert set(resent.values()) == {"succeeded"}
    assert second["resubmitted"] == len(failures)
    assert second["replaces"] == {
        "errored": sum(1 for t in failures.values() if t == "errored"),
        "expired": sum(1 for t in failures.values() if t == "expired"),
    }
    assert group["batch_ids"] == first["batch_ids"] + second["batch_ids"]
    assert group["request_counts"] == first["request_counts"] + second["request_counts"]
    assert group["total_requests"] == len(custom_ids)
    assert group["counts"] == {
        "processing": 0,
        "succeeded": len(custom_ids) - len(never),
        "errored": len(never),
        "canceled": 0,
        "expired": 0,
    }


def test_every_source_resubmits_the_transient_failures_once_and_lands_one_line_per_request(
    run_dag: Any, flaky_emulator: Any, tmp_path: Path
) -> None:
    from_file = [f"file-{n}" for n in range(40)]
    lines = []
    for n, custom_id in enumerate(from_file):
        params = {
            "model": "claude-haiku-4-5",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": f"f {n}"}],
        }
        lines.append(json.dumps({"custom_id": custom_id, "params": params}) + "\n")
    (tmp_path / "requests.jsonl").write_text("".join(lines))

    result = run_dag("e2e_resubmit", flaky_emulator)
    assert result.state == "success", result.tasks
    assert result.tasks["from_file"] == ("success", 1)
    assert result.tasks["from_xcom"] == ("success", 1)
    file_group = result.xcom["from_file"]
    check_rounds(flaky_emulator, file_group, from_file, never=set())
    assert file_group["rounds"][0]["request_counts"] == [15, 15, 10]
    xcom_group = result.xcom["from_xcom"]
    check_rounds(flaky_emulator, xcom_group, [f"xcom-{n}" for n in range(30)], never={"xcom-0", "xcom-1"})
    created = len(file_group["batch_ids"]) + len(xcom_group["batch_ids"])
    assert flaky_emulator.stats()["batches_created"] == created, "one batch per part of each round, no more"

    # Landed merged: one line per original request, byte for byte its final round's line.
    file_lines = landed(tmp_path / "file")
    assert file_lines == final_lines(flaky_emulator, file_group)
    assert sorted(file_lines) == sorted(from_file)
    assert {json.loads(line)["result"]["type"] for line in file_lines.values()} == {"succeeded"}
    assert result.xcom["land_file"]["counts"] == {"succeeded": 40, "errored": 0, "canceled": 0, "expired": 0}
    assert [r["resubmitted"] for r in result.xcom["land_file"]["rounds"]] == [
        0,
        file_group["rounds"][1]["resubmitted"],
    ]
    xcom_lines = landed(tmp_path / "xcom")
    assert xcom_lines == final_lines(flaky_emulator, xcom_group) and len(xcom_lines) == 30
    assert sorted(p.name for p in (tmp_path / "xcom").rglob("*.jsonl")) == [
        "errored.jsonl",
        "succeeded.jsonl",
    ]


def test_a_retry_after_a_crash_in_round_two_reattaches_to_every_round(
    run_dag: Any, flaky_emulator: Any
) -> None:
    result = run_dag("e2e_resubmit_crash", flaky_emulator)
    assert result.tasks["create"] == ("success", 2), result.tasks
    group = result.xcom["create"]
    custom_ids = [f"crash-{n}" for n in range(40)]
    check_rounds(flaky_emulator, group, custom_ids, never=set())
    assert flaky_emulator.stats()["batches_created"] == len(group["batch_ids"]), "the retry created nothing"


def landed(folder: Path) -> dict[str, bytes]:
    lines = [
        line
        for path in sorted(folder.rglob("*.jsonl"))
        for line in path.read_bytes().splitlines(keepends=True)
    ]
    by_id = {json.loads(line)["custom_id"]: line for line in lines}
    assert len(by_id) == len(lines), "one line per request, none twice"
    return by_id


def final_lines(emulator: Any, group: dict[str, Any]) -> dict[str, bytes]:
    """Each request's line in the last round that sent it, as the API sends it."""
    final: dict[str, bytes] = {}
    for record in group["rounds"]:
        for batch_id in record["batch_ids"]:
            url = f"{emulator.base_url}/v1/messages/batches/{batch_id}/results"
            body = httpx.get(url, headers=emulator.headers, timeout=30).content
            final.update({json.loads(line)["custom_id"]: line for line in body.splitlines(keepends=True)})
    return final
