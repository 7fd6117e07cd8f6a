"""Voting: members answer independently, answers are extracted and voted, optionally over debate rounds.

Round 1: every member answers ``samples`` times (n > 1 where the provider honours it, concurrent
calls where not). Round 2..R: each member sees the other members' previous answers (anonymised) and
answers again, until the leader's share of the votes reaches ``consensus``. Methods: majority,
weighted (member weights), confidence (mean token probability over the answer span), borda and irv
(every member ranks the distinct answers in one more call), usc (a judge picks the most consistent reply).

Adaptive (``adaptive: true``): ``samples`` becomes the cap per member. Each round draws its samples in
steps, round-robin over members (``min_samples`` first, then ``step`` more), and stops once the leader is
settled by the Beta rule of ``vote_stopping.py``; the round's ``stopping`` says how many were drawn, why
it stopped and the posterior after each step. Sample j of a member always has the same seed, so an
adaptive run is reproducible and asks for the first samples a fixed-budget run with that seed asks for;
their texts match only where a backend's arithmetic does not depend on the batch (llama.cpp's does).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

from pydantic import Field, field_validator

from ..config import MemberConfig
from ..errors import ConfigError, EnsembleError, NoAnswerError, ProviderError, StrategyError, attach, render, setting
from ..formatting import count
from ..events import Emit, ReplyReceived, RoundFinished, VoteTally, ignore
from ..extraction import Answer, checked_extractor, get_extractor, in_own_words, normalise_text, token_span
from ..inputs import PromptItem
from ..calls import Completion, Message, Request
from .vote_counting import Ballot, VoteTable, borda, instant_runoff, tally
from . import vote_prompts, vote_stopping
from ..usage import Tally
from .details import Model, Settings
from .planning import Planned, sampled
from .spec import Build, RunTotals, StrategySpec, role_member
from .base import Member, Reply, StrategyResult, ask_all, call, check_quorum, identical_calls

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..members import Roster


class VoteSettings(Settings):
    samples: int = Field(default=1, ge=1, description="Replies per member per round.")
    extract: str = Field(default="text", description="number, choice, boxed, line, text, json:FIELD, regex:PATTERN "
                                                     "or judge.")
    method: Literal["majority", "weighted", "confidence", "borda", "irv", "usc"] = Field(
        default="majority", description="majority, weighted, confidence, borda, irv or usc.")
    rounds: int = Field(default=1, ge=1, description="Debate rounds; from round 2 members see the others' answers.")
    consensus: float = Field(default=1.0, gt=0.0, le=1.0,
                             description="Stop early when the leader has this share of the votes.")
    quorum: float = Field(default=0.5, gt=0.0, le=1.0,
                          description="Share of members that must answer for the vote to go on.")
    judge: MemberConfig | None = Field(default=None, description="The judge member (extract judge, method usc).")
    adaptive: bool = Field(default=False, description="Draw samples in steps and stop once the leading answer is "
                                                      "settled; samples is then the cap per member.")
    min_samples: int = Field(default=2, ge=1, description="Adaptive: samples drawn (over all members) before the "
                                                          "first check.")
    step: int = Field(default=1, ge=1, description="Adaptive: samples drawn per step after the first (2 halves the "
                                                   "round trips for a few more samples).")
    stop_confidence: float = Field(default=0.95, gt=0.5, lt=1.0,
                                   description="Adaptive: stop once the posterior probability that the leader is "
                                               "the most likely answer reaches this.")

    @field_validator("extract")
    @classmethod
    def _known_extractor(cls, spec: str) -> str:
        return checked_extractor(spec, judge=True)


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


class StopCheck(Model):
    samples: int
    leader: str | None = None
    posterior: float


class Stopping(Model):
    """How an adaptive round drew its samples: how many, why it stopped, the posterior after each step."""

    drawn: int
    cap: int
    reason: Literal["settled", "cap"]
    """``settled``: the leader's posterior reached vote.stop_confidence; ``cap``: every sample was drawn."""
    posterior: float
    steps: list[StopCheck]


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
    stopping: Stopping | None = None


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
    stopping: Stopping | None = None
    """Adaptive votes: how the last round's samples were drawn."""
    samples_drawn: int | None = None
    """Adaptive votes: the samples drawn in all rounds together."""


ADAPTIVE_METHODS = ("majority", "weighted", "confidence")
GROUPING_TOKENS = 256
RANKING_TOKENS = 64
CHOICE_TOKENS = 16


