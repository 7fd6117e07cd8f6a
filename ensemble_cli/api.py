"""One-call Python functions for each strategy: pass a prompt and a provider (or members), get a result.

    from ensemble_cli import committee
    from ensemble_cli.providers.local import LocalProvider
    result = committee("Name a colour.", LocalProvider(None), n=3, merge="vote", max_tokens=20)
    print(result.output)

Each function builds members, runs the strategy once and returns its ``StrategyResult``; the
strategy classes (``Committee``, ``Vote``, ...) are there for repeated or concurrent use.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from .config import (
    CommitteeSettings, CotDecodeSettings, MemberConfig, MoaSettings, RunConfig, VerbalizeSettings, VoteSettings,
)
from .events import Emit, ignore
from .inputs import PromptItem, from_prompt
from .providers.base import Provider
from .providers.registry import ProviderRegistry
from .strategies.base import Member, StrategyResult
from .strategies.committee import Committee
from .strategies.cot_decode import CotDecode
from .strategies.moa import MixtureOfAgents
from .strategies.verbalize import Verbalize
from .strategies.vote import Vote

Members = Provider | Member | Sequence[Member]


def provider(name: str = "local", model: str | None = None, *, base_url: str | None = None,
             api_key_env: str | None = None, **run: Any) -> Provider:
    """A provider by backend name, as ``--provider`` would build it; ``run`` takes RunConfig keys such as
    ``max_concurrency``, ``timeout`` or ``max_retries``."""
    registry = ProviderRegistry(RunConfig(**run))
    return registry.provider_for(MemberConfig(name=name, provider=name, model=model, base_url=base_url,
                                              api_key_env=api_key_env))


def as_members(members: Members, n: int = 1, temperature: float = 0.0, max_tokens: int = 256) -> list[Member]:
    """A provider becomes ``n`` members named m1..mN; members are used as given."""
    if isinstance(members, Member):
        return [members]
    if isinstance(members, Sequence):
        return list(members)
    return [Member(f"m{i + 1}", members, temperature=temperature, max_tokens=max_tokens) for i in range(n)]


def _item(prompt: str | PromptItem) -> PromptItem:
    return prompt if isinstance(prompt, PromptItem) else from_prompt(prompt)


def _run(strategy: Any, prompt: str | PromptItem, emit: Emit) -> StrategyResult:
    return asyncio.run(strategy.run(_item(prompt), emit))


def committee(prompt: str | PromptItem, members: Members, *, n: int = 1, max_tokens: int = 256,
              emit: Emit = ignore, **settings: Any) -> StrategyResult:
    """Consensus decoding; ``settings`` are ``CommitteeSettings`` fields (merge, top_k, draft, gate, ...)."""
    chosen = as_members(members, n, max_tokens=max_tokens)
    return _run(Committee(chosen, CommitteeSettings(**settings), max_tokens), prompt, emit)


def vote(prompt: str | PromptItem, members: Members, *, n: int = 1, temperature: float = 0.0,
         max_tokens: int = 256, seed: int | None = None, judge: Member | None = None,
         emit: Emit = ignore, **settings: Any) -> StrategyResult:
    """Voting; ``settings`` are ``VoteSettings`` fields (samples, extract, method, rounds, ...)."""
    chosen = as_members(members, n, temperature, max_tokens)
    return _run(Vote(chosen, VoteSettings(**settings), judge, seed), prompt, emit)


def moa(prompt: str | PromptItem, members: Members, *, n: int = 1, temperature: float = 0.0,
        max_tokens: int = 256, seed: int | None = None, aggregator: Member | None = None,
        emit: Emit = ignore, **settings: Any) -> StrategyResult:
    """Mixture-of-Agents; ``settings`` are ``MoaSettings`` fields (layers, self_moa, ...)."""
    chosen = as_members(members, n, temperature, max_tokens)
    return _run(MixtureOfAgents(chosen, aggregator, MoaSettings(**settings), seed), prompt, emit)


def cot_decode(prompt: str | PromptItem, members: Members, *, max_tokens: int = 256,
               emit: Emit = ignore, **settings: Any) -> StrategyResult:
    """CoT-decoding; ``settings`` are ``CotDecodeSettings`` fields (k, extract, aggregate, ...)."""
    return _run(CotDecode(as_members(members), CotDecodeSettings(**settings), max_tokens), prompt, emit)


def verbalize(prompt: str | PromptItem, members: Members, *, temperature: float = 0.0, max_tokens: int = 512,
              seed: int | None = None, emit: Emit = ignore, **settings: Any) -> StrategyResult:
    """Verbalized Sampling; ``settings`` are ``VerbalizeSettings`` fields (k, variant, sample, ...)."""
    chosen = as_members(members, 1, temperature, max_tokens)
    return _run(Verbalize(chosen, VerbalizeSettings(**settings), seed, max_tokens), prompt, emit)
