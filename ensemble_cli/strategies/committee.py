"""Consensus decoding: members continue one shared answer token by token, merging their distributions.

Every step asks each distinct member (a *group*) for its next-token top-k on the same assistant text,
merges them (``committee_merge.merge``), and appends the winner. ``draft`` lets remote groups propose up
to K greedy tokens per call; positions are accepted while every group's drafted token equals the
committee's winner there, plus the winner where they part, which gives exactly the stepwise output.
``gate`` lets the first member decode alone while its top-1 probability is at least P.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping

from pydantic import Field

from ..errors import CapabilityError, EnsembleError, ProviderError, attach, setting
from ..events import Emit, Note, TokenChosen, ignore
from ..inputs import PromptItem
from ..calls import END, Request
from ..decoding import Decoder, Position
from ..usage import Tally
from .base import Member, StrategyResult, require
from .planning import Planned, decoded
from .committee_groups import Group, ProbeReport, group_members, needs_probe, probe
from .committee_merge import Distribution, MergeResult, build_distribution, merge
from .details import Model, Settings
from .spec import Build, Chosen, StrategySpec


class CommitteeSettings(Settings):
    merge: Literal["mean", "product", "vote"] = Field(
        default="mean", description="How to merge distributions: mean (log-mean-exp), product or vote.")
    top_k: int = Field(default=10, ge=1, le=100, description="Top alternatives asked of each member per token.")
    draft: int = Field(default=0, ge=0, le=64,
                       description="Remote members propose up to K greedy tokens per call (lossless).")
    gate: float | None = Field(default=None, gt=0.0, le=1.0,
                               description="The first member decodes alone while its top-1 probability is at least P.")
    trace: bool = Field(default=False, description="Record every member's top-k at each step.")
    stop: list[str] = Field(default=[], description="Stop when this text appears (repeatable).")


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
    partial: list[str] | None = None
    """The groups whose own top token was a partial match of the winner (one is a prefix of the other, as
    " Rayleigh" and " Ray" of two tokenizers); left out where none was."""
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


LOGPROB_DIGITS = 8
"""Merged log-probabilities are recorded (and served) to this many decimals: one number, one source."""


@dataclass
class Transcript:
    """The committee's answer so far and the per-step trace."""

    texts: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "length"
    done: bool = False

    @property
    def text(self) -> str:
        return "".join(self.texts)


class Committee:
    """A committee over fixed members; ``run`` decodes one prompt. Probes are done once per run."""

    def __init__(self, members: list[Member], settings: CommitteeSettings | None = None, max_tokens: int = 256) -> None:
        if not members:
            raise CapabilityError("the committee needs at least one member")
        self.settings = settings or CommitteeSettings()
        self.max_tokens = max_tokens
        require(members, "committee", prefix=True, top_logprobs=2)
        self.members = members
        self.groups = group_members(members)
        self._probes: dict[int, ProbeReport] = {}
        self._probe_lock = asyncio.Lock()
        self.notes: list[str] = []
        batched = [m.name for m in members if m.provider.capabilities.batched]
        if self.settings.gate is not None and len({m.provider.key() for m in members}) == 1 and batched:
            self.notes.append(f"{setting('committee.gate')} does nothing here: all members share one batched "
                              "in-process decoder, which advances every member in one forward pass; ignoring it")
            self.settings = self.settings.model_copy(update={"gate": None})
        if self.settings.draft and batched:
            self.notes.append(f"{setting('committee.draft')} does nothing for in-process members "
                              f"({', '.join(batched)}): they are decoded one batched step at a time")

    def called(self) -> list[Member]:
        return list(self.members)

    async def _probe_groups(self, item: PromptItem, tally: Tally, emit: Emit) -> list[Group]:
        async with self._probe_lock:
            pending = [g for g in self.groups if needs_probe(g.lead)
                       and (g.index not in self._probes or self._probes[g.index].call_failed)]  # a failed call is tried again
            reports = await asyncio.gather(
                *(probe(g.lead, item.messages, self.settings.top_k, tally) for g in pending)
            )
            for group, report in zip(pending, reports):
                self._probes[group.index] = report
                if not report.ok:
                    emit(Note(item.id, f"excluding member '{group.lead.name}': {report.reason}"))
        usable = [g for g in self.groups if g.index not in self._probes or self._probes[g.index].ok]
        if not usable:
            reasons = "; ".join(f"'{g.lead.name}': {self._probes[g.index].reason}" for g in self.groups)
            if all(self._probes[g.index].call_failed for g in self.groups):
                raise ProviderError(f"no committee member could be reached: {reasons}")  # exit 4, not a usage error
            raise CapabilityError(f"no committee member passed the probe: {reasons}")
        return usable

    def probe_record(self) -> list[dict[str, Any]]:
        """What the probes found, per probed group, for the record."""
        by_index = {g.index: g for g in self.groups}
        return [
            {"member": by_index[i].lead.name, "ok": report.ok, "reason": report.reason or None,
             "top_alternatives": report.top_alternatives}
            for i, report in sorted(self._probes.items())
        ]

    async def run(self, item: PromptItem, emit: Emit = ignore, tally: Tally | None = None) -> StrategyResult:
        tally = Tally() if tally is None else tally
        try:
            groups = await self._probe_groups(item, tally, emit)
        except EnsembleError as exc:
            raise attach(exc, {"probes": self.probe_record()}) from None
        run = _CommitteeRun(self, groups, item, tally, emit)
        try:
            await run.decode()
        except EnsembleError as exc:  # the steps decoded so far are kept in the record
            raise attach(exc, {**run.details(), "text": run.transcript.text, "probes": self.probe_record()}) from None
        finally:
            await run.close()
        details = run.details()
        details["probes"] = self.probe_record()
        details["excluded"] = [g.lead.name for g in self.groups if g not in groups]
        return StrategyResult(output=run.output_text(), details=CommitteeDetails.model_validate(details), tally=tally)