@dataclass
class Sample:
    """One reply of one member in one round, with what was extracted from it."""

    member: Member
    round: int
    index: int
    text: str
    answer: str | None = None
    confidence: float | None = None
    completion: Completion | None = None
    seed: int | None = None
    words: str | None = None
    """The answer as the reply wrote it (for extractors whose key is normalised text)."""
    copy_of: int | None = None
    """The position, among the round's replies, of the reply whose call this one shares (no call of its own)."""

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"member": self.member.name, "round": self.round, "sample": self.index,
                                  "temperature": self.member.temperature, "seed": self.seed,
                                  "text": self.text, "answer": self.answer}
        if self.copy_of is not None:
            record["copy_of"] = self.copy_of
        if self.confidence is not None:
            record["confidence"] = round(self.confidence, 6)
        if self.completion is not None:
            record["finish_reason"] = self.completion.finish_reason
        return record


def span_confidence(completion: Completion, answer: Answer) -> float | None:
    """Mean token probability over the answer span, where the provider returned token logprobs."""
    texts = [t.text for t in completion.tokens]
    if not texts or "".join(texts) != completion.text:
        return None
    indices = token_span(texts, answer.start, answer.end)
    if not indices:
        return None
    return sum(math.exp(completion.tokens[i].logprob) for i in indices) / len(indices)


def parse_numbers(text: str, limit: int) -> list[int]:
    """The distinct numbers 1..limit in the order they appear."""
    seen: list[int] = []
    for match in re.finditer(r"\d+", text):
        number = int(match.group())
        if 1 <= number <= limit and number not in seen:
            seen.append(number)
    return seen


