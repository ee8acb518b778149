"""The landing's options, named and checked once for ``land_results``, ``BatchHook.land_results`` and
``BatchResultsOperator``.

:class:`LandingOptions` is the keyword-argument type of both ``land_results`` functions (``**options:
Unpack[LandingOptions]``), so the parameter list is written once; :func:`check_options` turns it into the
frozen, validated :class:`LandingSettings` with the defaults. The operator calls it when the DAG is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypedDict

from airflow_batches.checks import positive_number
from airflow_batches.cost.prices import validate_prices

__all__ = [
    "Compression",
    "LandingOptions",
    "LandingSettings",
    "OverwritePolicy",
    "check_destination",
    "check_options",
    "normalize_compression",
    "normalize_overwrite",
]

OverwritePolicy = Literal["replace", "error", "skip"]
Compression = Literal["gzip"]

_POLICIES: tuple[OverwritePolicy, ...] = ("replace", "error", "skip")


class LandingOptions(TypedDict, total=False):
    """The optional keyword arguments of ``land_results`` (documented there)."""

    destination_conn_id: str | None
    split_by_type: bool
    overwrite: OverwritePolicy | bool
    compression: Compression | None
    wait: bool
    wait_timeout: float
    poll_interval: float
    max_attempts: int
    retry_backoff: float
    progress_interval: float
    chunk_bytes: int
    block_size: int
    prices: Mapping[str, Mapping[str, float]] | None


@dataclass(frozen=True, kw_only=True)
class LandingSettings:
    """:class:`LandingOptions` with their defaults, checked when built (a ``ValueError`` names it)."""

    destination_conn_id: str | None = None
    split_by_type: bool = False
    overwrite: OverwritePolicy | bool = "replace"  # a bool becomes its policy name
    compression: Compression | None = None
    wait: bool = False
    wait_timeout: float = 3600.0
    poll_interval: float = 10.0
    max_attempts: int = 3
    retry_backoff: float = 2.0
    progress_interval: float = 5.0
    chunk_bytes: int = 1 << 20
    block_size: int = 8 << 20
    prices: Mapping[str, Mapping[str, float]] | None = None  # over the package's table, for the cost

    def __post_init__(self) -> None:
        def fix(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        fix("overwrite", normalize_overwrite(self.overwrite))
        fix("compression", normalize_compression(self.compression))
        for name in ("wait_timeout", "poll_interval", "progress_interval"):
            fix(name, positive_number(name, getattr(self, name)))
        for name in ("max_attempts", "chunk_bytes", "block_size"):
            fix(name, int(positive_number(name, getattr(self, name), seconds=False)))
        fix("retry_backoff", max(0.0, self.retry_backoff))
        validate_prices(self.prices)

    @property
    def suffix(self) -> str:
        return ".jsonl.gz" if self.compression == "gzip" else ".jsonl"


def check_options(options: LandingOptions) -> LandingSettings:
    """Validate ``options`` and fill in the defaults."""
    return LandingSettings(**options)


def check_destination(destination: object) -> str:
    """A destination string, stripped, if it is a usable URI; ``ObjectStoragePath`` is checked by its type."""
    if not isinstance(destination, str) or not destination.strip():
        raise ValueError(
            f"destination must be a URI such as 's3://bucket/prefix/' or 'file:///data/results/', or an "
            f"ObjectStoragePath; got {destination!r}"
        )
    text = destination.strip()
    if "://" not in text:
        raise ValueError(
            f"destination {text!r} has no scheme; write it as a URI, e.g. 'file://{text}' for a local "
            f"directory or 's3://bucket/{text.lstrip('/')}' for S3"
        )
    return text


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