class _CommitteeRun:
    """The state of one prompt's decoding: one decoder per provider, one sequence per group."""

    def __init__(self, committee: Committee, groups: list[Group], item: PromptItem, tally: Tally, emit: Emit) -> None:
        self.settings = committee.settings
        self.max_tokens = committee.max_tokens
        self.groups = groups
        self.item = item
        self.tally = tally
        self.emit = emit
        self.transcript = Transcript()
        self.held = HeldBack(self.settings.stop, emit)
        self.proposals = 0
        by_provider: dict[str, list[Group]] = {}
        for group in groups:
            by_provider.setdefault(group.lead.provider.key(), []).append(group)
        self.decoders: list[Decoder] = []
        self.seat: dict[int, tuple[Decoder, int]] = {}
        for members in by_provider.values():
            requests = [Request(g.lead.messages(item.messages), max_tokens=self.max_tokens) for g in members]
            decoder = members[0].lead.provider.decoder(requests, self.settings.top_k, tally)
            self.decoders.append(decoder)
            for seq, group in enumerate(members):
                self.seat[group.index] = (decoder, seq)

    async def close(self) -> None:
        for decoder in self.decoders:
            await decoder.aclose()

    async def positions(self, indices: list[int], want: int) -> dict[int, list[Position]]:
        """Each group's positions from the committee's current text, all decoders concurrently."""
        asked: dict[int, list[tuple[int, int]]] = {}
        for index in indices:
            decoder, seq = self.seat[index]
            asked.setdefault(id(decoder), []).append((index, seq))
        decoders = {id(d): d for d in self.decoders}
        jobs = [decoders[key].positions([seq for _, seq in pairs], want) for key, pairs in asked.items()]
        results = await asyncio.gather(*jobs)
        found: dict[int, list[Position]] = {}
        for pairs, result in zip(asked.values(), results):
            for index, seq in pairs:
                found[index] = result[seq]
        return found

    def distribution(self, group: Group, position: Position) -> Distribution:
        return build_distribution(position.top, group.weight, group.lead.temperature)

    def accept(self, result: MergeResult, at: dict[int, Position], ensembled: bool) -> None:
        """Append the winner, record the step, and tell every source about it."""
        dists = {g.index: self.distribution(g, at[g.index]) for g in self.groups if g.index in at}
        logprob = round(result.logprob, LOGPROB_DIGITS)
        step: dict[str, Any] = {
            "token": None if result.is_end else result.winner,
            "p": round(result.probability, 6),
            "logprob": logprob,
            "agreement": round(result.agreement, 6),
            "members": {
                g.name: [None if dists[g.index].top == END else dists[g.index].top,
                         round(math.exp(dists[g.index].top_logprob), 6)]
                for g in self.groups if g.index in dists
            },
        }
        partial = [g.name for g in self.groups if g.index in dists and partial_match(dists[g.index].top, result.winner)]
        if partial:
            step["partial"] = partial
        if self.settings.gate is not None:
            step["ensembled"] = ensembled
        if self.settings.trace:
            step["merged"] = [[None if t == END else t, round(lp, LOGPROB_DIGITS)]
                              for t, lp in result.scores[: self.settings.top_k]]
            step["top"] = {
                g.name: [[None if t == END else t, round(math.exp(lp), 6)] for t, lp in dists[g.index].candidates]
                for g in self.groups if g.index in dists
            }
        self.transcript.steps.append(step)
        dissenters = tuple(g.name for g in self.groups if g.index in dists and dists[g.index].top != result.winner)
        if result.is_end:
            self.transcript.finish_reason = "stop"
            self.transcript.done = True
            self.held.flush()
            self.emit(TokenChosen(self.item.id, "", result.probability, result.agreement, dissenters, logprob))
            return
        for decoder, seq in self.seat.values():
            decoder.extend(seq, result.winner)
        self.transcript.texts.append(result.winner)
        self.held.push(TokenChosen(self.item.id, result.winner, result.probability, result.agreement, dissenters,
                                   logprob))
        self._check_end()
        if self.transcript.done:
            self.held.flush()

    def _check_end(self) -> None:
        text = self.transcript.text
        for stop in self.settings.stop:
            if stop and stop in text:
                self.transcript.finish_reason = "stop"
                self.transcript.done = True
                return
        if len(self.transcript.texts) >= self.max_tokens:
            self.transcript.done = True

    def merge_at(self, at: dict[int, Position]) -> MergeResult:
        dists = [self.distribution(g, at[g.index]) for g in self.groups]
        return merge(dists, self.settings.merge)

    async def decode(self) -> None:
        gate = self.settings.gate if len(self.groups) > 1 else None
        want = max(self.settings.draft, 1)
        while not self.transcript.done:
            if gate is not None:
                await self._gated_round(gate, want)
            else:
                await self._round(want)

    async def _round(self, want: int) -> None:
        indices = [g.index for g in self.groups]
        proposals = await self.positions(indices, want)
        self.proposals += 1
        depth = min(len(p) for p in proposals.values())
        for i in range(depth):
            at = {g: proposals[g][i] for g in indices}
            result = self.merge_at(at)
            self.accept(result, at, ensembled=True)
            if self.transcript.done or any(p.greedy != result.winner for p in at.values()):
                return

    async def _gated_round(self, gate: float, want: int) -> None:
        primary, others = self.groups[0], [g.index for g in self.groups[1:]]
        own = (await self.positions([primary.index], want))[primary.index]
        self.proposals += 1
        for position in own:
            dist = self.distribution(primary, position)
            if math.exp(dist.top_logprob) >= gate:
                result = merge([dist], self.settings.merge)
                self.accept(result, {primary.index: position}, ensembled=False)
                if self.transcript.done or position.greedy != result.winner:
                    return
                continue
            rest = await self.positions(others, 1)
            at = {primary.index: position, **{i: rest[i][0] for i in others}}
            self.accept(self.merge_at(at), at, ensembled=True)
            return

    def output_text(self) -> str:
        # one decoder joins its tokens' bytes before decoding, so characters split across tokens survive
        text = self.decoders[0].text(0) if len(self.decoders) == 1 else self.transcript.text
        for stop in self.settings.stop:
            if stop and stop in text:
                text = text[: text.index(stop)]
        return text

    def details(self) -> dict[str, Any]:
        steps = self.transcript.steps
        tokens = sum(1 for s in steps if s["token"] is not None)
        wall = time.perf_counter() - self.tally.started
        summary: dict[str, Any] = {
            "tokens": tokens,
            "calls": self.tally.calls,
            "calls_per_token": round(self.tally.calls / max(tokens, 1), 4),
            "tokens_per_s": round(tokens / wall, 3) if wall > 0 else None,
            "mean_agreement": round(sum(s["agreement"] for s in steps) / len(steps), 4) if steps else None,
        }
        if self.settings.draft:
            summary["mean_accepted_draft"] = round(len(steps) / max(self.proposals, 1), 4)
        if self.settings.gate is not None:
            summary["ensembled_share"] = round(
                sum(1 for s in steps if s.get("ensembled", True)) / max(len(steps), 1), 4
            )
        details = {
            "merge": self.settings.merge,
            "top_k": self.settings.top_k,
            "draft": self.settings.draft,
            "gate": self.settings.gate,
            "groups": [
                {"members": [m.name for m in g.members], "multiplicity": len(g.members), "weight": g.weight}
                for g in self.groups
            ],
            "finish_reason": self.transcript.finish_reason,
            "summary": summary,
            "steps": steps,
        }
        return details


