"""Batch prices per model, in USD per million tokens, and the per-operator ``prices=`` override.

Figures: Anthropic's public pricing page, https://platform.claude.com/docs/en/about-claude/pricing ("Model
pricing": base input, 5-minute cache writes, cache hits, output; and "Batch processing": 50% of standard on
all of them), read on 2026-12-01. Prices change: check that page, and pass ``prices=`` for what differs.

Only models with a row on that page are listed, under their API ids; a dated id (``...-20250929``) uses the
row of its alias. A model not listed has no price: estimates name it instead of counting it as free.
Cache writes are priced at the 5-minute rate (1-hour writes cost 1.6x that).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "BATCH_DISCOUNT",
    "PRICES_AS_OF",
    "PRICES_SOURCE",
    "PRICE_FIELDS",
    "ModelPrice",
    "PriceTable",
    "validate_prices",
]

PRICES_AS_OF = "2026-12-01"
PRICES_SOURCE = "https://platform.claude.com/docs/en/about-claude/pricing"
BATCH_DISCOUNT = 0.5
PRICE_FIELDS = ("input", "output", "cache_write", "cache_read")

# Standard (not batch) USD per million tokens: input, 5-minute cache write, cache hit, output.
_STANDARD: dict[str, tuple[float, float, float, float]] = {
    "claude-opus-4-8": (5.00, 6.25, 0.50, 25.00),
    "claude-opus-4-7": (5.00, 6.25, 0.50, 25.00),
    "claude-opus-4-6": (5.00, 6.25, 0.50, 25.00),
    "claude-opus-4-5": (5.00, 6.25, 0.50, 25.00),
    "claude-opus-4-1": (15.00, 18.75, 1.50, 75.00),
    "claude-opus-4-0": (15.00, 18.75, 1.50, 75.00),
    "claude-opus-4": (15.00, 18.75, 1.50, 75.00),
    "claude-sonnet-4-6": (3.00, 3.75, 0.30, 15.00),
    "claude-sonnet-4-5": (3.00, 3.75, 0.30, 15.00),
    "claude-sonnet-4-0": (3.00, 3.75, 0.30, 15.00),
    "claude-sonnet-4": (3.00, 3.75, 0.30, 15.00),
    "claude-haiku-4-5": (1.00, 1.25, 0.10, 5.00),
    "claude-3-5-haiku": (0.80, 1.00, 0.08, 4.00),
    "claude-3-haiku": (0.25, 0.30, 0.03, 1.25),
}
_DATE_SUFFIX = re.compile(r"-(?:\d{8}|latest)$")
# For an override that gives only input and output: Anthropic's cache multipliers of the input price.
_CACHE_WRITE_FACTOR = 1.25
_CACHE_READ_FACTOR = 0.1


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens as billed for a batch (the discount already applied)."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _batch(standard: tuple[float, float, float, float]) -> ModelPrice:
    input_, cache_write, cache_read, output = (price * BATCH_DISCOUNT for price in standard)
    return ModelPrice(input=input_, output=output, cache_write=cache_write, cache_read=cache_read)


def validate_prices(prices: object, *, where: str = "prices") -> dict[str, ModelPrice]:
    """Check a ``prices={model: {"input", "output", "cache_write", "cache_read"}}`` override.

    Values are USD per million tokens at batch prices; ``input`` and ``output`` are required, the cache
    prices default to 1.25x / 0.1x ``input``. Raises ``ValueError`` naming the model, the key and the fix.
    """
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise ValueError(
            f"{where} must be a dict {{model: {{'input': ..., 'output': ...}}}}, got {type(prices).__name__}"
        )
    checked: dict[str, ModelPrice] = {}
    for model, entry in prices.items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"{where}: model names must be non-empty strings, got {model!r:.80}")
        here = f"{where}[{model!r}]"
        if not isinstance(entry, Mapping):
            raise ValueError(
                f"{here} must be a dict with 'input' and 'output' (USD per million tokens at batch "
                f"prices), got {entry!r:.80}"
            )
        unknown = sorted(str(key) for key in entry if key not in PRICE_FIELDS)
        if unknown:
            raise ValueError(
                f"{here} has unknown key(s) {', '.join(unknown)}; the keys are {', '.join(PRICE_FIELDS)}"
            )
        for key in ("input", "output"):
            if key not in entry:
                raise ValueError(f"{here} needs {key!r} (USD per million tokens at batch prices)")
        values = {key: _price_value(entry[key], f"{here}[{key!r}]") for key in entry}
        values.setdefault("cache_write", values["input"] * _CACHE_WRITE_FACTOR)
        values.setdefault("cache_read", values["input"] * _CACHE_READ_FACTOR)
        checked[model] = ModelPrice(**values)
    return checked


def _price_value(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} must be a number (USD per million tokens), got {value!r:.80}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a finite number >= 0 (USD per million tokens), got {value!r}")
    return float(value)


class PriceTable:
    """The package's batch prices with an operator's overrides on top."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self._overrides = dict(overrides or {})

    def price(self, model: str) -> ModelPrice | None:
        """The batch price of ``model`` (an override, its own row, or its alias's row), or None."""
        if model in self._overrides:
            return self._overrides[model]
        standard = _STANDARD.get(model) or _STANDARD.get(_DATE_SUFFIX.sub("", model))
        return _batch(standard) if standard else None

    def describe(self) -> dict[str, Any]:
        """Where the prices come from, for a plan or a manifest."""
        return {
            "basis": f"batch prices ({BATCH_DISCOUNT:.0%} of standard), USD per million tokens",
            "as_of": PRICES_AS_OF,
            "source": PRICES_SOURCE,
            "overridden": sorted(self._overrides),
        }
