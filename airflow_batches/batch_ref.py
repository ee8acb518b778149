"""The one place that reads "which batches": a plain id, a list of ids, or a create operator's XCom value.

``BatchCreateOperator`` returns a *batch group* (a dict with ``batch_ids``); every downstream piece
(``BatchSensor``, ``BatchResultsOperator``, ``BatchHook.land_results``, ``BatchTrigger``) accepts that value
unchanged, a plain id string, or a list of ids, and turns it into a list of ids here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BatchRefError", "normalize_batch_ids"]


class BatchRefError(ValueError):
    """The value does not name any batch."""


def normalize_batch_ids(value: Any) -> list[str]:
    """Return the batch ids named by ``value``, in order, without duplicates.

    Accepts ``"msgbatch_..."``, ``["msgbatch_a", "msgbatch_b"]``, a mapping with ``batch_ids`` (the create
    operator's XCom value) or ``batch_id``, and the JSON text of any of these (a templated field renders a
    dict to a string when ``render_template_as_native_obj`` is off).
    """
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{", '"'):
            try:
                return normalize_batch_ids(json.loads(text))
            except json.JSONDecodeError as exc:
                raise BatchRefError(f"batch reference looks like JSON but does not parse: {exc}") from None
        ids: list[Any] = [text]
    elif isinstance(value, Mapping):
        if "batch_ids" in value:
            ids = list(value["batch_ids"])
        elif "batch_id" in value:
            ids = [value["batch_id"]]
        else:
            raise BatchRefError(
                f"batch reference mapping has neither 'batch_ids' nor 'batch_id' (keys: {sorted(value)}); "
                "pass the BatchCreateOperator's return value, a batch id, or a list of ids"
            )
    elif isinstance(value, Sequence):
        ids = list(value)
    else:
        raise BatchRefError(
            f"cannot read batch ids from a {type(value).__name__}; pass the BatchCreateOperator's "
            "return value, a batch id, or a list of ids"
        )
    result: list[str] = []
    for item in ids:
        if not isinstance(item, str) or not item.strip():
            raise BatchRefError(f"batch id must be a non-empty string, got {item!r}")
        if item.strip() not in result:
            result.append(item.strip())
    if not result:
        raise BatchRefError("batch reference names no batch (empty list)")
    return result