def partial_match(top: str, winner: str) -> bool:
    """Whether a member's top token and the winner differ but one begins the other: the winner ends inside
    the member's token, or the member's token ends inside the winner (two tokenizers cut the text apart)."""
    if top == winner or END in (top, winner) or not top or not winner:
        return False
    return top.startswith(winner) or winner.startswith(top)


class HeldBack:
    """Chosen tokens on their way out: text that may begin a stop string waits until it is clear, and a stop
    string is never emitted, so no front end (the server's stream, the llm plugin) can show one."""

    def __init__(self, stops: list[str], emit: Emit) -> None:
        self.stops = [stop for stop in stops if stop]
        self.emit = emit
        self.pending: list[TokenChosen] = []
        self.stopped = False

    def push(self, event: TokenChosen) -> None:
        if self.stopped:
            return
        self.pending.append(event)
        text = "".join(e.text for e in self.pending)
        for stop in self.stops:
            if stop in text:
                self._emit_up_to(text.index(stop))
                self.stopped = True
                return
        keep = max((k for stop in self.stops for k in range(1, len(stop)) if text.endswith(stop[:k])), default=0)
        while self.pending and len(text) - len(self.pending[0].text) >= keep:
            first = self.pending.pop(0)
            text = text[len(first.text):]
            self.emit(first)

    def _emit_up_to(self, cut: int) -> None:
        """Emit the pending text before ``cut`` (the last token's part before the stop string)."""
        for event in self.pending:
            if cut <= 0:
                break
            self.emit(event if len(event.text) <= cut else replace(event, text=event.text[:cut]))
            cut -= len(event.text)
        self.pending = []

    def flush(self) -> None:
        """The answer ended without a stop string: what was held is the answer's end."""
        if not self.stopped:
            for event in self.pending:
                self.emit(event)
        self.pending = []