class Vote:
    def __init__(self, members: list[Member], settings: VoteSettings | None = None, judge: Member | None = None,
                 seed: int | None = None) -> None:
        self.members = members
        self.settings = settings or VoteSettings()
        self.judge = judge
        self.seed = seed
        self.by_judge = self.settings.extract == "judge"
        self.extractor = None if self.by_judge else get_extractor(self.settings.extract)
        if (self.by_judge or self.settings.method == "usc") and judge is None:
            what = f"{setting('vote.extract')} judge" if self.by_judge else f"{setting('vote.method')} usc"
            raise ConfigError(f"vote: {what} needs a judge member: set {setting('vote.judge')}")
        if not members:
            raise ConfigError("vote: no members")
        self.judge = None if judge is None else replace(judge, role="judge")
        if self.settings.adaptive and (self.by_judge or self.settings.method not in ADAPTIVE_METHODS):
            what = (f"{setting('vote.extract')} judge" if self.by_judge
                    else f"{setting('vote.method')} {self.settings.method}")
            raise ConfigError(f"vote: {setting('vote.adaptive')} counts the votes after every step, which {what} "
                              f"cannot do without a call per step; use {setting('vote.method')} "
                              f"{', '.join(ADAPTIVE_METHODS)}")
        self.one_call = self.settings.samples * len(members) == 1
        self.notes: list[str] = identical_calls("vote", self.members, self.settings.samples,
                                                lambda m: self._seed(m, 0, 1))

    def called(self) -> list[Member]:
        return [*self.members, *([self.judge] if self.judge is not None and (self.by_judge or self.settings.method == "usc") else [])]

    async def run(self, item: PromptItem, emit: Emit = ignore, tally: Tally | None = None) -> StrategyResult:
        tally_ = Tally() if tally is None else tally
        rounds: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        previous: list[Sample] = []
        table: VoteTable | None = None
        samples: list[Sample] = []
        try:
            for round_number in range(1, self.settings.rounds + 1):
                samples, stopping = await self._round(item, round_number, previous, tally_, failures, emit)
                table, extra = await self._count(item, samples, tally_)
                rounds.append({"round": round_number, **table.as_dict(), **extra,
                               "replies": [s.as_dict() for s in samples],
                               **({"stopping": stopping} if stopping is not None else {})})
                emit(RoundFinished(item.id, round_number, {"agreement": table.agreement, "leader": table.winner}))
                previous = samples
                if table.winner is not None and table.agreement >= self.settings.consensus:
                    break
        except EnsembleError as exc:
            raise attach(exc, {"rounds": rounds, "failed": failures}) from None
        assert table is not None
        if table.winner is None:
            raise NoAnswerError(f"vote: no reply had an extractable answer ({self.settings.extract}): "
                                f"{count(len(table.abstentions), 'abstention')}; try another {setting('vote.extract')}",
                                {"rounds": rounds, "failed": failures})
        details = {
            "extract": self.settings.extract,
            "method": self.settings.method,
            "samples": self.settings.samples,
            "winner": table.winner,
            "agreement": round(table.agreement, 6),
            "margin": round(table.margin, 6),
            "table": [r.as_dict() for r in table.rows],
            "abstentions": table.abstentions,
            "failed": failures,
            "rounds": rounds,
            "agreement_per_round": [r["agreement"] for r in rounds],
        }
        if self.settings.adaptive:
            details["stopping"] = rounds[-1]["stopping"]
            details["samples_drawn"] = sum(r["stopping"]["drawn"] for r in rounds)
        output = table.winner
        first = next(s for s in samples if s.answer == table.winner)
        if first.completion is not None:
            details["finish_reason"] = first.completion.finish_reason
        if in_own_words(self.settings.extract):  # the winning group's first reply, in its own words
            output = first.words or first.text.strip()
            details["winner_reply"] = output
        return StrategyResult(output=output, details=VoteDetails.model_validate(details), tally=tally_,
                              errors=[f["error"] for f in failures])

    def _live_tally(self, item: PromptItem, round_number: int, emit: Emit) -> Callable[[Reply], None]:
        """Emits each reply as it arrives and the running majority table (display only; the vote
        itself is counted after the round, in reply order, so that ties stay deterministic)."""
        ballots: list[Ballot] = []

        def on_reply(reply: Reply) -> None:
            for completion in reply.completions:
                found = None if self.extractor is None else self.extractor(completion.text)
                answer = found.value if found else None
                emit(ReplyReceived(item.id, reply.member.name, round_number, completion.text, answer))
                ballots.append(Ballot(reply.member.name, answer, order=len(ballots)))
            running = tally(ballots, "majority")
            rows = tuple((r.answer, r.votes, tuple(r.members)) for r in running.rows)
            emit(VoteTally(item.id, round_number, rows, running.winner))

        return on_reply

    def _seed(self, member: Member, sample: int, round_number: int) -> int | None:
        """Distinct, reproducible seeds per member, sample and round (copies of a member must differ)."""
        if self.seed is None:
            return None
        position = self.members.index(member)
        return self.seed + 1000 * round_number + self.settings.samples * position + sample

    def _messages(self, member: Member, item: PromptItem, previous: list[Sample]) -> tuple[Message, ...]:
        if not previous:
            return member.messages(item.messages)
        others = [(s.answer, s.text) for s in previous if s.member.name != member.name]
        return member.messages(item.asking(vote_prompts.debate(item.text, others)))

    async def _round(self, item: PromptItem, round_number: int, previous: list[Sample], tally_: Tally,
                     failures: list[dict[str, Any]], emit: Emit) -> tuple[list[Sample], dict[str, Any] | None]:
        """One round's samples, answers extracted: all at once, or (adaptive) in steps until the leader is settled."""
        on_reply = self._live_tally(item, round_number, emit)
        causes: list[tuple[str, ProviderError | None]] = []  # each failed call: its message (settings as keys), its cause
        order = [(member, index) for index in range(self.settings.samples) for member in self.members]
        if not self.settings.adaptive:
            order.sort(key=lambda slot: self.members.index(slot[0]))
            samples = await self._draw(item, round_number, previous, order, [], tally_, failures, causes, on_reply)
            await self._extract(item, samples, tally_)
            self._check_quorum(round_number, samples, failures, causes, self.members)
            return samples, None
        samples = []
        checks: list[vote_stopping.Check] = []
        failed: set[str] = set()
        reason, drawn = "cap", 0
        for upto in vote_stopping.schedule(len(order), self.settings.min_samples, self.settings.step):
            slots = [slot for slot in order[drawn:upto] if slot[0].name not in failed]
            drawn = upto
            new = await self._draw(item, round_number, previous, slots, samples, tally_, failures, causes, on_reply)
            await self._extract(item, new, tally_)
            samples += new
            failed.update(f["member"] for f in failures if f["round"] == round_number)
            table = tally(self._ballots(samples), self.settings.method)  # type: ignore[arg-type]
            checks.append(vote_stopping.Check(len(samples), table.winner, vote_stopping.settled(table)))
            if checks[-1].posterior >= self.settings.stop_confidence:
                reason = "settled"
                break
        asked = [m for m in self.members if any(slot[0] is m for slot in order[:drawn])]
        self._check_quorum(round_number, samples, failures, causes, asked)
        stopping = {"drawn": len(samples), "cap": len(order), "reason": reason,
                    "posterior": round(checks[-1].posterior, 6), "steps": [c.as_dict() for c in checks]}
        return samples, stopping

    async def _draw(self, item: PromptItem, round_number: int, previous: list[Sample], slots: list[tuple[Member, int]],
                    earlier: list[Sample], tally_: Tally, failures: list[dict[str, Any]],
                    causes: list[tuple[str, ProviderError | None]],
                    on_reply: Callable[[Reply], None]) -> list[Sample]:
        """The samples at ``slots`` (member, sample index), in slot order: each member's consecutive samples in
        one call with n choices where its provider honours n (choice j has the seed of sample j), else one call each."""
        wants_logprobs = 1 if self.settings.method == "confidence" or self.one_call else 0
        jobs: list[tuple[Member, Request, list[int]]] = []
        for member in dict.fromkeys(m for m, _ in slots):
            indices = [index for m, index in slots if m is member]
            request = Request(self._messages(member, item, previous), max_tokens=member.max_tokens,
                              temperature=member.temperature, seed=self.seed, top_logprobs=wants_logprobs)
            if len(indices) > 1 and member.provider.capabilities.honours_n:
                jobs.append((member, request.but(n=len(indices), seed=self._seed(member, indices[0], round_number)),
                             indices))
            else:
                jobs += [(member, request.but(seed=self._seed(member, i, round_number)), [i]) for i in indices]
        replies = await ask_all([(member, request) for member, request, _ in jobs], tally_, on_reply)
        found: dict[tuple[str, int], Sample] = {}
        shares: dict[tuple[str, int], tuple[str, int]] = {}  # slot -> the slot whose reply it shares
        where: dict[int, list[tuple[str, int]]] = {}  # job -> the slots its choices filled
        for job, ((member, asked, indices), reply) in enumerate(zip(jobs, replies)):
            where[job] = []
            if not reply.ok:
                failures.append({"member": member.name, "round": round_number, "error": render(reply.error or "")})
                causes.append((f"member '{member.name}': {reply.error}", reply.cause))
                continue
            for choice, (index, completion) in enumerate(zip(indices, reply.completions)):
                copy_of = None if reply.same_as is None else where[reply.same_as][choice]
                if reply.same_as is None and choice and asked.temperature == 0:
                    copy_of = where[job][0]  # the n choices of one greedy call are one choice, repeated
                where[job].append((member.name, index))
                if copy_of is not None:
                    shares[(member.name, index)] = copy_of
                found[(member.name, index)] = Sample(member, round_number, index, completion.text,
                                                     completion=completion, seed=asked.seed)
        ordered = [found[(m.name, i)] for m, i in slots if (m.name, i) in found]
        position = {(s.member.name, s.index): len(earlier) + p for p, s in enumerate(ordered)}
        for sample in ordered:  # copy_of: the position of the shared reply among the round's replies
            shared = shares.get((sample.member.name, sample.index))
            if shared is not None:
                sample.copy_of = position[shared]
        return ordered

    def _check_quorum(self, round_number: int, samples: list[Sample], failures: list[dict[str, Any]],
                      causes: list[tuple[str, ProviderError | None]], asked: list[Member]) -> None:
        answered = len({s.member.name for s in samples})
        try:
            check_quorum(answered, len(asked), self.settings.quorum, f"vote round {round_number}",
                         [message for message, _ in causes], "vote.quorum", [cause for _, cause in causes])
        except EnsembleError as exc:  # the replies of this round that did come are kept in the record
            raise attach(exc, {"round": round_number, "replies": [s.as_dict() for s in samples]}) from None

    def _ballots(self, samples: list[Sample]) -> list[Ballot]:
        return [Ballot(s.member.name, s.answer, s.member.weight, s.confidence, order) for order, s in enumerate(samples)]

    async def _extract(self, item: PromptItem, samples: list[Sample], tally_: Tally) -> None:
        if self.by_judge:
            await self._judge_groups(item, samples, tally_)
            return
        assert self.extractor is not None
        for sample in samples:
            answer = self.extractor(sample.text)
            if answer is None:
                continue
            sample.answer = answer.value
            sample.words = answer.words(sample.text)
            if (self.settings.method == "confidence" or self.one_call) and sample.completion is not None:
                sample.confidence = span_confidence(sample.completion, answer)

    async def _judge_groups(self, item: PromptItem, samples: list[Sample], tally_: Tally) -> None:
        assert self.judge is not None
        prompt = vote_prompts.grouping(item.text, [s.text for s in samples])
        reply = (await call(self.judge, Request(self.judge.messages((Message("user", prompt),)),
                                                max_tokens=GROUPING_TOKENS, temperature=0.0), tally_))[0]
        groups = [parse_numbers(line, len(samples)) for line in reply.text.splitlines()]
        groups = [g for g in groups if g]
        if not groups:
            raise StrategyError(f"vote: judge '{self.judge.name}' did not list groups of response numbers: "
                                f"{reply.text.strip()[:120]!r}")
        assigned: dict[int, int] = {}
        for group in groups:
            for number in group:
                assigned.setdefault(number, group[0])
        for position, sample in enumerate(samples, start=1):
            representative = assigned.get(position, position)
            label = normalise_text(samples[representative - 1].text)
            sample.answer = f"#{representative}: {label[:60]}" if label else None

    async def _count(self, item: PromptItem, samples: list[Sample], tally_: Tally) -> tuple[VoteTable, dict[str, Any]]:
        ballots = self._ballots(samples)
        method = self.settings.method
        if method in ("majority", "weighted", "confidence"):
            return tally(ballots, method), {}
        candidates = list(dict.fromkeys(s.answer for s in samples if s.answer is not None))
        if method == "usc":
            return await self._usc(item, samples, ballots, tally_)
        if len(candidates) < 2:
            return tally(ballots, "majority"), {"rankings": []}
        rankings, raw = await self._rankings(item, candidates, tally_)
        if method == "borda":
            return borda(rankings, candidates, ballots), {"rankings": raw}
        table, irv_rounds = instant_runoff(rankings, candidates, ballots)
        return table, {"rankings": raw, "irv_rounds": irv_rounds}

    async def _rankings(self, item: PromptItem, candidates: list[str], tally_: Tally) -> tuple[list[list[str]], list[dict]]:
        prompt = vote_prompts.ranking(item.text, candidates)
        jobs = [(m, Request(m.messages((Message("user", prompt),)), max_tokens=RANKING_TOKENS, temperature=0.0)) for m in self.members]
        replies: list[Reply] = await ask_all(jobs, tally_)
        rankings, raw = [], []
        for reply in replies:
            text = reply.completions[0].text if reply.ok else ""
            order = [candidates[n - 1] for n in parse_numbers(text, len(candidates))]
            raw.append({"member": reply.member.name, "reply": text, "ranking": order, "error": reply.error})
            if order:
                rankings.append(order)
        return rankings, raw

    async def _usc(self, item: PromptItem, samples: list[Sample], ballots: list[Ballot],
                   tally_: Tally) -> tuple[VoteTable, dict[str, Any]]:
        assert self.judge is not None
        prompt = vote_prompts.consistency(item.text, [s.text for s in samples])
        reply = (await call(self.judge, Request(self.judge.messages((Message("user", prompt),)),
                                                max_tokens=CHOICE_TOKENS, temperature=0.0), tally_))[0]
        picked = parse_numbers(reply.text, len(samples))
        if not picked:
            raise StrategyError(f"vote: judge '{self.judge.name}' did not answer with a response number: "
                                f"{reply.text.strip()[:120]!r}")
        chosen = samples[picked[0] - 1]
        answer = chosen.answer if chosen.answer is not None else normalise_text(chosen.text)
        table = tally(ballots, "majority")
        rows = sorted(table.rows, key=lambda r: r.answer != answer)
        if not rows or rows[0].answer != answer:
            table = tally([*ballots, Ballot(self.judge.name, answer, 0.0, None, len(ballots))], "majority")
            rows = sorted(table.rows, key=lambda r: r.answer != answer)
        return VoteTable(rows, table.abstentions, "usc"), {"usc_choice": picked[0], "judge_reply": reply.text}




