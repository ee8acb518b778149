"""The landing options shared by ``land_results`` and ``BatchResultsOperator``, and their validation."""

from __future__ import annotations

from typing import Literal

__all__ = ["Compression", "OverwritePolicy", "normalize_compression", "normalize_overwrite"]

OverwritePolicy = Literal["replace", "error", "skip"]
Compression = Literal["gzip"]

_POLICIES: tuple[OverwritePolicy, ...] = ("replace", "error", "skip")


def normalize_overwrite(value: OverwritePolicy | bool) -> OverwritePolicy:
    """``True`` means ``"replace"``, ``False`` means ``"error"``; anything else must be a policy name."""
    if value is True:
        return "replace"
    if value is False:
        return "error"
    if value not in _POLICIES:
        raise ValueError(
            f"overwrite={value!r} is not a policy; use 'replace' (default: swap the file atomically), "
            "'error' (fail if a destination file exists) or 'skip' (keep existing files that pass the checks)"
        )
    return value


def normalize_compression(value: str | None) -> Compression | None:
    if value is None:
        return None
    if value == "gzip":
        return "gzip"
    raise ValueError(f"compression={value!r} is not supported; use None (plain .jsonl) or 'gzip' (.jsonl.gz)")
