"""What a strategy would ask of each member for one prompt, at worst, said before any call (``--dry-run``).

Each strategy's spec has a ``plan`` that lists, per member and kind of call, a ``Planned``: how many calls
at most, how many times the prompt is billed (once for a call with ``n`` choices or a batched in-process
decode), the worst-case completion tokens, the prompt tokens its later calls gain from earlier replies
(references, debate answers, a growing prefix), and the requests known exactly before any reply (whose
cache entries can be looked up). Upper bounds: a run spends at most this, usually less.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..calls import Request
from .base import Member


@dataclass(frozen=True)
class Planned:
    """Calls of one member, of one kind, for one prompt, at worst."""

    member: Member
    what: str
    """What the calls are (``round 1 samples``, ``layer 2``, ``aggregator``, ``decode steps``)."""
    request: Request
    """What the calls look like: their prompt is counted from its messages."""
    calls: int
    prompts: int
    """How many times the prompt is billed over those calls."""
    completion_tokens: int
    extra_prompt_tokens: int = 0
    exact: tuple[Request, ...] = field(default=())
    """The requests known exactly before any reply (first-round samples with their seeds), one per call."""


def sampled(member: Member, what: str, request: Request, samples: int, exact: bool = True,
            extra_prompt_tokens: int = 0) -> Planned:
    """``samples`` replies of ``member`` to ``request``: one call with n choices where its provider honours n
    (choice j seeded seed + j), else one call each."""
    if samples > 1 and member.provider.capabilities.honours_n:
        one = request.but(n=samples)
        return Planned(member, what, one, 1, 1, samples * request.max_tokens, extra_prompt_tokens,
                       (one,) if exact else ())
    seeds = [None if request.seed is None else request.seed + j for j in range(samples)]
    requests = tuple(request.but(seed=seed) for seed in seeds)
    return Planned(member, what, request, samples, samples, samples * request.max_tokens,
                   samples * extra_prompt_tokens, requests if exact else ())


def decoded(member: Member, what: str, request: Request, sequences: int, steps: int) -> Planned:
    """A decoder's work: ``sequences`` continued for up to ``steps`` tokens. In process, each batched step is
    one call and the prompt is evaluated once; remotely, each sequence's continuation is a call that resends
    the prompt and the text so far (one call per token at worst)."""
    if member.provider.capabilities.batched:
        return Planned(member, what, request, steps, 1, sequences * steps)
    calls = sequences * steps
    growing = sequences * steps * (steps - 1) // 2  # the prefix sent back grows by a token per call
    return Planned(member, what, request, calls, calls, sequences * steps, growing)