def roster(run: "RunConfig", settings: VoteSettings, members: "Roster") -> None:
    """The judge (``vote.judge``), filled from the run's values."""
    from ..members import fill, free_name

    judge = role_member(settings.judge)
    if judge is not None:
        members.add_role("judge", fill(run, judge, free_name("judge", members.taken())), "vote.judge")


def winning_confidence(details: Mapping[str, Any]) -> float | None:
    """How sure the vote is: the leader's posterior (adaptive), the leader's share of every reply of the last
    round (abstentions count against it), or, for one reply, its answer span's mean token probability."""
    stopping = details.get("stopping")
    if stopping:
        return stopping.get("posterior")
    rounds = details.get("rounds") or []
    replies = (rounds[-1].get("replies") or []) if rounds else []
    if len(replies) == 1:
        return replies[0].get("confidence") if replies[0].get("answer") is not None else 0.0
    winner = details.get("winner")
    return sum(1 for r in replies if r.get("answer") == winner) / len(replies) if replies else None


def plan(vote: Vote, item: PromptItem) -> list[Planned]:
    """At worst: every sample of every member in every round (an adaptive vote's cap), and the judge's or the
    rankers' calls of each round; round 1's requests are known exactly, later rounds carry the others' answers."""
    planned: list[Planned] = []
    settings = vote.settings
    wants_logprobs = 1 if settings.method == "confidence" or vote.one_call else 0
    for round_number in range(1, settings.rounds + 1):
        for member in vote.members:
            request = Request(member.messages(item.messages), max_tokens=member.max_tokens,
                              temperature=member.temperature, seed=vote._seed(member, 0, round_number),
                              top_logprobs=wants_logprobs)
            debate = (len(vote.members) - 1) * member.max_tokens if round_number > 1 else 0
            if settings.adaptive:  # a step may hold one sample of a member: a call each, at worst
                planned.append(Planned(member, f"round {round_number} samples (cap)", request, settings.samples,
                                       settings.samples, settings.samples * member.max_tokens,
                                       settings.samples * debate))
            else:
                planned.append(sampled(member, f"round {round_number} samples", request, settings.samples,
                                       exact=round_number == 1, extra_prompt_tokens=debate))
        replies = settings.samples * sum(m.max_tokens for m in vote.members)
        if vote.by_judge or settings.method == "usc":
            assert vote.judge is not None
            tokens = GROUPING_TOKENS if vote.by_judge else CHOICE_TOKENS
            planned.append(Planned(vote.judge, f"round {round_number} judge", Request(
                vote.judge.messages((Message("user", item.text),)), max_tokens=tokens), 1, 1, tokens, replies))
        elif settings.method in ("borda", "irv"):
            for member in vote.members:
                planned.append(Planned(member, f"round {round_number} ranking", Request(
                    member.messages((Message("user", item.text),)), max_tokens=RANKING_TOKENS), 1, 1,
                    RANKING_TOKENS, replies))
    return planned


