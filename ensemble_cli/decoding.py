"""Decoding several sequences together, token by token: the protocol committee and cot-decode use, and
the decoder for remote providers that continue an exact assistant prefix.

A provider makes a ``Decoder`` (``Provider.decoder``): the embedded model's advances every sequence in
one batched forward pass (``providers/local.py``); ``PrefixDecoder`` continues each sequence through
exact prefix continuation, up to ``want`` greedy tokens per call, concurrently.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

from .calls import END, Request, TopToken
from .errors import CapabilityError, ProviderError

if TYPE_CHECKING:
    from .providers.base import Provider
    from .usage import Tally


@dataclass(frozen=True)
class Position:
    """One sequence's view of its next position: the top-k (text or ``END``, log-probability), best
    first, and the token it emits greedily there (``END`` to stop)."""

    top: tuple[tuple[str, float], ...]
    greedy: str


class Decoder(Protocol):
    """Several sequences of one provider continued together (committee groups, CoT branches).

    Each sequence starts from its own request (messages or raw prompt, plus prefix). ``positions``
    returns, per asked sequence, the positions that follow its current text: one for an in-process
    batched decoder (one forward pass for all sequences), up to ``want`` greedy ones for a remote
    decoder (one call per sequence, concurrently). ``extend`` appends chosen text to a sequence.
    """

    async def positions(self, sequences: Sequence[int], want: int) -> dict[int, list[Position]]: ...

    def extend(self, sequence: int, text: str) -> None: ...

    def text(self, sequence: int) -> str:
        """The exact text appended to ``sequence`` so far (bytes joined before decoding)."""
        ...

    async def aclose(self) -> None: ...


def pairs(top: Sequence[TopToken]) -> tuple[tuple[str, float], ...]:
    return tuple((END if t.is_end else t.text, t.logprob) for t in top)


class PrefixDecoder:
    """Sequences continued through a provider's exact prefix continuation."""

    def __init__(self, provider: "Provider", requests: Sequence[Request], top_k: int, tally: "Tally",
                 label: str = "") -> None:
        self.provider = provider
        self.requests = list(requests)
        self.top_k = min(top_k, provider.capabilities.max_top_logprobs)
        self.tally = tally
        self.label = label or provider.label
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
