"""The cost of the usage a batch actually reported, per model, at batch prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from airflow_batches.cost.prices import PriceTable

__all__ = ["USAGE_FIELDS", "CostReport", "ModelCost", "add_usage", "cost_of_usage"]

USAGE_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class ModelCost(TypedDict):
    usage: dict[str, int]
    usd: float | None  # None: no price for this model


class CostReport(TypedDict):
    usd: float | None  # None when a model that used tokens has no price (never counted as free)
    priced_usd: float  # the models that have a price
    unpriced_models: list[str]
    by_model: dict[str, ModelCost]
    prices: dict[str, object]


def add_usage(totals: dict[str, dict[str, int]], more: Mapping[str, Mapping[str, int]]) -> None:
    """Add per-model usage ``more`` into ``totals`` (e.g. across the batches of a group)."""
    for model, usage in more.items():
        into = totals.setdefault(model, dict.fromkeys(USAGE_FIELDS, 0))
        for field in USAGE_FIELDS:
            into[field] += int(usage.get(field, 0))


def cost_of_usage(usage_by_model: Mapping[str, Mapping[str, int]], table: PriceTable) -> CostReport:
    """USD of each model's token usage (input, output, cache writes and reads) and the total."""
    by_model: dict[str, ModelCost] = {}
    unpriced: list[str] = []
    priced_total = 0.0
    for model in sorted(usage_by_model):
        usage = {field: int(usage_by_model[model].get(field, 0)) for field in USAGE_FIELDS}
        price = table.price(model)
        if price is None:
            unpriced.append(model)
            by_model[model] = ModelCost(usage=usage, usd=None)
            continue
        usd = (
            usage["input_tokens"] * price.input
            + usage["output_tokens"] * price.output
            + usage["cache_creation_input_tokens"] * price.cache_write
            + usage["cache_read_input_tokens"] * price.cache_read
        ) / 1_000_000
        priced_total += usd
        by_model[model] = ModelCost(usage=usage, usd=round(usd, 6))
    return CostReport(
        usd=None if unpriced else round(priced_total, 6),
        priced_usd=round(priced_total, 6),
        unpriced_models=unpriced,
        by_model=by_model,
        prices=table.describe(),
    )
