"""Typed details of each strategy's result: what a record's ``details`` holds, one pydantic model each.

Strategies build these; records dump them; views render them; ``ensemble schema`` prints the JSON
Schema generated from them. Optional fields a strategy did not set are left out of a record.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# committee

class CommitteeGroup(Model):
    members: list[str]
    multiplicity: int
    weight: float


class CommitteeSummary(Model):
    tokens: int
    calls: int
    calls_per_token: float
    tokens_per_s: float | None = None
    mean_agreement: float | None = None
    mean_accepted_draft: float | None = None
    ensembled_share: float | None = None


class CommitteeStep(Model):
    token: str | None
    """The chosen token; ``None`` is the end of the reply."""
    p: float
    logprob: float | None = None
    """The chosen token's merged log-probability (``p`` is its probability, rounded)."""
    agreement: float
    members: dict[str, tuple[str | None, float]]
    """Each group's own top token there and its probability."""
    ensembled: bool | None = None
    merged: list[tuple[str | None, float]] | None = None
    """``trace``: the merged distribution's top-k (token, log-probability), best first."""
    top: dict[str, list[tuple[str | None, float]]] | None = None


class Probe(Model):
    member: str
    ok: bool
    reason: str | None = None
    top_alternatives: int


class CommitteeDetails(Model):
    merge: str
    top_k: int
    draft: int
    gate: float | None = None
    groups: list[CommitteeGroup]
    finish_reason: str
    summary: CommitteeSummary
    steps: list[CommitteeStep]
    probes: list[Probe] = []
    excluded: list[str] = []


# vote

class VoteRow(Model):
    answer: str
    votes: int
    weight: float
    members: list[str]


class VoteReply(Model):
    member: str
    round: int
    sample: int
    temperature: float
    seed: int | None = None
    text: str
    answer: str | None = None
    confidence: float | None = None
    finish_reason: str = "stop"
    copy_of: int | None = None
    """The index, in this round's replies, of the reply whose call this one shares: an identical call (the same
    member settings at temperature 0) is made once and counted with its multiplicity."""


class VoteFailure(Model):
    member: str
    round: int
    error: str


class VoteRound(Model):
    round: int
    method: str
    winner: str | None = None
    agreement: float
    margin: float
    table: list[VoteRow]
    abstentions: list[str]
    replies: list[VoteReply]
    rankings: list[dict[str, Any]] | None = None
    irv_rounds: list[dict[str, int]] | None = None
    usc_choice: int | None = None
    judge_reply: str | None = None


class VoteDetails(Model):
    extract: str
    method: str
    samples: int
    winner: str
    """The key the answers were counted by (normalised)."""
    winner_reply: str | None = None
    """The winning reply in its own words, where the key is normalised text."""
    agreement: float
    margin: float
    table: list[VoteRow]
    abstentions: list[str]
    failed: list[VoteFailure]
    rounds: list[VoteRound]
    agreement_per_round: list[float]
    finish_reason: str = "stop"
    """The finish reason of the winning reply the output comes from (``length``: it was cut at max_tokens)."""


# moa

class MoaAnswer(Model):
    member: str
    copy_of: str | None = None
    """The proposer whose call this answer shares: an identical call, made once."""
    text: str
    temperature: float
    seed: int | None = None
    usage: dict[str, int]
    latency_s: float


class MoaFailure(Model):
    member: str
    error: str


class MoaReferences(Model):
    member: str
    references: list[str]


class MoaLayerTotals(Model):
    calls: int
    prompt_tokens: int
    completion_tokens: int
    wall_s: float


class MoaLayer(Model):
    layer: int
    answers: list[MoaAnswer]
    failed: list[MoaFailure]
    references: list[MoaReferences]
    totals: MoaLayerTotals


class MoaCut(Model):
    layer: int
    to: str
    reference: int
    from_member: str
    chars: int
    kept: int


class MoaProposer(Model):
    name: str
    temperature: float
    max_tokens: int


class MoaDegraded(Model):
    reason: str
    """Why the aggregator did not answer."""
    fallback: str
    """Who answered instead: ``aggregator 'NAME'`` (``moa.fallback``) or the vote of the last layer's answers."""


class MoaDetails(Model):
    layers: list[MoaLayer]
    aggregator: MoaReferences
    truncated: list[MoaCut]
    self_moa: int | None = None
    shuffle_references: bool
    proposers: list[MoaProposer]
    finish_reason: str = "stop"
    """The final answer's: the aggregator's finish reason (``length``: cut at aggregator_max_tokens)."""
    aggregator_error: str | None = None
    degraded: MoaDegraded | None = None
    """Set when the answer is the fallback's (``moa.fallback``), not the aggregator's."""


# cot-decode

class CotPath(Model):
    rank_first: int
    first_token: str
    first_probability: float
    text: str
    follow_up: str | None = None
    answer: str | None = None
    answer_words: str | None = None
    confidence: float
    margins: list[float]
    length: int
    finish_reason: str


class CotDecodeDetails(Model):
    k: int
    k_setting: int | Literal["auto"]
    selection: Literal["max", "aggregate"]
    extract: str
    winner: int
    answer: str
    answer_totals: dict[str, float] | None = None
    first_token_candidates: list[tuple[str, float]]
    paths: list[CotPath]
    finish_reason: str = "stop"
    """The winning path's finish reason."""


# verbalize

class VerbalizedCandidate(Model):
    text: str
    raw_probability: str | None = None
    parsed_probability: float | None = None
    probability: float
    final_probability: float
    kept: bool
    note: str | None = None


class VerbalizeTurn(Model):
    reply: str
    parse: str
    finish_reason: str = "stop"
    repair_reply: str | None = None
    candidates: int | None = None


class Draw(Model):
    index: int
    text: str


class VerbalizeDetails(Model):
    variant: str
    k: int
    parse: list[str]
    probability_source: str
    candidates: list[VerbalizedCandidate]
    shortfall: int = 0
    """How many fewer distinct responses came back than were asked for."""
    draws: list[Draw]
    seed: int | None = None
    turns: list[VerbalizeTurn]
    compare: dict[str, Any] | None = None
    finish_reason: str = "stop"
    """``length`` where a reply listing the responses was cut at max_tokens."""


DETAILS: dict[str, type[Model]] = {
    "committee": CommitteeDetails, "vote": VoteDetails, "moa": MoaDetails,
    "cot-decode": CotDecodeDetails, "verbalize": VerbalizeDetails,
}


def dump(details: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """A record's ``details``: typed details as JSON (unset optional fields left out); a failed
    prompt's partial details (plain dicts) as they are."""
    if isinstance(details, BaseModel):
        return details.model_dump(mode="json", exclude_unset=True)
    return details
