"""The price table and the prices= override: batch prices, dated ids, unknown models, parse-time errors."""

from __future__ import annotations

import math

import pytest

from airflow_batches.cost.prices import (
    BATCH_DISCOUNT,
    PRICES_AS_OF,
    PRICES_SOURCE,
    PriceTable,
    validate_prices,
)
from airflow_batches.cost.usage_cost import cost_of_usage


def test_batch_prices_are_half_the_standard_price_for_every_token_kind() -> None:
    price = PriceTable().price("claude-sonnet-4-5")
    assert BATCH_DISCOUNT == 0.5
    # Standard: $3 input, $15 output, $3.75 5-minute cache write, $0.30 cache hit per million tokens.
    assert price is not None
    assert price.as_dict() == pytest.approx(
        {"input": 1.5, "output": 7.5, "cache_write": 1.875, "cache_read": 0.15}
    )


def test_a_dated_model_id_uses_its_alias_row_and_an_unknown_model_has_no_price() -> None:
    table = PriceTable()
    assert table.price("claude-sonnet-4-5-20250929") == table.price("claude-sonnet-4-5")
    assert table.price("claude-3-5-haiku-latest") == table.price("claude-3-5-haiku")
    assert table.price("claude-imaginary-9") is None


def test_the_table_names_its_source_and_date() -> None:
    described = PriceTable(validate_prices({"mine": {"input": 1, "output": 2}})).describe()
    assert described["as_of"] == PRICES_AS_OF and described["source"] == PRICES_SOURCE
    assert described["overridden"] == ["mine"]


def test_an_override_replaces_the_table_and_fills_cache_prices_from_input() -> None:
    table = PriceTable(validate_prices({"claude-haiku-4-5": {"input": 2, "output": 4}}))
    price = table.price("claude-haiku-4-5")
    assert price is not None
    assert price.as_dict() == pytest.approx({"input": 2, "output": 4, "cache_write": 2.5, "cache_read": 0.2})


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"m": {"input": -1, "output": 1}}, r"prices\['m'\]\['input'\] must be a finite number >= 0"),
        ({"m": {"input": math.nan, "output": 1}}, r"prices\['m'\]\['input'\] must be a finite number"),
        ({"m": {"input": 1, "output": math.inf}}, r"prices\['m'\]\['output'\] must be a finite number"),
        ({"m": {"input": 1, "output": 1, "cache_hit": 1}}, r"unknown key\(s\) cache_hit; the keys are"),
        ({"m": {"input": 1}}, r"prices\['m'\] needs 'output'"),
        ({"m": {"input": "1", "output": 1}}, r"must be a number"),
        ({"m": {"input": True, "output": 1}}, r"must be a number"),
        ({"m": 3}, r"prices\['m'\] must be a dict"),
        ({"": {"input": 1, "output": 1}}, r"model names must be non-empty strings"),
        ([("m", 1)], r"prices must be a dict"),
    ],
)
def test_bad_prices_are_named_precisely(prices: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_prices(prices)


def test_cost_of_usage_counts_every_token_kind_and_names_unpriced_models() -> None:
    table = PriceTable(
        validate_prices({"a": {"input": 1, "output": 10, "cache_write": 2, "cache_read": 0.5}})
    )
    usage = {
        "a": {
            "input_tokens": 1_000_000,
            "output_tokens": 100_000,
            "cache_creation_input_tokens": 500_000,
            "cache_read_input_tokens": 2_000_000,
        },
        "b": {"input_tokens": 5, "output_tokens": 5},
    }
    report = cost_of_usage(usage, table)
    assert report["by_model"]["a"]["usd"] == pytest.approx(1 + 1 + 1 + 1)
    assert report["by_model"]["b"]["usd"] is None
    assert report["usd"] is None and report["priced_usd"] == pytest.approx(4)
    assert report["unpriced_models"] == ["b"]
