"""land_results against an in-process API (real BatchServiceAsync over httpx.MockTransport) into file://."""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import logging
from pathlib import Path

import pytest
from results_helpers import BAD_LANDING_ARGUMENTS, FakeAPI, make_lines, result_line

from airflow_batches.api.errors import BatchNotEndedError, ResultsArchivedError, ResultsStreamError
from airflow_batches.batch_ref import new_group
from airflow_batches.errors import (
    DestinationExistsError,
    DestinationWriteError,
    ResultsCheckError,
    ResultsCountMismatchError,
    ResultsWaitTimeoutError,
)
from airflow_batches.operators.resubmit import first_round
from airflow_batches.results import land_results

FAST = {"retry_backoff": 0.0, "poll_interval": 0.01}


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_lands_byte_exact_and_returns_the_manifest(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 5) + make_lines("e", 2, "errored") + [result_line("x", "expired")]
    api.add("msgbatch_one", lines)

    manifest = land_results(api, "msgbatch_one", f"file://{tmp_path}/out/")

    landed = tmp_path / "out" / "msgbatch_one.jsonl"
    body = b"".join(lines)
    assert landed.read_bytes() == body
    assert manifest == {
        "batch_ids": ["msgbatch_one"],
        "destination": f"file://{tmp_path}/out",
        "files": [
            {
                "batch_id": "msgbatch_one",
                "uri": f"file://{landed}",
                "result_type": None,
                "lines": 8,
                "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        ],
        "counts": {"succeeded": 5, "errored": 2, "canceled": 0, "expired": 1},
        "lines": 8,
        "bytes": len(body),
        "usage": {
            "input_tokens": 15,
            "output_tokens": 30,
            "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 0,
        },
        "cost": {
            "usd": None,  # claude-test has no price: named, never counted as free
            "priced_usd": 0.0,
            "unpriced_models": ["claude-test"],
            "by_model": {
                "claude-test": {
                    "usage": {
                        "input_tokens": 15,
                        "output_tokens": 30,
                        "cache_creation_input_tokens": 5,
                        "cache_read_input_tokens": 0,
                    },
                    "usd": None,
                }
            },
            "prices": manifest["cost"]["prices"],
        },
        "duration_seconds": manifest["duration_seconds"],
    }
    assert isinstance(manifest["duration_seconds"], float)
    json.dumps(manifest)  # goes to XCom
    assert files_under(tmp_path) == ["out/msgbatch_one.jsonl"]  # no temporary file left behind


def test_the_manifest_cost_is_usage_times_the_prices_given(api: FakeAPI, tmp_path: Path) -> None:
    api.add("msgbatch_a", make_lines("a", 3))  # 3 tokens in, 6 out, 1 cache write each
    prices = {"claude-test": {"input": 2.0, "output": 10.0, "cache_write": 4.0, "cache_read": 0.5}}

    manifest = land_results(api, "msgbatch_a", f"file://{tmp_path}", prices=prices)

    expected = (9 * 2.0 + 18 * 10.0 + 3 * 4.0) / 1_000_000
    assert manifest["cost"]["usd"] == pytest.approx(expected)
    assert manifest["cost"]["by_model"]["claude-test"]["usd"] == pytest.approx(expected)
    assert manifest["cost"]["unpriced_models"] == []
    assert manifest["cost"]["prices"]["overridden"] == ["claude-test"]


def test_bad_prices_fail_before_anything_is_downloaded(api: FakeAPI, tmp_path: Path) -> None:
    api.add("msgbatch_a", make_lines("a", 1))
    with pytest.raises(ValueError, match=r"prices\['claude-test'\]\['output'\] must be a finite number"):
        land_results(
            api, "msgbatch_a", f"file://{tmp_path}", prices={"claude-test": {"input": 1, "output": -1}}
        )
    assert files_under(tmp_path) == []


def test_accepts_the_create_operator_group_value(api: FakeAPI, tmp_path: Path) -> None:
    api.add("msgbatch_a", make_lines("a", 3))
    api.add("msgbatch_b", make_lines("b", 2, "canceled"))
    group = {"batch_ids": ["msgbatch_a", "msgbatch_b"], "request_counts": [3, 2], "total_requests": 5}

    manifest = land_results(api, group, f"file://{tmp_path}")

    assert manifest["batch_ids"] == ["msgbatch_a", "msgbatch_b"]
    assert [f["uri"] for f in manifest["files"]] == [
        f"file://{tmp_path}/msgbatch_a.jsonl",
        f"file://{tmp_path}/msgbatch_b.jsonl",
    ]
    assert manifest["counts"] == {"succeeded": 3, "errored": 0, "canceled": 2, "expired": 0}
    assert manifest["lines"] == 5
    assert manifest["bytes"] == sum(f["bytes"] for f in manifest["files"])


def test_split_by_type_writes_one_file_per_present_type(api: FakeAPI, tmp_path: Path) -> None:
    ok, bad = make_lines("a", 3), make_lines("e", 2, "errored")
    api.add("msgbatch_s", [ok[0], bad[0], ok[1], bad[1], ok[2]])

    manifest = land_results(api, "msgbatch_s", f"file://{tmp_path}", split_by_type=True)

    assert files_under(tmp_path) == ["msgbatch_s/errored.jsonl", "msgbatch_s/succeeded.jsonl"]
    assert (tmp_path / "msgbatch_s" / "succeeded.jsonl").read_bytes() == b"".join(ok)
    assert (tmp_path / "msgbatch_s" / "errored.jsonl").read_bytes() == b"".join(bad)
    assert {(f["result_type"], f["lines"]) for f in manifest["files"]} == {("succeeded", 3), ("errored", 2)}


def test_gzip_is_deterministic_and_decompresses_to_the_exact_bytes(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 50, text="hello " * 50)
    api.add("msgbatch_z", lines)

    first = land_results(api, "msgbatch_z", f"file://{tmp_path}/one", compression="gzip")
    second = land_results(api, "msgbatch_z", f"file://{tmp_path}/two", compression="gzip")

    stored = (tmp_path / "one" / "msgbatch_z.jsonl.gz").read_bytes()
    assert gzip.decompress(stored) == b"".join(lines)
    assert first["files"][0]["bytes"] == len(stored) < len(b"".join(lines))
    assert first["files"][0]["sha256"] == hashlib.sha256(stored).hexdigest()
    assert second["files"][0]["sha256"] == first["files"][0]["sha256"]


def test_count_mismatch_names_each_type_and_leaves_no_partial(api: FakeAPI, tmp_path: Path) -> None:
    lines = [*make_lines("a", 3), result_line("e", "errored")]
    api.add("msgbatch_m", lines, counts={"succeeded": 2, "errored": 2})

    with pytest.raises(ResultsCountMismatchError) as caught:
        land_results(api, "msgbatch_m", f"file://{tmp_path}", **FAST)

    message = str(caught.value)
    assert "succeeded: expected 2, got 3" in message
    assert "errored: expected 2, got 1" in message
    assert caught.value.expected["succeeded"] == 2 and caught.value.got["succeeded"] == 3
    assert files_under(tmp_path) == []
    # As many lines as expected in total: the content is wrong, fetching again would not help.
    assert api.batches["msgbatch_m"].results_requests == 1


def test_fewer_lines_than_expected_is_fetched_again(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 4)
    batch = api.add("msgbatch_short", lines)
    batch.bodies = [b"".join(lines[:2])]  # a first response cut cleanly at a line boundary

    manifest = land_results(api, "msgbatch_short", f"file://{tmp_path}", **FAST)

    assert batch.results_requests == 2
    assert manifest["lines"] == 4
    assert (tmp_path / "msgbatch_short.jsonl").read_bytes() == b"".join(lines)


def test_duplicate_custom_id_is_named_and_leaves_no_partial(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 3)
    api.add("msgbatch_d", [lines[0], lines[1], lines[0]], counts={"succeeded": 3})

    with pytest.raises(ResultsCheckError, match=r"custom_id 'a-0' appears twice .*line 3"):
        land_results(api, "msgbatch_d", f"file://{tmp_path}", **FAST)

    assert files_under(tmp_path) == []
    assert api.batches["msgbatch_d"].results_requests == 1


def test_a_stream_stopped_early_logs_no_asyncio_error(
    api: FakeAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The failed check stops the stream mid-way: the async generators it leaves must be closed, not
    # destroyed pending (which logs "Task was destroyed but it is pending!" at error level in the task log).
    lines = make_lines("a", 300, text="x" * 2000)
    api.add("msgbatch_early", [*lines[:100], lines[0], *lines[100:]], counts={"succeeded": 301})
    caplog.set_level(logging.ERROR, logger="asyncio")

    with pytest.raises(ResultsCheckError, match="appears twice"):
        land_results(api, "msgbatch_early", f"file://{tmp_path}", chunk_bytes=10_000, **FAST)
    gc.collect()

    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (b"not json\n", "not a valid result"),
        (b'{"custom_id": 5, "result": {"type": "succeeded"}}\n', "custom_id is not a non-empty string"),
        (b'{"custom_id": "q", "result": {"type": "mystery"}}\n', "unknown result type 'mystery'"),
        (b'{"custom_id": "q"}\n', "not a valid result"),
    ],
)
def test_a_line_that_is_not_a_result_fails_with_its_line_number(
    api: FakeAPI, tmp_path: Path, bad: bytes, why: str
) -> None:
    api.add("msgbatch_bad", [*make_lines("a", 2), bad], counts={"succeeded": 3})

    with pytest.raises(ResultsCheckError, match="line 3") as caught:
        land_results(api, "msgbatch_bad", f"file://{tmp_path}", **FAST)

    assert why in str(caught.value)
    assert files_under(tmp_path) == []


def test_cut_stream_is_retried_and_the_file_is_identical(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 20)
    body = b"".join(lines)
    batch = api.add("msgbatch_cut", lines)
    batch.bodies = [body[:1000], body[:5000]]  # two cuts mid-line

    manifest = land_results(api, "msgbatch_cut", f"file://{tmp_path}", max_attempts=3, **FAST)

    assert batch.results_requests == 3
    assert (tmp_path / "msgbatch_cut.jsonl").read_bytes() == body
    assert manifest["files"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    assert files_under(tmp_path) == ["msgbatch_cut.jsonl"]


def test_cut_stream_gives_up_after_max_attempts_and_leaves_no_partial(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 20)
    batch = api.add("msgbatch_cut", lines)
    batch.bodies = [b"".join(lines)[:1000]] * 2

    with pytest.raises(ResultsStreamError, match="cut short"):
        land_results(api, "msgbatch_cut", f"file://{tmp_path}", max_attempts=2, **FAST)

    assert batch.results_requests == 2
    assert files_under(tmp_path) == []


def test_batch_not_ended_is_a_clear_error_without_download(api: FakeAPI, tmp_path: Path) -> None:
    batch = api.add("msgbatch_busy", make_lines("a", 2), status="in_progress")

    with pytest.raises(BatchNotEndedError, match="'in_progress', not 'ended'"):
        land_results(api, "msgbatch_busy", f"file://{tmp_path}")

    assert batch.results_requests == 0
    assert files_under(tmp_path) == []


def test_wait_polls_until_the_batch_ends(api: FakeAPI, tmp_path: Path) -> None:
    batch = api.add("msgbatch_slow", make_lines("a", 2), statuses=["in_progress", "canceling", "in_progress"])

    manifest = land_results(api, "msgbatch_slow", f"file://{tmp_path}", wait=True, **FAST)

    assert batch.retrieves == 4
    assert manifest["lines"] == 2


def test_wait_outlasts_a_failed_read_like_the_trigger(api: FakeAPI, tmp_path: Path) -> None:
    # The client makes no retries here (max_retries=0): the 503 reaches the wait loop, which polls again.
    batch = api.add("msgbatch_flaky", make_lines("a", 2), statuses=["in_progress", 503, "in_progress"])

    manifest = land_results(api, "msgbatch_flaky", f"file://{tmp_path}", wait=True, **FAST)

    assert batch.retrieves == 4
    assert manifest["lines"] == 2


def test_wait_gives_up_at_the_timeout(api: FakeAPI, tmp_path: Path) -> None:
    api.add("msgbatch_never", make_lines("a", 2), status="in_progress")

    with pytest.raises(ResultsWaitTimeoutError, match=r"still 'in_progress' after waiting 0\.05 s"):
        land_results(api, "msgbatch_never", f"file://{tmp_path}", wait=True, wait_timeout=0.05, **FAST)


def test_archived_batch_is_a_clear_error(api: FakeAPI, tmp_path: Path) -> None:
    api.add("msgbatch_old", make_lines("a", 2), archived=True)

    with pytest.raises(ResultsArchivedError, match="archived at 2026-01-30"):
        land_results(api, "msgbatch_old", f"file://{tmp_path}")


def test_overwrite_replace_swaps_the_existing_file(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 3)
    api.add("msgbatch_r", lines)
    (tmp_path / "msgbatch_r.jsonl").write_bytes(b"old content\n")

    land_results(api, "msgbatch_r", f"file://{tmp_path}")

    assert (tmp_path / "msgbatch_r.jsonl").read_bytes() == b"".join(lines)


def test_overwrite_error_keeps_the_existing_file_and_downloads_nothing(api: FakeAPI, tmp_path: Path) -> None:
    batch = api.add("msgbatch_r", make_lines("a", 3))
    (tmp_path / "msgbatch_r.jsonl").write_bytes(b"old content\n")

    with pytest.raises(DestinationExistsError, match=r"msgbatch_r\.jsonl.*overwrite='replace'"):
        land_results(api, "msgbatch_r", f"file://{tmp_path}", overwrite=False)

    assert (tmp_path / "msgbatch_r.jsonl").read_bytes() == b"old content\n"
    assert batch.results_requests == 0


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_overwrite_skip_keeps_a_valid_landing_without_downloading(
    api: FakeAPI, tmp_path: Path, compression: str | None
) -> None:
    batch = api.add("msgbatch_k", [*make_lines("a", 3), result_line("c", "canceled")])
    first = land_results(api, "msgbatch_k", f"file://{tmp_path}", split_by_type=True, compression=compression)

    again = land_results(
        api, "msgbatch_k", f"file://{tmp_path}", split_by_type=True, compression=compression, overwrite="skip"
    )

    assert batch.results_requests == 1
    assert again["files"] == first["files"]
    assert again["counts"] == first["counts"] and again["usage"] == first["usage"]


def test_overwrite_skip_lands_again_when_the_existing_file_is_wrong(api: FakeAPI, tmp_path: Path) -> None:
    lines = make_lines("a", 3)
    batch = api.add("msgbatch_k", lines)
    (tmp_path / "msgbatch_k.jsonl").write_bytes(lines[0])  # truncated landing by someone else

    manifest = land_results(api, "msgbatch_k", f"file://{tmp_path}", overwrite="skip")

    assert batch.results_requests == 1
    assert manifest["lines"] == 3
    assert (tmp_path / "msgbatch_k.jsonl").read_bytes() == b"".join(lines)


def test_unwritable_destination_fails_before_downloading(api: FakeAPI, tmp_path: Path) -> None:
    batch = api.add("msgbatch_w", make_lines("a", 3))
    (tmp_path / "blocker").write_text("a file where a directory should be")

    with pytest.raises(DestinationWriteError, match=r"blocker/out/msgbatch_w\.jsonl: NotADirectoryError"):
        land_results(api, "msgbatch_w", f"file://{tmp_path}/blocker/out/")

    assert batch.results_requests == 0
    assert files_under(tmp_path) == ["blocker"]


def test_progress_is_logged(api: FakeAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    api.add("msgbatch_p", make_lines("a", 40, text="x" * 2000))
    caplog.set_level(logging.INFO, logger="airflow_batches.results")

    land_results(api, "msgbatch_p", f"file://{tmp_path}", progress_interval=1e-9, chunk_bytes=10_000)

    progress = [r.getMessage() for r in caplog.records if "MB/s" in r.getMessage()]
    assert len(progress) >= 5
    assert "batch 1/1 msgbatch_p:" in progress[0] and " lines, " in progress[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [*BAD_LANDING_ARGUMENTS, ({"batch_ref": []}, "names no batch")],
)
def test_bad_arguments_are_named_before_any_request(
    api: FakeAPI, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    batch = api.add("msgbatch_v", make_lines("a", 1))
    arguments: dict[str, object] = {"batch_ref": "msgbatch_v", "destination": f"file://{tmp_path}"} | kwargs

    with pytest.raises(ValueError, match=message):
        land_results(api, **arguments)  # type: ignore[arg-type]

    assert batch.retrieves == 0


async def test_refuses_to_run_inside_an_event_loop(api: FakeAPI, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"asyncio\.to_thread"):
        land_results(api, "msgbatch_x", f"file://{tmp_path}")


def test_a_merged_landing_refuses_a_line_that_is_not_utf8(api: FakeAPI, tmp_path: Path) -> None:
    bad = b'{"custom_id": "u-1", "result": {"type": "canceled", "note": "\xff"}}\n'
    api.add(
        "msgbatch_u", [result_line("u-0"), bad, result_line("u-2")], counts={"succeeded": 2, "canceled": 1}
    )
    group = first_round(new_group(["msgbatch_u"], [3], "f" * 64))

    with pytest.raises(ResultsCheckError, match="results line 2 is not a valid result"):
        land_results(api, group, f"file://{tmp_path}", **FAST)
    assert files_under(tmp_path) == []
