"""The strategies by name: how each is built from a run config and its resolved, bound members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config import RunConfig
from .strategies.base import Member, Strategy

STRATEGY_NAMES = ("committee", "vote", "moa", "cot-decode", "verbalize")


@dataclass
class Bound:
    """A roster's members bound to providers, by role."""

    members: list[Member]
    aggregator: Member | None = None
    judge: Member | None = None
    fallback: Member | None = None


def _committee(config: RunConfig, bound: Bound) -> Strategy:
    from .strategies.committee import Committee

    return Committee(bound.members, config.committee, config.max_tokens)


def _vote(config: RunConfig, bound: Bound) -> Strategy:
    from .strategies.vote import Vote

    return Vote(bound.members, config.vote, bound.judge, config.seed)


def _moa(config: RunConfig, bound: Bound) -> Strategy:
    from .strategies.moa import MixtureOfAgents

    assert bound.aggregator is not None, "moa rosters always have an aggregator"
    return MixtureOfAgents(bound.members, bound.aggregator, config.moa, config.seed, bound.fallback)


def _cot_decode(config: RunConfig, bound: Bound) -> Strategy:
    from .strategies.cot_decode import CotDecode

    return CotDecode(bound.members, config.cot_decode, config.max_tokens)


def _verbalize(config: RunConfig, bound: Bound) -> Strategy:
    from .strategies.verbalize import Verbalize

    return Verbalize(bound.members, config.verbalize, config.seed, config.max_tokens)


BUILDERS: dict[str, Callable[[RunConfig, Bound], Strategy]] = {
    "committee": _committee, "vote": _vote, "moa": _moa, "cot-decode": _cot_decode, "verbalize": _verbalize,
}
