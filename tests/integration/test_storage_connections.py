"""Storage credentials come from Airflow connections, in both directions, against a real S3 API (moto).

No AWS_* environment variable is set and ``aws_default`` does not exist: the only credentials are in the
connection ``my_s3``, named either in the URI (``s3://my_s3@bucket/...``) or by the operator's parameter.
"""

from __future__ import annotations

import json
import os

import pytest
import results_support
from results_support import ended_batch
from s3 import S3Bucket, aws_connection, moto_s3, s3_bucket  # noqa: F401 - fixtures

from airflow_batches.hooks import BatchHook
from airflow_batches.operators.request_source import iter_request_items

results_emulator = results_support.results_emulator
hook = results_support.hook


@pytest.fixture
def only_my_s3(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:  # noqa: F811
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT")
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.aws/credentials
    monkeypatch.setenv("AIRFLOW_CONN_MY_S3", aws_connection(s3_bucket.endpoint_url))
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
