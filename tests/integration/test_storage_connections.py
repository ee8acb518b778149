"""Storage credentials come from Airflow connections, in both directions, against a real S3 API (moto).

No AWS_* environment variable is set and no ``~/.aws``: the only credentials are in one Airflow connection,
either ``my_s3`` (``aws_default`` does not exist), named in the URI (``s3://my_s3@bucket/...``) or by the
operator's or template's parameter, or ``aws_default``, used when nothing names a connection.
"""

from __future__ import annotations

import json

import pytest
import results_support
from results_support import ended_batch
from s3 import S3Bucket, aws_connection, moto_s3, no_aws_environment, s3_bucket  # noqa: F401 - fixtures

from airflow_batches.hooks import BatchHook
from airflow_batches.operators.request_source import iter_request_items
from airflow_batches.records import RequestTemplate

results_emulator = results_support.results_emulator
hook = results_support.hook


@pytest.fixture
def only_my_s3(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:  # noqa: F811
    no_aws_environment(monkeypatch)
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT")
    monkeypatch.setenv("AIRFLOW_CONN_MY_S3", aws_connection(s3_bucket.endpoint_url))
    return s3_bucket


@pytest.fixture
def only_aws_default(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:  # noqa: F811
    """``s3_bucket`` already points ``aws_default`` at moto; nothing else holds a credential."""
    no_aws_environment(monkeypatch)
    return s3_bucket


LINES = [json.dumps({"custom_id": f"r{n}", "params": {}}).encode() + b"\n" for n in range(3)]


@pytest.mark.parametrize("how", ["uri", "parameter"])
def test_requests_file_is_read_with_the_named_connection(only_my_s3: S3Bucket, how: str) -> None:
    only_my_s3.client.put_object(Bucket=only_my_s3.name, Key="in/requests.jsonl", Body=b"".join(LINES))
    if how == "uri":
        items = iter_request_items(f"s3://my_s3@{only_my_s3.name}/in/requests.jsonl")
    else:
        items = iter_request_items(f"s3://{only_my_s3.name}/in/requests.jsonl", "my_s3")
    assert list(items) == LINES


@pytest.mark.parametrize("how", ["uri", "parameter"])
def test_results_land_with_the_named_connection(hook: BatchHook, only_my_s3: S3Bucket, how: str) -> None:
    batch_id = ended_batch(hook, f"conn{how}", 2)
    if how == "uri":
        manifest = hook.land_results(batch_id, f"s3://my_s3@{only_my_s3.name}/out/")
    else:
        manifest = hook.land_results(batch_id, f"s3://{only_my_s3.name}/out/", destination_conn_id="my_s3")
    assert manifest["files"][0]["uri"] == f"s3://{only_my_s3.name}/out/{batch_id}.jsonl"
    assert only_my_s3.keys("out/") == [f"out/{batch_id}.jsonl"]


RECORDS = b"".join(json.dumps({"id": n, "text": f"note {n}"}).encode() + b"\n" for n in range(3))


def _template(records: str, conn_id: str | None = None) -> RequestTemplate:
    params = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "{{ record.text }}"}]}
    return RequestTemplate(
        records=records, records_conn_id=conn_id, custom_id="r{{ record.id }}", params=params
    )


def _rendered(template: RequestTemplate) -> list[tuple[str, str]]:
    return [
        (item.request["custom_id"], item.request["params"]["messages"][0]["content"])
        for item in template.requests()
    ]


@pytest.mark.parametrize("how", ["uri", "parameter"])
def test_template_records_are_read_with_the_named_connection(only_my_s3: S3Bucket, how: str) -> None:
    only_my_s3.client.put_object(Bucket=only_my_s3.name, Key="in/records.jsonl", Body=RECORDS)
    if how == "uri":
        template = _template(f"s3://my_s3@{only_my_s3.name}/in/records.jsonl")
    else:
        template = _template(f"s3://{only_my_s3.name}/in/records.jsonl", "my_s3")
    assert _rendered(template) == [(f"r{n}", f"note {n}") for n in range(3)]


def test_requests_and_template_records_default_to_aws_default(only_aws_default: S3Bucket) -> None:
    """Neither the URI nor a parameter names a connection: ``aws_default`` is used, as by ``S3Hook()``."""
    bucket = only_aws_default
    bucket.client.put_object(Bucket=bucket.name, Key="in/requests.jsonl", Body=b"".join(LINES))
    bucket.client.put_object(Bucket=bucket.name, Key="in/records.jsonl", Body=RECORDS)
    assert list(iter_request_items(f"s3://{bucket.name}/in/requests.jsonl")) == LINES
    template = _template(f"s3://{bucket.name}/in/records.jsonl")
    assert _rendered(template) == [(f"r{n}", f"note {n}") for n in range(3)]
