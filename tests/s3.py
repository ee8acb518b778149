"""A real S3 API for tests: moto in server mode on loopback, reached through s3fs and ObjectStoragePath.

Import the fixtures into a test module (``from s3 import moto_s3, s3_bucket  # noqa: F401``); the benchmark
uses ``run_moto_s3`` and ``aws_connection`` directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class S3Bucket:
    name: str
    endpoint_url: str
    client: Any  # boto3 S3 client

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def pending_uploads(self) -> list[str]:
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])]


@contextlib.contextmanager
def run_moto_s3() -> Iterator[str]:
    """Start a moto S3 server on a free port of 127.0.0.1; yield its endpoint URL; stop it on exit.

    moto runs in its own process, as a real S3 would: objects it stores do not count against the memory of
    the process under test, so tests (and ``bench/bench_results.py``) can measure what the landing holds.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {endpoint}") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def aws_connection(endpoint_url: str) -> str:
    """The ``aws`` connection (JSON for ``AIRFLOW_CONN_...``) to the moto server at ``endpoint_url``."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"},
        }
    )


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client of the moto server, with its own test credentials (none from the environment)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credential but in Airflow connections: no AWS_* variable, no ``~/.aws``, boto3 finds none."""
    import boto3

    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", "/nonexistent")
    assert boto3.Session().get_credentials() is None


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on 127.0.0.1 for the whole session."""
    with run_moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(moto_s3: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A fresh bucket, with the ``aws_default`` connection pointing at the moto server."""
    from airflow.sdk.io import store

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(moto_s3))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    # A filesystem attached before this connection existed (or for another endpoint) must not be reused.
    store._STORE_CACHE.clear()
    client = s3_client(moto_s3)
    name = f"results-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    try:
        yield S3Bucket(name=name, endpoint_url=moto_s3, client=client)
    finally:
        store._STORE_CACHE.clear()