def samples_saved(details: Sequence[Mapping[str, Any]]) -> RunTotals | None:
    """For adaptive votes: the samples drawn per prompt against the cap, and the share of the cap saved."""
    drawn, caps = [], []
    for one in details:
        stops = [r["stopping"] for r in one.get("rounds") or [] if isinstance(r.get("stopping"), dict)]
        if stops:
            drawn.append(sum(s.get("drawn", 0) for s in stops))
            caps.append(sum(s.get("cap", 0) for s in stops))
    if not drawn or not sum(caps):
        return None
    per, cap, saved = sum(drawn) / len(drawn), sum(caps) / len(caps), 1 - sum(drawn) / sum(caps)
    return RunTotals(f"adaptive: {per:.1f} samples per prompt of a cap of {cap:.0f} ({100 * saved:.0f}% saved)",
                     {"samples_per_item": per, "sample_cap_per_item": cap, "sample_saving": saved})


def unmeasured(strategy: Any) -> str | None:
    """A one-call vote on a backend that returns no log-probabilities has no confidence in its answer."""
    if not strategy.one_call or strategy.members[0].provider.capabilities.max_top_logprobs > 0:
        return None
    member = strategy.members[0]
    return (f"its one call (member '{member.name}', {member.provider.label}) returns no log-probabilities, so "
            f"its answer has no confidence; give it {setting('vote.samples')} 2 or more")


def build(made: Build) -> Vote:
    return Vote(made.members, made.settings, made.roles.get("judge"), made.config.seed)


SPEC = StrategySpec(
    name="vote",
    summary="Members answer independently; answers are extracted and voted, optionally over debate rounds.",
    settings=VoteSettings,
    details=VoteDetails,
    build=build,
    roles=("judge",),
    roster=roster,
    measure=lambda details: {"agreement": details.get("agreement"), "margin": details.get("margin"),
                             **({"confidence": winning_confidence(details)} if details.get("stopping") else {})},
    confidence=winning_confidence,
    unmeasured=unmeasured,
    plan=plan,
    run_totals=samples_saved,
    checked=("temperature", "max_tokens"),
)
