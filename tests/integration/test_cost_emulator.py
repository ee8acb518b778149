"""Cost plan, budget guard and reported cost of BatchCreateOperator against the real emulator over loopback:
the emulator's stats prove what was (not) sent, and its deterministic usage gives the exact cost."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import results_support

from airflow_batches.cost.prices import PriceTable
from airflow_batches.emulator.testing import RunningEmulator
from airflow_batches.errors import BatchBudgetExceededError
from airflow_batches.hooks import BatchHook
from airflow_batches.operators import BatchCreateOperator, BatchResultsOperator

MODEL = "claude-haiku-4-5"  # in the price table: $0.50 in / $2.50 out per million at batch prices


results_emulator = results_support.results_emulator
hook = results_support.hook


@pytest.fixture
def api(results_emulator: RunningEmulator, hook: BatchHook) -> RunningEmulator:
    """The module's emulator (``results_support``), the connection pointing at it, state and stats reset."""
    results_emulator.reset()
    return results_emulator


def requests(count: int, model: str = MODEL, max_tokens: int = 50) -> list[dict[str, Any]]:
    """Prompts of varied length; the emulator counts ceil(characters / 4) input tokens each."""
    return [
        {
            "custom_id": f"r-{n}",
            "params": {
                "model": model,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": f"prompt {n} " + "w" * (n * 37 % 400)}],
            },
        }
        for n in range(count)
    ]


def true_input_tokens(items: list[dict[str, Any]]) -> int:
    return sum(math.ceil(len(i["params"]["messages"][0]["content"]) / 4) for i in items)


