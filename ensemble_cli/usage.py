"""Accounting of one prompt's calls: count, retries, tokens and latency, failed calls included."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from .providers.base import Completion


@dataclass
class Tally:
    """Calls, retries, tokens and latency spent on one prompt."""

    calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    call_latency_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def add(self, completions: Sequence[Completion]) -> None:
        """One call that answered with ``completions`` (its choices)."""
        if not completions:
            return
        first = completions[0]
        self.calls += 1
        self.retries += first.retries
        self.prompt_tokens += sum(c.usage.prompt_tokens for c in completions)
        self.completion_tokens += sum(c.usage.completion_tokens for c in completions)
        self.call_latency_s += first.latency_s

    def add_failure(self, retries: int = 0) -> None:
        """One call that failed for good after ``retries`` retries: it still counts."""
        self.calls += 1
        self.failed_calls += 1
        self.retries += retries

    def add_steps(self, calls: int, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """In-process batched decode steps (each step counts as one call)."""
        self.calls += calls
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "call_latency_s": round(self.call_latency_s, 4),
            "wall_s": round(time.perf_counter() - self.started, 4),
        }
