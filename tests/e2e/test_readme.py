"""The README's snippets, run as written: a newcomer pastes them and they work.

Each fenced block of README.md is named by a ``<!-- snippet: NAME -->`` comment (see ``tests/readme.py``);
this module runs or checks every one of them, and fails on a block it does not know.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from readme import snippet
from s3 import aws_connection, moto_s3  # noqa: F401 - fixture

from airflow_batches.emulator.testing import echo_request

pytestmark = pytest.mark.e2e


def _without_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials but the Airflow connection: every AWS_* variable unset, and boto3 finds none."""
    import boto3

    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.aws/credentials either
    assert boto3.Session().get_credentials() is None


def test_dag_s3(
    run_dag: Any,
    emulator: Any,
    dags_folder: Path,
    moto_s3: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first snippet reads its requests from S3 and lands the results in S3, with the credentials only
    in the ``aws_default`` connection (the scheme's usual one: neither the URIs nor the operators name it)."""
    import boto3
    from airflow.sdk.io import store

    day = datetime(2026, 11, 27, tzinfo=UTC)
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="bucket")
    requests = [echo_request(f"q{n}", f"answer {n}") for n in range(3)]
    for request in requests:
        del request["params"]["model"]  # default_model fills it, as in the snippet
    body = "".join(json.dumps(r) + "\n" for r in requests).encode()
    s3.put_object(Bucket="bucket", Key="in/2026-11-27/requests.jsonl", Body=body)

    _without_aws_environment(monkeypatch)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(moto_s3))
    store._STORE_CACHE.clear()
    (dags_folder / "claude_daily.py").write_text(snippet("dag-s3").code)
    try:
        result = run_dag("claude_daily", emulator, logical_date=day)
    finally:
        store._STORE_CACHE.clear()

    assert result.state == "success", result.tasks
    (batch_id,) = result.xcom["create"]["batch_ids"]
    manifest = result.xcom["land"]
    assert manifest["destination"] == "s3://bucket/out/2026-11-27"
    assert manifest["counts"]["succeeded"] == 3
    landed = s3.get_object(Bucket="bucket", Key=f"out/2026-11-27/{batch_id}.jsonl")["Body"].read()
    replies = {
        json.loads(line)["custom_id"]: json.loads(line)["result"]["message"]["content"][0]["text"]
        for line in landed.splitlines()
    }
    assert replies == {f"q{n}": f"answer {n}" for n in range(3)}
