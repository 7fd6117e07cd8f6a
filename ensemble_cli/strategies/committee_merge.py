"""Merging next-token distributions of several members (committee decoding).

Each member contributes its top-k tokens as text with log-probabilities. Candidates are the union
of all members' top-k. A candidate missing from a member's top-k gets that member's k-th (lowest
listed) log-probability: a bound, since the true value can only be lower. So a token one member
loves but the rest never list is scored as if the rest gave it their lowest listed probability:
not ignored (which would let one member's favourite beat a token every member lists) and not
-inf (which would let one member veto a token).

Modes (all weighted by member weight x multiplicity):
- ``mean``: log of the weighted mean of probabilities (a mixture; log-mean-exp). The default.
- ``product``: weighted mean of log-probabilities (a normalised product of experts).
- ``vote``: each member's top-1 token is one vote of its weight; ties go to the higher ``mean`` score.
Remaining ties go to the candidate listed first by the earliest member (its rank order), which makes a
one-member committee pick exactly what greedy decoding of that member picks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

from ..calls import END

MergeMode = Literal["mean", "product", "vote"]


@dataclass(frozen=True)
class Distribution:
    """One member's top-k next tokens, best first: (text or ``END``, log-probability)."""

    candidates: tuple[tuple[str, float], ...]
    weight: float = 1.0

    @property
    def top(self) -> str:
        return self.candidates[0][0]

    @property
    def top_logprob(self) -> float:
        return self.candidates[0][1]

    @property
    def floor(self) -> float:
        return self.candidates[-1][1]

    def logprob(self, text: str) -> float:
        for candidate, lp in self.candidates:
            if candidate == text:
                return lp
        return self.floor


def build_distribution(pairs: Sequence[tuple[str, float]], weight: float = 1.0, temperature: float = 0.0) -> Distribution:
    """Merge duplicate texts (log-sum-exp), rescale by ``temperature`` (when > 0), sort best first."""
    merged: dict[str, float] = {}
    for text, lp in pairs:
        merged[text] = _logaddexp(merged[text], lp) if text in merged else lp
    items = list(merged.items())
    if temperature > 0 and temperature != 1.0 and items:
        scaled = [(t, lp / temperature) for t, lp in items]
        total = _logsumexp([lp for _, lp in scaled])
        covered = _logsumexp([lp for _, lp in items])
        items = [(t, lp - total + covered) for t, lp in scaled]
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], i))
    if not items:
        raise ValueError("a member returned no candidate tokens")
    return Distribution(tuple(items[i] for i in order), weight)


@dataclass(frozen=True)
class MergeResult:
    winner: str
    logprob: float
    """The winner's merged log-probability (``probability`` is its exp)."""
    probability: float
    agreement: float
    scores: tuple[tuple[str, float], ...]
    votes: tuple[tuple[str, float], ...] = ()

    @property
    def is_end(self) -> bool:
        return self.winner == END


def _logaddexp(a: float, b: float) -> float:
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def _logsumexp(values: Sequence[float]) -> float:
    hi = max(values)
    return hi + math.log(sum(math.exp(v - hi) for v in values))


def _candidate_order(dists: Sequence[Distribution]) -> list[str]:
    seen: dict[str, None] = {}
    for dist in dists:
        for text, _ in dist.candidates:
            seen.setdefault(text, None)
    return list(seen)


def mean_scores(dists: Sequence[Distribution], candidates: Sequence[str]) -> list[float]:
    total = math.log(sum(d.weight for d in dists))
    return [
        _logsumexp([math.log(d.weight) + d.logprob(c) for d in dists]) - total for c in candidates
    ]


def product_scores(dists: Sequence[Distribution], candidates: Sequence[str]) -> list[float]:
    total = sum(d.weight for d in dists)
    raw = [sum(d.weight * d.logprob(c) for d in dists) / total for c in candidates]
    norm = _logsumexp(raw)
    return [r - norm for r in raw]


def merge(dists: Sequence[Distribution], mode: MergeMode = "mean") -> MergeResult:
    """The committee's choice for one position."""
    if not dists:
        raise ValueError("nothing to merge")
    candidates = _candidate_order(dists)
    total_weight = sum(d.weight for d in dists)
    means = mean_scores(dists, candidates)
    scores = product_scores(dists, candidates) if mode == "product" else means
    votes: list[float] = []
    if mode == "vote":
        votes = [sum(d.weight for d in dists if d.top == c) / total_weight for c in candidates]
        best = max(range(len(candidates)), key=lambda i: (votes[i], means[i], -i))
    else:
        best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    winner = candidates[best]
    agreement = sum(d.weight for d in dists if d.top == winner) / total_weight
    ranked = sorted(range(len(candidates)), key=lambda i: -scores[i])
    return MergeResult(
        winner=winner,
        logprob=scores[best],
        probability=math.exp(scores[best]),
        agreement=agreement,
        scores=tuple((candidates[i], scores[i]) for i in ranked),
        votes=tuple((candidates[i], votes[i]) for i in ranked) if votes else (),
    )
