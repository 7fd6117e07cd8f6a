"""A decoder for remote providers: each sequence is one exact prefix continuation per step.

Every ``positions`` call continues each asked sequence's text greedily for up to ``want`` tokens with
top-k log-probabilities (one call per sequence, concurrently), so a committee can draft several
positions per call and a CoT branch can be decoded to its end in one call.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Sequence

from ..errors import CapabilityError, ProviderError
from .base import END, Position, Provider, Request, TopToken

if TYPE_CHECKING:
    from ..usage import Tally


def pairs(top: Sequence[TopToken]) -> tuple[tuple[str, float], ...]:
    return tuple((END if t.is_end else t.text, t.logprob) for t in top)


class PrefixDecoder:
    """Sequences continued through a provider's exact prefix continuation."""

    def __init__(self, provider: Provider, requests: Sequence[Request], top_k: int, tally: "Tally",
                 label: str = "") -> None:
        self.provider = provider
        self.requests = list(requests)
        self.top_k = min(top_k, provider.capabilities.max_top_logprobs)
        self.tally = tally
        self.label = label or getattr(provider, "label", provider.name)
        self.appended = ["" for _ in self.requests]

    def extend(self, sequence: int, text: str) -> None:
        self.appended[sequence] += text

    def text(self, sequence: int) -> str:
        return self.appended[sequence]

    async def _one(self, sequence: int, want: int) -> list[Position]:
        base = self.requests[sequence]
        request = base.but(max_tokens=want, temperature=0.0, top_logprobs=self.top_k, n=1,
                           prefix=base.prefix + self.appended[sequence])
        try:
            completion = (await self.provider.complete(request))[0]
        except ProviderError as exc:
            self.tally.add_failure(exc.retries)
            raise
        self.tally.add([completion])
        if any(not token.top for token in completion.tokens) or (completion.text and not completion.tokens):
            raise CapabilityError(f"{self.label}: no top log-probabilities came back (the server ignores logprobs "
                                  "or top_logprobs), so it cannot sit in a committee or cot-decode")
        positions = [Position(pairs(token.top), token.text) for token in completion.tokens]
        if completion.finish_reason == "stop" and len(positions) < want:
            end_top = pairs(completion.end_logprobs) if completion.end_logprobs else ((END, 0.0),)
            positions.append(Position(end_top, END))
        if not positions:
            raise ProviderError(f"{self.label}: the provider returned no token and no stop "
                                f"(finish_reason {completion.finish_reason!r})")
        return positions

    async def positions(self, sequences: Sequence[int], want: int) -> dict[int, list[Position]]:
        found = await asyncio.gather(*(self._one(s, want) for s in sequences))
        return dict(zip(sequences, found))

    async def aclose(self) -> None:
        """Nothing is held between calls."""