class TI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class StateStore(dict[str, Any]):
    """Airflow's task state store (where the create ledger lives), in memory."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        self.pop(key, None)


def run(operator: BatchCreateOperator) -> Any:
    return operator.execute({"ti": TI(), "task_state_store": StateStore()})  # type: ignore[arg-type]


def test_a_dry_run_returns_the_plan_and_creates_no_batch(api: RunningEmulator) -> None:
    items = requests(30)
    plan = run(BatchCreateOperator(task_id="plan", requests=items, dry_run=True, max_requests_per_batch=20))

    stats = api.stats()
    assert stats["batches_created"] == 0 and stats["requests"].get("create", 0) == 0
    assert stats["requests"]["count_tokens"] == 30  # small input: every request counted
    json.dumps(plan)
    assert plan["dry_run"] is True and plan["total_requests"] == 30
    assert [b["requests"] for b in plan["batches"]] == [20, 10]
    model = plan["models"][MODEL]
    assert model["method"] == "counted" and model["input_tokens"] == true_input_tokens(items)
    assert model["max_tokens"] == 30 * 50
    assert plan["cost_usd"] == {
        "min": pytest.approx(model["input_tokens"] * 0.5 / 1e6),
        "max": pytest.approx((model["input_tokens"] * 0.5 + 1500 * 2.5) / 1e6),
    }
    assert plan["prices"]["as_of"] and plan["prices"]["source"].startswith("https://")


def test_a_large_input_is_sampled_deterministically_and_throttling_is_waited_out(
    api: RunningEmulator,
) -> None:
    items = requests(2000)
    api.set_faults(
        fail_rate=0.3, fail_status=429, fail_ops=["count_tokens"], retry_after_seconds=0.05, seed=1
    )
    operator = BatchCreateOperator(task_id="plan", requests=items, dry_run=True, count_sample_size=60)
    plan = run(operator)
    again = run(operator)

    stats = api.stats()
    assert stats["faults_injected"] > 0 and stats["batches_created"] == 0
    model = plan["models"][MODEL]
    assert model["method"] == "sampled" and model["counted_requests"] == 60
    assert again["models"][MODEL]["input_tokens"] == model["input_tokens"]  # same sample, same answer
    truth = true_input_tokens(items)
    assert abs(model["input_tokens"] - truth) <= model["input_tokens_high"] - model["input_tokens"]
    assert "2 standard errors" in model["error_bound"]


def test_counting_not_possible_falls_back_to_a_local_estimate(
    api: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "anthropic", "host": api.base_url, "password": api.api_key}
    monkeypatch.setenv("AIRFLOW_CONN_BAD_KEY", json.dumps({**conn, "password": "wrong"}))
    api.configure(api_key=api.api_key)  # require the real key: the wrong one gets 401 for count_tokens
    plan = run(BatchCreateOperator(task_id="plan", requests=requests(3), dry_run=True, conn_id="bad_key"))
    assert plan["models"][MODEL]["method"] == "local"
    assert "count_tokens was not possible" in plan["token_count_note"] and "wrong" not in json.dumps(plan)

    refused = api.stats()["requests"]["count_tokens"]
    plan = run(BatchCreateOperator(task_id="plan", requests=requests(3), dry_run=True, count_tokens=False))
    assert plan["models"][MODEL]["method"] == "local"
    assert api.stats()["requests"]["count_tokens"] == refused  # count_tokens=False sends nothing


def test_a_budget_below_the_plan_fails_before_any_create(api: RunningEmulator) -> None:
    operator = BatchCreateOperator(
        task_id="create", requests=requests(40, max_tokens=4000), max_cost_usd=0.01
    )
    with pytest.raises(BatchBudgetExceededError) as failed:
        run(operator)
    message = str(failed.value)
    assert "may cost up to $0.40" in message and "max_cost_usd=0.01" in message
    assert f"{MODEL}: up to $0.40 (40 requests, 160,000 max_tokens" in message
    assert "Nothing was sent" in message and "lower max_tokens" in message
    assert api.stats()["requests"].get("create", 0) == 0 and api.stats()["batches_created"] == 0


def test_a_model_without_a_price_fails_a_budget_unless_prices_cover_it(api: RunningEmulator) -> None:
    items = requests(3, model="claude-emulated")
    with pytest.raises(BatchBudgetExceededError, match=r"No price is known for model\(s\) claude-emulated"):
        run(BatchCreateOperator(task_id="create", requests=items, max_cost_usd=5))
    assert api.stats()["batches_created"] == 0

    priced = BatchCreateOperator(
        task_id="create",
        requests=items,
        max_cost_usd=5,
        prices={"claude-emulated": {"input": 1, "output": 5}},
        poll_interval=0.2,
    )
    group = run(priced)
    assert api.stats()["batches_created"] == 1
    assert group["cost"]["by_model"]["claude-emulated"]["usd"] is not None


def test_within_budget_the_batch_runs_and_the_landed_cost_is_usage_times_prices(
    api: RunningEmulator, tmp_path: Path
) -> None:
    items = requests(25)
    group = run(BatchCreateOperator(task_id="create", requests=items, max_cost_usd=1.0, poll_interval=0.2))
    assert api.stats()["batches_created"] == 1 and group["counts"]["succeeded"] == 25

    manifest = BatchResultsOperator(
        task_id="land", batch_id=group, destination=tmp_path.as_uri(), emit_asset=False
    ).execute({})  # type: ignore[arg-type]

    # The emulator echoes each prompt: output = input tokens (capped by max_tokens=50), no cache use.
    input_tokens = true_input_tokens(items)
    output_tokens = sum(min(math.ceil(len(i["params"]["messages"][0]["content"]) / 4), 50) for i in items)
    price = PriceTable().price(MODEL)
    assert price is not None
    expected = (input_tokens * price.input + output_tokens * price.output) / 1e6
    landed = manifest["cost"]
    assert landed["by_model"][MODEL]["usage"] == {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert landed["usd"] == pytest.approx(expected, abs=1e-6)
    assert group["cost"] == landed  # the create operator's final XCom reports the same cost


def test_bad_budgets_and_prices_fail_when_the_operator_is_built() -> None:
    with pytest.raises(ValueError, match="max_cost_usd must be a finite number of US dollars above 0"):
        BatchCreateOperator(task_id="c", requests=[], max_cost_usd=float("nan"))
    with pytest.raises(ValueError, match=r"prices\['x'\]\['input'\] must be a finite number >= 0"):
        BatchCreateOperator(task_id="c", requests=[], prices={"x": {"input": -1, "output": 1}})
    with pytest.raises(ValueError, match=r"unknown key\(s\) cached"):
        BatchResultsOperator(
            task_id="l", batch_id="b", destination="file:///tmp", prices={"x": {"cached": 1}}
        )
    with pytest.raises(ValueError, match="count_sample_size must be an integer >= 1"):
        BatchCreateOperator(task_id="c", requests=[], count_sample_size=0)


def test_every_resubmit_round_is_planned_against_the_budget_before_it_is_sent(
    api: RunningEmulator, tmp_path: Path
) -> None:
    api.set_faults(transient_errored_rate=1.0)  # every request errors on its first submission only
    operator = BatchCreateOperator(
        task_id="create", requests=requests(5), max_cost_usd=1.0, resubmit_rounds=1, poll_interval=0.2
    )
    group = run(operator)

    stats = api.stats()
    assert stats["batches_created"] == 2 and group["counts"]["succeeded"] == 5
    assert stats["requests"]["count_tokens"] == 5 + 5  # round 1 planned, then round 2 planned again
    # The reported cost covers both rounds: round 1's errored results carry no usage.
    assert group["cost"]["by_model"][MODEL]["usage"]["input_tokens"] == true_input_tokens(requests(5))

    # The merged landing (one line per request) reports the cost of every round's usage, as create does.
    manifest = BatchResultsOperator(
        task_id="land", batch_id=group, destination=tmp_path.as_uri(), emit_asset=False
    ).execute({})  # type: ignore[arg-type]
    assert manifest["cost"] == group["cost"]
