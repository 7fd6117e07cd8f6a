"""Accounting of one prompt's calls: count, retries, tokens, latency, cost, cache hits and CPU seconds.

Each call is accounted under its ``provider/model``, so that the record can price it from the price
table (``prices.py``): a model without a price makes the cost unknown (``None``), never 0. A call
served from the cache costs nothing; the embedded model is free and reports its CPU seconds instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

from .prices import PriceTable, shipped
from .calls import Completion

UNKNOWN_MODEL = "unknown/unknown"


@dataclass
class Counters:
    """Calls and tokens, and the tokens billed (those not served from the cache): a prompt's, and each
    model's share of it, are counted by the same ``count``."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    billed_prompt_tokens: int = 0
    billed_completion_tokens: int = 0

    def count(self, calls: int, prompt: int, completion: int, cached: bool = False) -> None:
        self.calls += calls
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        if cached:
            self.cached_calls += calls
        else:
            self.billed_prompt_tokens += prompt
            self.billed_completion_tokens += completion

    def merge(self, other: "Counters") -> None:
        """Add every counter of ``other`` to these."""
        for counter in fields(Counters):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))


@dataclass
class ModelUsage(Counters):
    """One model's share of a prompt's calls."""

    def cost(self, key: str, prices: PriceTable) -> float | None:
        if not (self.billed_prompt_tokens or self.billed_completion_tokens):
            return 0.0  # nothing was billed (every call came from the cache)
        price = prices.price_of(key)
        return None if price is None else price.cost(self.billed_prompt_tokens, self.billed_completion_tokens)


def model_key(provider: str, model: str) -> str:
    return f"{provider or 'unknown'}/{model or 'unknown'}"


@dataclass
class Tally(Counters):
    """Calls, retries, tokens, latency and cost spent on one prompt. ``prices`` defaults to the shipped table."""

    failed_calls: int = 0
    retries: int = 0
    call_latency_s: float = 0.0
    cpu_s: float = 0.0
    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    prices: PriceTable | None = None
    started: float = field(default_factory=time.perf_counter)

    def _model(self, key: str) -> ModelUsage:
        found = self.by_model.get(key)
        if found is None:
            found = self.by_model[key] = ModelUsage()
        return found

    def add(self, completions: Sequence[Completion]) -> None:
        """One call that answered with ``completions`` (its choices)."""
        if not completions:
            return
        first = completions[0]
        prompt = sum(c.usage.prompt_tokens for c in completions)
        completion = sum(c.usage.completion_tokens for c in completions)
        for counters in (self, self._model(model_key(first.provider, first.model))):
            counters.count(1, prompt, completion, cached=first.cached)
        self.retries += first.retries
        self.call_latency_s += first.latency_s
        self.cpu_s += sum(c.cpu_s for c in completions)

    def add_failure(self, retries: int = 0) -> None:
        """One call that failed for good after ``retries`` retries: it still counts (providers bill none)."""
        self.calls += 1
        self.failed_calls += 1
        self.retries += retries

    def add_steps(self, calls: int, prompt_tokens: int = 0, completion_tokens: int = 0,
                  model: str = UNKNOWN_MODEL, cpu_s: float = 0.0) -> None:
        """In-process batched decode steps of ``model`` (a ``provider/model`` key; each step counts as one
        call), and the CPU seconds they took."""
        for counters in (self, self._model(model)):
            counters.count(calls, prompt_tokens, completion_tokens)
        self.cpu_s += cpu_s

    def absorb(self, other: "Tally") -> None:
        """Add the calls of ``other`` (a nested strategy's, counted apart: a cascade's tier) to this tally."""
        self.merge(other)
        self.failed_calls += other.failed_calls
        self.retries += other.retries
        self.call_latency_s += other.call_latency_s
        self.cpu_s += other.cpu_s
        for key, usage in other.by_model.items():
            self._model(key).merge(usage)

    def cost_usd(self) -> float | None:
        """Dollars spent on the calls: ``None`` if any model called has no price."""
        prices = self.prices or shipped()
        total = 0.0
        for key, usage in self.by_model.items():
            cost = usage.cost(key, prices)
            if cost is None:
                return None
            total += cost
        return total

    def as_dict(self) -> dict[str, Any]:
        prices = self.prices or shipped()
        cost = self.cost_usd()
        return {
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "call_latency_s": round(self.call_latency_s, 4),
            "wall_s": round(time.perf_counter() - self.started, 4),
            "cost_usd": None if cost is None else round(cost, 8),
            "cached_calls": self.cached_calls,
            "cpu_s": round(self.cpu_s, 4),
            "by_model": {
                key: {
                    "calls": usage.calls,
                    "cached_calls": usage.cached_calls,
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "cost_usd": None if (c := usage.cost(key, prices)) is None else round(c, 8),
                }
                for key, usage in self.by_model.items()
            },
        }
