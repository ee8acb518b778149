"""Which storage connection a request file or a landing uses: explicit, then the URI's, then the scheme's."""

from __future__ import annotations

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_batches.storage_path import default_storage_conn_id, path_conn_id, storage_path


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/in/requests.jsonl", "aws_default"),
        ("S3A://bucket/x", "aws_default"),
        ("gs://bucket/x", "google_cloud_default"),
        ("file:///data/x", None),
        ("/data/x", None),
        ("memory://x", None),
    ],
)
def test_default_connection_per_scheme(uri: str, expected: str | None) -> None:
    assert default_storage_conn_id(uri) == expected


def test_s3_uri_without_connection_gets_aws_default() -> None:
    assert path_conn_id(storage_path("s3://bucket/out/")) == "aws_default"


def test_connection_in_the_uri_is_kept() -> None:
    assert path_conn_id(storage_path("s3://my_s3@bucket/out/")) == "my_s3"


def test_explicit_connection_wins_over_the_uri() -> None:
    assert path_conn_id(storage_path("s3://my_s3@bucket/out/", "other")) == "other"


def test_local_files_get_no_connection() -> None:
    assert path_conn_id(storage_path("file:///tmp/out/")) is None


def test_object_storage_path_without_connection_gets_the_default() -> None:
    path = storage_path(ObjectStoragePath("s3://bucket/key"))
    assert (path_conn_id(path), path.path) == ("aws_default", "bucket/key")
    own = ObjectStoragePath("s3://mine@bucket/key")
    assert storage_path(own) is own
    assert path_conn_id(storage_path(own, "other")) == "other"
