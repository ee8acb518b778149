"""The body of ``POST /v1/messages/count_tokens`` made from a batch request's ``params``.

The endpoint rejects fields it does not take (``max_tokens``, ``temperature``, ``metadata``, ...), so only
``COUNTED_FIELDS`` (the fields that shape the prompt) are sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .models import COUNTED_FIELDS

__all__ = ["count_tokens_body"]


def count_tokens_body(params: Mapping[str, Any]) -> bytes:
    """Compact JSON of the counted fields of ``params`` (a Messages request body)."""
    body = {field: params[field] for field in COUNTED_FIELDS if field in params}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
