"""When to stop sampling: Adaptive-Consistency's Beta stopping rule, and its replay over written replies.

After each step the counts of the two leading answers, ``a`` and ``b``, give a Beta(a + 1, b + 1)
posterior over the leader's share of the two; sampling stops once the posterior probability that the
leader is the more likely answer, P(p > 1/2), reaches ``stop_confidence`` (Aggarwal et al., "Let's
Sample Step by Step: Adaptive-Consistency for Efficient Reasoning and Coding with LLMs", EMNLP 2023).
Counts are weighted where the method weighs (member weights, answer-span confidences), scaled so that
their total is the number of counted votes: weights say who counts more, not how much evidence there is.

Samples are drawn round-robin over members, in ``schedule`` steps: ``min_samples`` first, then ``step``
more at a time, up to the cap. ``replay`` runs the same rule over replies already written (a fixed-budget
vote's record), taking them in the order a live adaptive vote would have drawn them: zero calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from .vote_counting import Ballot, TallyMethod, VoteTable, tally


def posterior(leader: float, second: float) -> float:
    """P(p > 1/2) for p ~ Beta(leader + 1, second + 1): how sure the counts are that the leader leads."""
    from scipy.special import betainc

    return float(betainc(second + 1.0, leader + 1.0, 0.5))


def evidence(table: VoteTable) -> tuple[float, float]:
    """The two leading scores, scaled so that all scores add up to the number of votes counted."""
    votes = sum(row.votes for row in table.rows)
    total = table.total
    if not table.rows or total <= 0:
        return 0.0, 0.0
    scale = votes / total
    second = table.rows[1].score if len(table.rows) > 1 else 0.0
    return table.rows[0].score * scale, second * scale


def settled(table: VoteTable) -> float:
    """The posterior of the table's leader (0 where nobody voted)."""
    if table.winner is None:
        return 0.0
    return posterior(*evidence(table))


def schedule(cap: int, min_samples: int, step: int) -> Iterator[int]:
    """How many samples have been drawn after each step: min_samples, then step more at a time, to the cap."""
    drawn = min(min_samples, cap)
    yield drawn
    while drawn < cap:
        drawn = min(drawn + step, cap)
        yield drawn


def draw_order(members: Sequence[str], per_member: int) -> list[tuple[str, int]]:
    """(member, sample index) in the order samples are drawn: round-robin over members."""
    return [(member, index) for index in range(per_member) for member in members]


@dataclass(frozen=True)
class Check:
    """The rule's reading after one step."""

    samples: int
    leader: str | None
    posterior: float

    def as_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "leader": self.leader, "posterior": round(self.posterior, 6)}


@dataclass(frozen=True)
class Replayed:
    """Where the rule stops over written replies: how many were drawn, why, and the vote over them."""

    drawn: int
    reason: str
    checks: list[Check]
    table: VoteTable


def replay(ballots: Sequence[Ballot], method: TallyMethod, stop_confidence: float, min_samples: int,
           step: int) -> Replayed:
    """The adaptive rule over ``ballots`` already in draw order: the prefix it would have stopped at."""
    checks: list[Check] = []
    table = tally([], method)
    drawn = 0
    for drawn in schedule(len(ballots), min_samples, step):
        table = tally(ballots[:drawn], method)
        check = Check(drawn, table.winner, settled(table))
        checks.append(check)
        if check.posterior >= stop_confidence:
            return Replayed(drawn, "settled", checks, table)
    return Replayed(drawn, "cap", checks, table)
