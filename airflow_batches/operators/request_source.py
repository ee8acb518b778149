"""Where a create operator's requests come from: inline, XCom, a JSONL file in object storage, or records
through a ``RequestTemplate``.

The file is read line by line as raw bytes (``spool_batches`` validates and encodes each line), so a large
input never sits in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow.providers.common.compat.sdk import ObjectStoragePath, literal

from airflow_batches.api.requests import SourcedRequest
from airflow_batches.errors import RequestSourceError
from airflow_batches.input_files import open_input
from airflow_batches.records.template import RequestTemplate

__all__ = ["as_literal", "describe_source", "iter_request_items"]

_LiteralValue = type(literal(None))


def as_literal(requests: Any) -> Any:
    """Inline requests are sent as written: prompts often contain ``{{`` and must not go through Jinja."""
    if isinstance(requests, list | tuple):
        return literal(list(requests))
    return requests


def describe_source(requests: Any) -> str:
    """A short, payload-free description of the input for messages and logs."""
    if isinstance(requests, RequestTemplate):
        return requests.describe()
    if isinstance(requests, ObjectStoragePath):
        return f"file {requests}"
    if isinstance(requests, str) and not _looks_like_json(requests):
        return f"file {requests.strip()}"
    return "inline requests"


def iter_request_items(requests: Any) -> Iterator[Mapping[str, Any] | SourcedRequest | bytes]:
    """Yield each request as a mapping (inline / XCom), a raw JSONL line (a file) or a rendered record."""
    if isinstance(requests, _LiteralValue):  # not rendered (outside a task run)
        requests = requests.value
    if isinstance(requests, RequestTemplate):
        yield from requests.requests()
        return
    if isinstance(requests, ObjectStoragePath):
        yield from _iter_file_lines(requests)
        return
    if isinstance(requests, str):
        text = requests.strip()
        if _looks_like_json(text):
            # A templated XCom value rendered to text (render_template_as_native_obj is off).
            try:
                requests = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RequestSourceError(
                    f"requests looks like JSON but does not parse ({exc}); pass a list of "
                    "{custom_id, params} objects, an XComArg, or the URI of a JSONL file"
                ) from None
        else:
            yield from _iter_file_lines(_to_path(text))
            return
    if isinstance(requests, Mapping):
        raise RequestSourceError(
            "requests is a single mapping; pass a list of {custom_id, params} objects "
            f"(got a mapping with keys {sorted(requests)[:5]})"
        )
    if not isinstance(requests, Iterable) or isinstance(requests, bytes | bytearray):
        raise RequestSourceError(
            f"requests must be a list of {{custom_id, params}} objects, an XComArg, a URI string or an "
            f"ObjectStoragePath of a JSONL file; got a {type(requests).__name__}"
        )
    yield from requests


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("[", "{")


def _to_path(text: str) -> ObjectStoragePath:
    if not text:
        raise RequestSourceError("requests is an empty string; pass a list of requests or a JSONL file URI")
    # A bare absolute path is a local file; anything else must carry a scheme Airflow's object storage knows.
    uri = f"file://{text}" if text.startswith("/") else text
    if "://" not in uri:
        raise RequestSourceError(
            f"requests {text!r} is neither a list nor a URI; use e.g. file:///data/requests.jsonl, "
            "s3://bucket/requests.jsonl or an absolute local path"
        )
    try:
        return ObjectStoragePath(uri)
    except Exception as exc:
        raise RequestSourceError(
            f"cannot open requests file {text!r}: {type(exc).__name__}: {exc}. For s3:// install "
            "apache-airflow-providers-amazon[s3fs]; for gs:// the google provider with gcsfs."
        ) from None


def _iter_file_lines(path: ObjectStoragePath) -> Iterator[bytes]:
    with open_input(path, "requests", RequestSourceError) as handle:
        yield from handle