def distribution(details: Mapping[str, Any], top: int) -> list[Chosen]:
    """Each chosen token with its merged log-probability and (``top``, traced) the merged top-k, exactly as the
    record holds them: what the server's ``logprobs`` show."""
    chosen = []
    for step in details.get("steps") or []:
        token = step.get("token")
        if token is None:
            continue
        logprob = step.get("logprob")
        if logprob is None:
            logprob = math.log(step["p"]) if step.get("p") else -math.inf
        merged = [(t, float(lp)) for t, lp in step.get("merged") or [] if t is not None][:top]
        chosen.append((token, float(logprob), merged))
    return chosen


def build(made: Build) -> Committee:
    return Committee(made.members, made.settings, made.config.max_tokens)


def plan(committee: Committee, item: PromptItem) -> list[Planned]:
    """At worst every member decodes ``max_tokens`` tokens: in-process members sharing a model advance in one
    batched step per token; a remote member makes a call per token, resending the text so far."""
    planned: list[Planned] = []
    batched_done: set[str] = set()
    for member in committee.members:
        request = Request(member.messages(item.messages), max_tokens=committee.max_tokens, temperature=0.0)
        key = member.provider.key()
        if member.provider.capabilities.batched:
            if key in batched_done:
                continue  # its steps are those of the first member on that model
            batched_done.add(key)
            sharing = sum(1 for m in committee.members if m.provider.key() == key)
            planned.append(decoded(member, f"decode steps ({sharing} member(s) in one batch)", request, sharing,
                                   committee.max_tokens))
        else:
            planned.append(decoded(member, "token calls", request, 1, committee.max_tokens))
    return planned


def mean_agreement(details: Mapping[str, Any]) -> float | None:
    """The members' mean agreement with the chosen tokens: how sure the committee is of its answer."""
    return (details.get("summary") or {}).get("mean_agreement")


SPEC = StrategySpec(
    name="committee",
    summary="Consensus decoding: members continue one shared answer token by token, merging their next-token "
            "distributions.",
    settings=CommitteeSettings,
    details=CommitteeDetails,
    build=build,
    streams=TokenChosen,
    measure=lambda details: {"agreement": mean_agreement(details)},
    confidence=mean_agreement,
    plan=plan,
    distribution=distribution,
    stop_key="stop",
    trace_key="trace",
)
