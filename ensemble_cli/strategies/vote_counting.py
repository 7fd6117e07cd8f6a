"""Counting votes: majority, weighted, confidence-weighted tallies, Borda counts and instant-runoff.

Ties are broken by one documented rule, in order: higher score, more votes, higher mean confidence,
then the answer that was given first (reply order). Abstentions (no extractable answer) never vote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

TallyMethod = Literal["majority", "weighted", "confidence"]


@dataclass(frozen=True)
class Ballot:
    member: str
    answer: str | None
    weight: float = 1.0
    confidence: float | None = None
    order: int = 0


@dataclass
class Row:
    answer: str
    score: float = 0.0
    votes: int = 0
    members: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    first: int = 0

    @property
    def mean_confidence(self) -> float:
        return sum(self.confidences) / len(self.confidences) if self.confidences else 0.0

    def as_dict(self) -> dict:
        return {"answer": self.answer, "votes": self.votes, "weight": round(self.score, 6), "members": self.members}


@dataclass
class VoteTable:
    rows: list[Row]
    abstentions: list[str]
    method: str

    @property
    def winner(self) -> str | None:
        return self.rows[0].answer if self.rows else None

    @property
    def total(self) -> float:
        return sum(r.score for r in self.rows)

    @property
    def agreement(self) -> float:
        return self.rows[0].score / self.total if self.rows and self.total > 0 else 0.0

    @property
    def margin(self) -> float:
        if not self.rows or self.total <= 0:
            return 0.0
        second = self.rows[1].score if len(self.rows) > 1 else 0.0
        return (self.rows[0].score - second) / self.total

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "winner": self.winner,
            "agreement": round(self.agreement, 6),
            "margin": round(self.margin, 6),
            "table": [r.as_dict() for r in self.rows],
            "abstentions": self.abstentions,
        }


def _rank(rows: dict[str, Row]) -> list[Row]:
    return sorted(rows.values(), key=lambda r: (-r.score, -r.votes, -r.mean_confidence, r.first))


def tally(ballots: Sequence[Ballot], method: TallyMethod = "majority") -> VoteTable:
    rows: dict[str, Row] = {}
    abstentions = []
    for ballot in ballots:
        if ballot.answer is None:
            abstentions.append(ballot.member)
            continue
        row = rows.setdefault(ballot.answer, Row(ballot.answer, first=ballot.order))
        row.first = min(row.first, ballot.order)
        row.votes += 1
        row.members.append(ballot.member)
        if ballot.confidence is not None:
            row.confidences.append(ballot.confidence)
        if method == "majority":
            row.score += 1.0
        elif method == "weighted":
            row.score += ballot.weight
        else:
            row.score += ballot.weight * (ballot.confidence if ballot.confidence is not None else 1.0)
    return VoteTable(_rank(rows), abstentions, method)


def borda(rankings: Sequence[Sequence[str]], candidates: Sequence[str], ballots: Sequence[Ballot]) -> VoteTable:
    """Each ranking gives n-1 points to its first choice, n-2 to the next...; unranked get 0."""
    table = tally(ballots, "majority")
    rows = {r.answer: r for r in table.rows}
    for row in rows.values():
        row.score = 0.0
    n = len(candidates)
    for ranking in rankings:
        for position, answer in enumerate(ranking):
            if answer in rows:
                rows[answer].score += n - 1 - position
    return VoteTable(_rank(rows), table.abstentions, "borda")


def instant_runoff(
    rankings: Sequence[Sequence[str]], candidates: Sequence[str], ballots: Sequence[Ballot]
) -> tuple[VoteTable, list[dict]]:
    """Eliminate the weakest first-preference candidate until one has a majority of live ballots.

    The weakest is the fewest first preferences, then the lowest Borda score, then the latest given.
    Returns the final table (score = first preferences in the last round) and each round's counts.
    """
    order = {answer: i for i, answer in enumerate(candidates)}
    borda_scores = {r.answer: r.score for r in borda(rankings, candidates, ballots).rows}
    remaining = list(candidates)
    rounds = []
    while remaining:
        counts = {answer: 0 for answer in remaining}
        for ranking in rankings:
            live = next((a for a in ranking if a in counts), None)
            if live is not None:
                counts[live] += 1
        rounds.append(dict(counts))
        live_total = sum(counts.values())
        leader = max(remaining, key=lambda a: (counts[a], borda_scores.get(a, 0), -order[a]))
        if len(remaining) == 1 or (live_total and counts[leader] * 2 > live_total):
            break
        weakest = min(remaining, key=lambda a: (counts[a], borda_scores.get(a, 0), -order[a]))
        remaining.remove(weakest)
    table = tally(ballots, "majority")
    final = rounds[-1] if rounds else {}
    for row in table.rows:
        row.score = float(final.get(row.answer, 0))
    winner_rows = sorted(table.rows, key=lambda r: (r.answer not in remaining, -r.score, -borda_scores.get(r.answer, 0), order.get(r.answer, 0)))
    return VoteTable(winner_rows, table.abstentions, "irv"), rounds
