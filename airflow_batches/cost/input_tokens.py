"""Input tokens per model: counted with the free ``count_tokens`` endpoint, extrapolated, or guessed locally.

- ``counted``: every request of the model was counted (it has no more requests than the sample size).
- ``sampled``: the deterministic sample was counted and scaled to the model's bytes (ratio estimator: tokens
  per byte of the sample times all bytes). The error bound is two standard errors of that estimate (about
  95%); the plan's maximum uses estimate + bound.
- ``local``: counting was not possible (no key, the endpoint refused, or turned off): one token per
  ``LOCAL_BYTES_PER_TOKEN`` bytes of request JSON, and one per ``LOCAL_BYTES_PER_TOKEN_HIGH`` bytes as the
  bound the maximum uses (JSON overhead makes English prose count high; code and non-Latin scripts have
  more tokens per byte). No statistical bound.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Protocol

from airflow_batches.cost.tally import ModelTally

__all__ = [
    "DEFAULT_COUNT_CONCURRENCY",
    "LOCAL_BYTES_PER_TOKEN",
    "LOCAL_BYTES_PER_TOKEN_HIGH",
    "InputEstimate",
    "TokenCounter",
    "count_samples",
    "estimate_from_counts",
    "estimate_locally",
]

DEFAULT_COUNT_CONCURRENCY = 8
LOCAL_BYTES_PER_TOKEN = 4
LOCAL_BYTES_PER_TOKEN_HIGH = 2


class TokenCounter(Protocol):
    async def count_tokens(self, params: dict[str, object]) -> int: ...


@dataclass(frozen=True, slots=True)
class InputEstimate:
    tokens: int
    high: int  # what the plan's maximum assumes
    method: str  # counted | sampled | local
    counted_requests: int
    error_bound: str

    def as_dict(self) -> dict[str, object]:
        return {
            "input_tokens": self.tokens,
            "input_tokens_high": self.high,
            "method": self.method,
            "counted_requests": self.counted_requests,
            "error_bound": self.error_bound,
        }


def estimate_locally(tally: ModelTally) -> InputEstimate:
    tokens = math.ceil(tally.nbytes / LOCAL_BYTES_PER_TOKEN)
    high = math.ceil(tally.nbytes / LOCAL_BYTES_PER_TOKEN_HIGH)
    return InputEstimate(
        tokens,
        high,
        "local",
        0,
        f"none: a local guess of 1 token per {LOCAL_BYTES_PER_TOKEN} bytes of request JSON; the maximum "
        f"assumes 1 per {LOCAL_BYTES_PER_TOKEN_HIGH} bytes",
    )


def estimate_from_counts(tally: ModelTally, counts: list[int]) -> InputEstimate:
    """Scale the sample's counts (in ``tally.sample()`` order) to all of the model's requests."""
    sizes = [len(data) for _, data in tally.sample()]
    n, total = len(counts), tally.requests
    if n != len(sizes) or n == 0:
        raise ValueError(f"{n} counts for a sample of {len(sizes)} requests")
    if n == total:
        exact = sum(counts)
        return InputEstimate(exact, exact, "counted", n, "exact: every request was counted")
    ratio = sum(counts) / sum(sizes)
    estimate = ratio * tally.nbytes
    if n > 1:
        spread = sum((t - ratio * b) ** 2 for t, b in zip(counts, sizes, strict=True)) / (n - 1)
        standard_error = total * math.sqrt((1 - n / total) * spread / n)
        bound = math.ceil(2 * standard_error)
    else:
        bound = math.ceil(estimate)  # one request says nothing about the spread: allow 100%
    tokens = round(estimate)
    return InputEstimate(
        tokens,
        tokens + bound,
        "sampled",
        n,
        f"±{bound:,} tokens (about 95%: 2 standard errors of a ratio estimate from {n} of {total:,} "
        "requests, scaled by bytes)",
    )


async def count_samples(
    counter: TokenCounter, models: dict[str, ModelTally], *, concurrency: int = DEFAULT_COUNT_CONCURRENCY
) -> dict[str, list[int]]:
    """Count every sampled request, at most ``concurrency`` at a time; the first failure is raised."""
    gate = asyncio.Semaphore(concurrency)

    async def one(data: bytes) -> int:
        async with gate:
            return await counter.count_tokens(json.loads(data)["params"])

    try:
        async with asyncio.TaskGroup() as group:
            tasks = {
                model: [group.create_task(one(data)) for _, data in tally.sample()]
                for model, tally in models.items()
            }
    except ExceptionGroup as failed:  # report the first failure itself, not the group
        raise failed.exceptions[0] from None
    return {model: [task.result() for task in model_tasks] for model, model_tasks in tasks.items()}
