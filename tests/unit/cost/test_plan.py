"""The plan pieces: the deterministic sample, the token estimates and their bounds, the cost range, the
budget message."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from airflow_batches.api.spool import spool_batches
from airflow_batches.cost.input_tokens import estimate_from_counts, estimate_locally
from airflow_batches.cost.plan import budget_problem, build_plan, validate_budget
from airflow_batches.cost.prices import PriceTable, validate_prices
from airflow_batches.cost.tally import RequestTally


def request(n: int, model: str = "m", text: str | None = None, max_tokens: int = 100) -> dict[str, Any]:
    content = text if text is not None else "x" * (10 + n % 50)
    return {
        "custom_id": f"r-{n}",
        "params": {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": content}],
        },
    }


def tally_of(items: list[dict[str, Any]], tmp_path: Path, sample_size: int = 10) -> tuple[Any, RequestTally]:
    tally = RequestTally(sample_size)
    batches = spool_batches(items, spool_dir=tmp_path, observe=tally)
    return batches, tally


def test_the_tally_counts_per_model_and_samples_independently_of_order(tmp_path: Path) -> None:
    items = [request(n, model="a" if n % 3 else "b", max_tokens=n + 1) for n in range(200)]
    _, tally = tally_of(items, tmp_path)
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    _, again = tally_of(shuffled, tmp_path)
    assert tally.models["a"].requests + tally.models["b"].requests == 200
    assert tally.models["b"].max_tokens == sum(n + 1 for n in range(0, 200, 3))
    for model in ("a", "b"):
        assert len(tally.models[model].sample()) == 10
        assert tally.models[model].sample() == again.models[model].sample()
    total_bytes = sum(b.nbytes for b in tally_of(items, tmp_path)[0])
    assert tally.models["a"].nbytes + tally.models["b"].nbytes < total_bytes  # body framing not counted


def test_a_small_input_is_counted_whole(tmp_path: Path) -> None:
    _, tally = tally_of([request(n) for n in range(4)], tmp_path)
    estimate = estimate_from_counts(tally.models["m"], [5, 6, 7, 8])
    assert (estimate.tokens, estimate.high, estimate.method, estimate.counted_requests) == (
        26,
        26,
        "counted",
        4,
    )


def test_a_sample_scales_by_bytes_with_a_bound_that_holds(tmp_path: Path) -> None:
    rng = random.Random(3)
    texts = ["word " * rng.randint(5, 400) for _ in range(2000)]
    items = [request(n, text=text) for n, text in enumerate(texts)]
    _, tally = tally_of(items, tmp_path, sample_size=100)
    model = tally.models["m"]
    # A tokenizer where tokens track text length with noise, as real ones do.
    true_tokens = {f"r-{n}": len(text) // 4 + rng.randint(0, 20) for n, text in enumerate(texts)}
    counts = [true_tokens[custom_id] for custom_id, _ in model.sample()]
    estimate = estimate_from_counts(model, counts)
    truth = sum(true_tokens.values())
    assert estimate.method == "sampled" and estimate.counted_requests == 100
    assert abs(estimate.tokens - truth) <= estimate.high - estimate.tokens
    assert estimate.high - estimate.tokens < 0.1 * truth  # the bound is informative, not just huge
    assert "2 standard errors" in estimate.error_bound


def test_the_local_estimate_says_it_has_no_bound(tmp_path: Path) -> None:
    _, tally = tally_of([request(n) for n in range(3)], tmp_path)
    estimate = estimate_locally(tally.models["m"])
    nbytes = tally.models["m"].nbytes
    assert (estimate.tokens, estimate.high) == (math.ceil(nbytes / 4), math.ceil(nbytes / 2))
    assert estimate.method == "local" and estimate.error_bound.startswith("none")


def test_the_plan_prices_min_as_input_and_max_as_input_plus_every_max_tokens(tmp_path: Path) -> None:
    items = [request(n, model="a", max_tokens=1000) for n in range(3)] + [request(9, model="zz")]
    batches, tally = tally_of(items, tmp_path)
    table = PriceTable(validate_prices({"a": {"input": 2, "output": 10}}))
    estimates = {
        "a": estimate_from_counts(tally.models["a"], [100, 100, 100]),
        "zz": estimate_from_counts(tally.models["zz"], [7]),
    }
    plan = build_plan(batches, tally.models, estimates, table)
    json.dumps(plan)  # an XCom value
    assert plan["dry_run"] is True and plan["total_requests"] == 4
    assert plan["batches"] == [
        {"requests": 4, "bytes": batches[0].nbytes, "first_custom_id": "r-0", "last_custom_id": "r-9"}
    ]
    a = plan["models"]["a"]
    assert (a["requests"], a["input_tokens"], a["max_tokens"]) == (3, 300, 3000)
    assert a["cost_usd"] == {"min": pytest.approx(300 * 2 / 1e6), "max": pytest.approx((600 + 30000) / 1e6)}
    assert plan["models"]["zz"]["cost_usd"] is None
    assert plan["cost_usd"] is None and plan["unpriced_models"] == ["zz"]


def test_the_budget_message_names_estimate_budget_contributors_and_fix(tmp_path: Path) -> None:
    items = [request(n, model="a", max_tokens=1000) for n in range(3)] + [
        request(9, model="b", max_tokens=10)
    ]
    batches, tally = tally_of(items, tmp_path)
    table = PriceTable(validate_prices({"a": {"input": 2, "output": 10}, "b": {"input": 1, "output": 1}}))
    estimates = {m: estimate_from_counts(t, [10] * t.requests) for m, t in tally.models.items()}
    plan = build_plan(batches, tally.models, estimates, table)
    assert budget_problem(plan, 1.0) is None
    problem = budget_problem(plan, 0.01)
    assert problem is not None
    assert "up to $0.03" in problem and "max_cost_usd=0.01" in problem
    assert problem.index("a: up to") < problem.index("b: up to")  # biggest first
    assert "Nothing was sent" in problem and "lower max_tokens" in problem


def test_a_budget_with_an_unpriced_model_fails_and_says_how_to_price_it(tmp_path: Path) -> None:
    batches, tally = tally_of([request(1, model="claude-unknown")], tmp_path)
    plan = build_plan(
        batches,
        tally.models,
        {"claude-unknown": estimate_locally(tally.models["claude-unknown"])},
        PriceTable(),
    )
    problem = budget_problem(plan, 100.0)
    assert problem is not None
    assert (
        "No price is known for model(s) claude-unknown" in problem and "prices={'claude-unknown'" in problem
    )


@pytest.mark.parametrize("budget", [0, -5, math.nan, math.inf, "10", True])
def test_bad_budgets_are_refused(budget: object) -> None:
    with pytest.raises(ValueError, match="max_cost_usd must be"):
        validate_budget(budget)
