"""The create operator's cost pieces: the plan before sending (dry run, budget) and the cost reported after.

Token counting uses the operator's connection with a service of its own whose retry policy waits out
throttling (``retry-after``) longer than the connection's; when counting is not possible (turned off, no
usable connection, the endpoint refuses) the plan falls back to the local estimate and says why.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from airflow.providers.common.compat.sdk import AirflowNotFoundException

from airflow_batches.api import BatchAPIError, BatchServiceAsync, RetryPolicy, SpooledBatch
from airflow_batches.cost.input_tokens import (
    InputEstimate,
    count_samples,
    estimate_from_counts,
    estimate_locally,
)
from airflow_batches.cost.plan import budget_problem, build_plan, validate_budget
from airflow_batches.cost.prices import PriceTable, validate_prices
from airflow_batches.cost.tally import RequestTally
from airflow_batches.cost.usage_cost import CostReport, add_usage, cost_of_usage
from airflow_batches.errors import BatchBudgetExceededError, ConnectionSettingsError
from airflow_batches.hooks.batch import BatchHook
from airflow_batches.hooks.sync_runner import run_sync
from airflow_batches.results.checker import ResultChecker

__all__ = ["CostSettings", "reported_cost", "validate_cost_settings"]

log = logging.getLogger(__name__)

# Counting sends up to sample_size requests per model: let throttling be waited out, not fail the plan.
COUNT_MAX_RETRIES = 8


@dataclass(frozen=True)
class CostSettings:
    """The create operator's cost arguments, checked: what a plan needs and the budget it must fit."""

    budget: float | None
    table: PriceTable
    count_tokens: bool
    sample_size: int
    concurrency: int

    def tally(self) -> RequestTally:
        return RequestTally(self.sample_size)

    def plan(self, hook: BatchHook, batches: Sequence[SpooledBatch], tally: RequestTally) -> dict[str, Any]:
        """The plan of ``batches`` (tallied in ``tally`` while spooled): input tokens counted if possible."""
        note: str | None = None
        estimates: dict[str, InputEstimate]
        if not self.count_tokens:
            note = "count_tokens=False: input tokens estimated locally"
            estimates = {model: estimate_locally(t) for model, t in tally.models.items()}
        else:
            try:
                counts = _count(hook, tally, self.concurrency)
            except (BatchAPIError, ConnectionSettingsError, AirflowNotFoundException) as exc:
                note = f"count_tokens was not possible ({exc}); input tokens estimated locally"
                log.warning("Token counting failed; estimating locally instead: %s", exc)
                estimates = {model: estimate_locally(t) for model, t in tally.models.items()}
            else:
                estimates = {
                    model: estimate_from_counts(t, counts[model]) for model, t in tally.models.items()
                }
        plan = build_plan(batches, tally.models, estimates, self.table, token_count_note=note)
        log.info(
            "Plan: %d requests in %d batch(es), cost at batch prices %s (unpriced models: %s; input "
            "tokens: %s).",
            plan["total_requests"],
            len(plan["batches"]),
            plan["cost_usd"],
            plan["unpriced_models"] or "none",
            plan["input_tokens_method"],
        )
        return plan

    def check_budget(self, hook: BatchHook, batches: Sequence[SpooledBatch], tally: RequestTally) -> None:
        """Raise ``BatchBudgetExceededError`` unless the plan's maximum fits ``budget``."""
        if self.budget is None:
            return
        plan = self.plan(hook, batches, tally)
        problem = budget_problem(plan, self.budget)
        if problem is not None:
            raise BatchBudgetExceededError(problem)
        log.info("Within budget: at most $%.2f of max_cost_usd=%.2f.", plan["cost_usd"]["max"], self.budget)


def validate_cost_settings(
    max_cost_usd: object, prices: object, count_tokens: bool, sample_size: object, concurrency: object
) -> CostSettings:
    """The create operator's cost arguments, checked when the DAG is parsed."""
    for name, value in (("count_sample_size", sample_size), ("count_concurrency", concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r:.80}")
    return CostSettings(
        budget=validate_budget(max_cost_usd),
        table=PriceTable(validate_prices(prices)),
        count_tokens=count_tokens,
        sample_size=cast(int, sample_size),
        concurrency=cast(int, concurrency),
    )


def _count(hook: BatchHook, tally: RequestTally, concurrency: int) -> dict[str, list[int]]:
    settings = hook.get_settings()

    async def count() -> dict[str, list[int]]:
        async with BatchServiceAsync(
            **settings.service_kwargs(), retry_policy=RetryPolicy(max_retries=COUNT_MAX_RETRIES)
        ) as service:
            return await count_samples(service, tally.models, concurrency=concurrency)

    return run_sync(count)


def reported_cost(hook: BatchHook, batch_ids: Sequence[str], table: PriceTable) -> CostReport | None:
    """The cost of the usage the results report, per model (the results are read, not stored).

    None, with a warning, when the results cannot be read: the batches are done and paid for, and a
    report must not fail the task.
    """

    async def usage(service: BatchServiceAsync) -> dict[str, dict[str, int]]:
        totals: dict[str, dict[str, int]] = {}
        for batch_id in batch_ids:
            checker = ResultChecker(batch_id)
            lines_of = cast("AsyncGenerator[bytes]", service.results_lines(batch_id))
            async with aclosing(lines_of) as lines:
                async for line in lines:
                    checker.check(line)
            add_usage(totals, checker.usage_by_model)
        return totals

    try:
        cost = cost_of_usage(hook.run(usage), table)
    except BatchAPIError as exc:
        log.warning("Could not read the results to report the cost (%s); cost is None.", exc)
        return None
    log.info("Cost at batch prices of the usage reported: %s", cost)
    return cost
