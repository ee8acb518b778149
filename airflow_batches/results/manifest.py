"""The manifest of a landing (the contract's shape): small, JSON-serializable, safe for XCom."""

from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, TypedDict

from airflow_batches.batch_ref import ResultCounts
from airflow_batches.cost.usage_cost import CostReport

if TYPE_CHECKING:
    from airflow_batches.results.table import TableEntry

__all__ = ["FileEntry", "Manifest", "RoundEntry", "UsageTotals"]


class FileEntry(TypedDict):
    batch_id: str
    uri: str
    result_type: str | None  # None when all result types share one file
    lines: int
    bytes: int  # as stored (compressed with gzip)
    sha256: str  # of the stored bytes


class UsageTotals(TypedDict):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class RoundEntry(TypedDict):
    """One resubmit round of a merged landing (``results/merge.py``): every line it had, final or not."""

    batch_ids: list[str]
    request_counts: list[int]
    counts: ResultCounts
    resubmitted: int  # requests this round sent again (0 for round 1)


class Manifest(TypedDict):
    batch_ids: list[str]
    destination: str
    files: list[FileEntry]
    counts: ResultCounts
    lines: int
    bytes: int
    usage: UsageTotals
    cost: CostReport  # at batch prices, from the usage above, per model
    duration_seconds: float
    rounds: NotRequired[list[RoundEntry]]  # a group with resubmit rounds, landed merged
    table: NotRequired[TableEntry]  # BatchResultsOperator(table=...)
