"""The plan of a submission (what would be sent and what it may cost) and the budget check on it.

The plan is JSON-safe (an XCom value): the batches (requests and bytes each), total requests, per model the
requests, input tokens (how they were found and how far off they may be), the sum of ``max_tokens`` and the
cost range at batch prices: the minimum is the input alone, the maximum the input's upper bound plus every
request using all of its ``max_tokens``. A model without a price gets no cost, and neither does the total.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_batches.api.spool import SpooledBatch
from airflow_batches.cost.input_tokens import InputEstimate
from airflow_batches.cost.prices import PriceTable
from airflow_batches.cost.tally import ModelTally

__all__ = ["budget_problem", "build_plan", "validate_budget"]

_SHOWN_CONTRIBUTORS = 3


def validate_budget(value: object) -> float | None:
    """``max_cost_usd``: None (no budget) or a finite number of dollars above zero."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"max_cost_usd must be a number of US dollars, got {value!r:.80}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"max_cost_usd must be a finite number of US dollars above 0, got {value!r}; "
            "leave it unset for no budget"
        )
    return float(value)


def _usd(value: float) -> float:
    return round(value, 6)


def build_plan(
    batches: Sequence[SpooledBatch],
    models: Mapping[str, ModelTally],
    estimates: Mapping[str, InputEstimate],
    table: PriceTable,
    *,
    token_count_note: str | None = None,
) -> dict[str, Any]:
    model_plans: dict[str, dict[str, Any]] = {}
    low = high = 0.0
    unpriced: list[str] = []
    for model in sorted(models):
        tally, estimate = models[model], estimates[model]
        price = table.price(model)
        entry: dict[str, Any] = {
            "requests": tally.requests,
            "bytes": tally.nbytes,
            "max_tokens": tally.max_tokens,
            **estimate.as_dict(),
            "price": price.as_dict() if price else None,
            "cost_usd": None,
        }
        if price is None:
            unpriced.append(model)
        else:
            model_low = estimate.tokens * price.input / 1_000_000
            model_high = (estimate.high * price.input + tally.max_tokens * price.output) / 1_000_000
            entry["cost_usd"] = {"min": _usd(model_low), "max": _usd(model_high)}
            low, high = low + model_low, high + model_high
        model_plans[model] = entry
    methods = sorted({estimate.method for estimate in estimates.values()})
    return {
        "dry_run": True,
        "total_requests": sum(batch.request_count for batch in batches),
        "total_bytes": sum(batch.nbytes for batch in batches),
        "batches": [
            {
                "requests": batch.request_count,
                "bytes": batch.nbytes,
                "first_custom_id": batch.first_custom_id,
                "last_custom_id": batch.last_custom_id,
            }
            for batch in batches
        ],
        "models": model_plans,
        "cost_usd": None if unpriced else {"min": _usd(low), "max": _usd(high)},
        "unpriced_models": unpriced,
        "input_tokens_method": ", ".join(methods),
        "token_count_note": token_count_note,
        "prices": table.describe(),
    }


def budget_problem(plan: Mapping[str, Any], budget: float) -> str | None:
    """Why ``plan`` may not go ahead under ``budget`` dollars, or None when it fits."""
    unpriced = plan["unpriced_models"]
    if unpriced:
        example = unpriced[0]
        return (
            f"No price is known for model(s) {', '.join(unpriced)}, so the cost cannot be checked against "
            f"max_cost_usd={budget:,.2f}. Nothing was sent. Fix: pass prices={{{example!r}: {{'input': ..., "
            "'output': ...}}} (USD per million tokens at batch prices) on the operator, or use a model from "
            "the price table (airflow_batches.cost.prices)."
        )
    cost = plan["cost_usd"]
    if cost["max"] <= budget:
        return None
    ranked = sorted(plan["models"].items(), key=lambda item: item[1]["cost_usd"]["max"], reverse=True)
    contributors = "; ".join(
        f"{model}: up to ${entry['cost_usd']['max']:,.2f} ({entry['requests']:,} requests, "
        f"{entry['max_tokens']:,} max_tokens, {entry['input_tokens']:,} input tokens {entry['method']})"
        for model, entry in ranked[:_SHOWN_CONTRIBUTORS]
    )
    return (
        f"The requests may cost up to ${cost['max']:,.2f} at batch prices (estimate ${cost['min']:,.2f} for "
        f"the input alone .. ${cost['max']:,.2f} if every reply uses all of its max_tokens), above "
        f"max_cost_usd={budget:,.2f}. Biggest contributors: {contributors}. Nothing was sent. Fix: lower "
        "max_tokens to the longest reply you need, send fewer requests or use a cheaper model, or raise "
        "max_cost_usd; run with dry_run=True to see the whole plan."
    )
