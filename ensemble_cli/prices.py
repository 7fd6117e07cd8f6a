"""The price table: dollars per million input and output tokens, per ``provider/model``.

The shipped table (``data/prices.yaml``) carries the date its prices were written; a run config's
``prices:`` section overrides or extends it. A model with no price has an unknown cost (``None``),
never a cost of 0; ``provider/*`` prices every model of a provider that has no entry of its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Mapping

import yaml

PER = 1_000_000
"""Prices are per this many tokens."""


@dataclass(frozen=True)
class Price:
    """Dollars per million prompt (input) and completion (output) tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / PER


@dataclass(frozen=True)
class PriceTable:
    """Prices by ``provider/model`` key, and the date of the shipped ones."""

    prices: Mapping[str, Price]
    date: str = ""

    def price_for(self, provider: str, model: str) -> Price | None:
        """The price of ``model`` at ``provider``: its own entry, else the provider's ``*``, else unknown."""
        return self.prices.get(f"{provider}/{model}") or self.prices.get(f"{provider}/*")

    def price_of(self, key: str) -> Price | None:
        """The price for a ``provider/model`` key (the model may itself contain slashes)."""
        provider, _, model = key.partition("/")
        return self.price_for(provider, model)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "PriceTable":
        """This table with the user's entries (``{input, output}`` mappings or objects) on top."""
        if not overrides:
            return self
        merged = dict(self.prices)
        for key, value in overrides.items():
            merged[key] = _price(value)
        return PriceTable(merged, self.date)


def _price(value: Any) -> Price:
    if isinstance(value, Price):
        return value
    if isinstance(value, Mapping):
        return Price(float(value["input"]), float(value["output"]))
    return Price(float(value.input), float(value.output))


@functools.cache
def shipped() -> PriceTable:
    """The table shipped with the package (read once)."""
    text = resources.files("ensemble_cli").joinpath("data/prices.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return PriceTable({key: _price(value) for key, value in data["prices"].items()}, str(data.get("date", "")))


def price_table(overrides: Mapping[str, Any] | None = None) -> PriceTable:
    """The shipped table with a run config's ``prices:`` on top."""
    return shipped().with_overrides(overrides or {})
