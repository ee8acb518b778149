"""RequestTemplate: records from JSONL, CSV, Parquet and lists become requests, rendered deterministically;
every problem names the record (line or row) and the field, before anything is sent."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_batches.api.errors import RequestValidationError
from airflow_batches.api.spool import spool_batches
from airflow_batches.errors import RecordsError, RequestSourceError
from airflow_batches.records import RequestTemplate

RECORDS = [{"id": 1, "text": "alpha"}, {"id": 2, "text": "beta, with a comma"}, {"id": 3, "text": "gamma"}]
SYSTEM = [{"type": "text", "text": "You label support tickets.", "cache_control": {"type": "ephemeral"}}]
PARAMS: dict[str, Any] = {
    "model": "claude-haiku-4-5",
    "max_tokens": 64,
    "system": SYSTEM,
    "messages": [{"role": "user", "content": "Ticket {{ number }}: {{ record.text }}"}],
}


def template(records: Any, **kwargs: Any) -> RequestTemplate:
    kwargs.setdefault("custom_id", "rec-{{ record.id }}")
    kwargs.setdefault("params", PARAMS)
    return RequestTemplate(records=records, **kwargs)


def sent(tpl: RequestTemplate) -> list[dict[str, Any]]:
    batches = spool_batches(tpl.requests())
    try:
        return [r for b in batches for r in json.loads(b.path.read_bytes())["requests"]]
    finally:
        for batch in batches:
            batch.cleanup()


def expected() -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"rec-{r['id']}",
            "params": {**PARAMS, "messages": [{"role": "user", "content": f"Ticket {n}: {r['text']}"}]},
        }
        for n, r in enumerate(RECORDS, start=1)
    ]


def write_jsonl(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + "\n")
    return path


def write_csv(path: Path) -> Path:
    path.write_text('id,text\n1,alpha\n2,"beta, with a comma"\n3,gamma\n')
    return path


def write_parquet(path: Path) -> Path:
    pq.write_table(pa.Table.from_pylist(RECORDS), path, row_group_size=2)
    return path


@pytest.mark.parametrize("writer", [write_jsonl, write_csv, write_parquet])
def test_each_file_format_gives_one_request_per_record(writer: Any, tmp_path: Path) -> None:
    path = writer(tmp_path / f"records.{writer.__name__.removeprefix('write_')}")
    assert sent(template(path.as_uri())) == expected()


def test_inline_records_and_a_bare_path(tmp_path: Path) -> None:
    assert sent(template(RECORDS)) == expected()
    assert sent(template(str(write_csv(tmp_path / "r.csv")))) == expected()


def test_the_shared_cached_prefix_is_sent_as_written() -> None:
    (first, *_) = sent(template(RECORDS))
    assert first["params"]["system"] == SYSTEM


def test_same_records_give_the_same_body_fingerprint(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv").as_uri()
    prints = []
    for _ in range(2):
        batches = spool_batches(template(path).requests())
        prints.append([b.fingerprint for b in batches])
        for batch in batches:
            batch.cleanup()
    assert prints[0] == prints[1]


def test_render_failures_name_the_line_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"id": 1, "text": "a"}\n\n{"id": 2}\n')
    with pytest.raises(RequestValidationError) as info:
        spool_batches(template(path.as_uri()).requests())
    (problem,) = info.value.problems
    assert problem.origin == "records.jsonl line 3"
    assert problem.field == "params.messages[0].content"
    assert problem.custom_id == "rec-2"
    assert "'text'" in problem.rule and "id" in (problem.fix or "")


def test_invalid_rendered_requests_name_the_csv_line(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text('id,text\n1,a\n"two words",b\n1,c\n')
    with pytest.raises(RequestValidationError) as info:
        spool_batches(template(path.as_uri()).requests())
    text = str(info.value)
    assert "records.csv line 3, field 'custom_id'" in text and "does not match" in text
    assert "records.csv line 4" in text and "first used at records.csv line 2" in text


def test_parquet_rows_are_named_by_row_number(tmp_path: Path) -> None:
    path = tmp_path / "records.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": 1, "text": "a"}, {"id": 2, "text": None}]), path)
    params = {**PARAMS, "metadata": {"user_id": "{{ record.x }}"}}
    tpl = template(path.as_uri(), params=params)
    with pytest.raises(RequestValidationError) as info:
        spool_batches(tpl.requests())
    assert [p.origin for p in info.value.problems] == ["records.parquet row 1", "records.parquet row 2"]


def test_the_sandbox_refuses_internal_attributes() -> None:
    tpl = template(RECORDS, custom_id="{{ record.__class__.__mro__ }}")
    with pytest.raises(RequestValidationError, match="custom_id"):
        spool_batches(tpl.requests())


def test_a_jinja_syntax_error_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match=r"params.messages\[0\].content: Jinja syntax error"):
        template(RECORDS, params={**PARAMS, "messages": [{"role": "user", "content": "{{ record.text "}]})


def test_missing_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_parquet(tmp_path / "records.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(RecordsError, match=r"airflow-batches\[parquet\]"):
        list(template(path.as_uri()).requests())


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ("/data/records.xlsx", "cannot tell the format"),
        ("records.csv", "neither a list nor a URI"),
        ({"id": 1}, "must be a list of mappings"),
        ([{"id": 1}, "two"], "record #2 is a str"),
    ],
)
def test_unreadable_records_are_clear_errors(records: Any, message: str) -> None:
    with pytest.raises(RequestSourceError, match=message):
        list(template(records).requests())


def test_bad_lines_in_a_records_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"id": 1}\n[1, 2]\n')
    with pytest.raises(RecordsError, match=r"records\.jsonl line 2: a record must be a JSON object"):
        list(template(path.as_uri()).requests())
    missing = tmp_path / "nope.csv"
    with pytest.raises(RecordsError, match="does not exist"):
        list(template(missing.as_uri()).requests())
