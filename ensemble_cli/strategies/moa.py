"""Mixture-of-Agents: layers of proposers, each seeing the previous layer's answers; an aggregator writes.

Layer 1: every proposer answers the prompt. Layers 2..L: every proposer answers again with the previous
layer's answers as numbered, anonymous references in a system message. Then the aggregator writes the
final answer from the last layer's references, streamed. All proposers of a layer run concurrently;
a layer starts only when the one before it has finished.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping

from pydantic import Field

from ..config import MemberConfig
from ..errors import AuthError, ConfigError, EnsembleError, ProviderError, StrategyError, attach, render, setting
from ..events import Emit, Note, ReplyReceived, RoundFinished, StreamDelta, ignore
from ..extraction import normalise_text
from ..inputs import PromptItem
from ..calls import Completion, Message, Request
from ..usage import Tally
from .details import Model, Settings
from .spec import Build, StrategySpec, role_member
from .base import Member, Reply, StrategyResult, ask_all, check_quorum, identical_calls
from .planning import Planned
from .moa_prompts import AGGREGATE_INSTRUCTION, REFERENCE_INSTRUCTION, with_references


if TYPE_CHECKING:
    from ..config import RunConfig
    from ..members import Roster


class MoaSettings(Settings):
    layers: int = Field(default=3, ge=1, description="Proposer layers (the aggregator step not counted).")
    aggregator: MemberConfig | None = Field(default=None,
                                            description="The aggregator member (default: the first member's model).")
    self_moa: int | None = Field(default=None, ge=1,
                                 description="Self-MoA: the first member sampled N times as the proposers.")
    shuffle_references: bool = Field(default=False, description="Shuffle reference order per call (seeded by seed).")
    max_reference_chars: int | None = Field(default=None, ge=1,
                                            description="Truncate each reference to this many characters.")
    quorum: float = Field(default=0.5, gt=0.0, le=1.0,
                          description="Share of proposers that must answer for a layer to go on.")
    proposer_temperature: float | None = Field(default=None, ge=0.0, description="Temperature of the proposers.")
    proposer_max_tokens: int | None = Field(default=None, ge=1, description="Max tokens of each proposer reply.")
    aggregator_temperature: float | None = Field(default=None, ge=0.0, description="Temperature of the aggregator.")
    aggregator_max_tokens: int | None = Field(default=None, ge=1, description="Max tokens of the final answer.")
    reference_instruction: str | None = Field(default=None,
                                              description="Replaces our instruction to proposers about references.")
    aggregate_instruction: str | None = Field(default=None, description="Replaces our instruction to the aggregator.")
    fallback: Literal["vote"] | MemberConfig | None = Field(
        default=None, description="Who answers when the aggregator fails: 'vote' (the last layer's answers voted) "
                                  "or a second aggregator member; the answer is marked degraded.")


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


@dataclass(frozen=True)
class Reference:
    member: str
    text: str


class MixtureOfAgents:
    """Proposers and the aggregator come resolved (role settings applied) from the session."""

    def __init__(self, proposers: list[Member], aggregator: Member, settings: MoaSettings | None = None,
                 seed: int | None = None, fallback: Member | None = None) -> None:
        if not proposers:
            raise ConfigError("moa: no proposers")
        self.settings = settings or MoaSettings()
        self.seed = seed
        self.proposers = [replace(p, role="proposer") for p in proposers]
        self.aggregator = replace(aggregator, role="aggregator")
        self.fallback = None if fallback is None else replace(fallback, role="fallback")
        self.notes: list[str] = identical_calls("moa proposers", self.proposers)

    def called(self) -> list[Member]:
        return [*self.proposers, self.aggregator, *([self.fallback] if self.fallback is not None else [])]

    def _seed(self, layer: int, index: int) -> int | None:
        return None if self.seed is None else self.seed + 1000 * layer + index

    def _references_for(self, references: list[Reference], layer: int, index: int,
                        cuts: list[dict[str, Any]], who: str) -> list[str]:
        limit = self.settings.max_reference_chars
        ordered = list(references)
        if self.settings.shuffle_references:
            random.Random(self._seed(layer, index) if self.seed is not None else None).shuffle(ordered)
        texts = []
        for position, ref in enumerate(ordered, start=1):
            text = ref.text
            if limit is not None and len(text) > limit:
                cuts.append({"layer": layer, "to": who, "reference": position, "from_member": ref.member,
                             "chars": len(text), "kept": limit})
                text = text[:limit]
            texts.append(text)
        return texts

    def _messages(self, member: Member, item: PromptItem, instruction: str, references: list[str]) -> tuple[Message, ...]:
        conversation = [m for m in item.messages if m.role != "system"]
        system = with_references(instruction, references, member.system)
        return (Message("system", system), *conversation)

    async def run(self, item: PromptItem, emit: Emit = ignore, tally: Tally | None = None) -> StrategyResult:
        tally = Tally() if tally is None else tally
        state = _State()
        try:
            references: list[Reference] = []
            for layer in range(1, self.settings.layers + 1):
                references = await self._layer(item, layer, references, state, tally, emit)
            final, texts = await self._final(item, references, state, tally, emit)
        except EnsembleError as exc:
            raise attach(exc, state.details(self)) from None
        details = {**state.details(self), "aggregator": {"member": self.aggregator.name, "references": texts},
                   "finish_reason": final.finish_reason}
        return StrategyResult(output=final.text, details=MoaDetails.model_validate(details), tally=tally,
                              errors=state.errors)

    async def _layer(self, item: PromptItem, layer: int, references: list[Reference], state: "_State",
                     tally: Tally, emit: Emit) -> list[Reference]:
        """One layer of proposers, each seeing the previous layer's answers; returns this layer's answers."""
        started = time.perf_counter()
        calls_before, tokens_before = tally.calls, (tally.prompt_tokens, tally.completion_tokens)
        jobs, given = [], []
        for index, member in enumerate(self.proposers):
            if references:
                texts = self._references_for(references, layer, index, state.cuts, member.name)
                messages = self._messages(member, item, self.settings.reference_instruction or REFERENCE_INSTRUCTION,
                                          texts)
            else:
                texts, messages = [], member.messages(item.messages)
            given.append({"member": member.name, "references": texts})
            jobs.append((member, Request(messages, max_tokens=member.max_tokens, temperature=member.temperature,
                                         seed=self._seed(layer, index))))
        replies = await ask_all(jobs, tally, self._announcer(item, layer, emit))
        answers: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for index, reply in enumerate(replies):
            if not reply.ok:
                failed.append({"member": reply.member.name, "error": render(reply.error or "")})
                state.errors.append(f"layer {layer}: member '{reply.member.name}': {render(reply.error or '')}")
                continue
            completion = reply.completions[0]
            shared = {} if reply.same_as is None else {"copy_of": self.proposers[reply.same_as].name}
            answers.append({**shared, "member": reply.member.name, "text": completion.text,
                            "temperature": reply.member.temperature, "seed": self._seed(layer, index),
                            "usage": {"prompt_tokens": completion.usage.prompt_tokens,
                                      "completion_tokens": completion.usage.completion_tokens},
                            "latency_s": round(completion.latency_s, 4)})
        state.layers.append({
            "layer": layer, "answers": answers, "failed": failed, "references": given,
            "totals": {"calls": tally.calls - calls_before,
                       "prompt_tokens": tally.prompt_tokens - tokens_before[0],
                       "completion_tokens": tally.completion_tokens - tokens_before[1],
                       "wall_s": round(time.perf_counter() - started, 4)},
        })
        check_quorum(len(answers), len(self.proposers), self.settings.quorum, f"moa layer {layer}",
                     [f"member '{r.member.name}': {r.error}" for r in replies if not r.ok], "moa.quorum",
                     [r.cause for r in replies if not r.ok])
        emit(RoundFinished(item.id, layer, {"answers": len(answers), "failed": len(failed)}))
        return [Reference(a["member"], a["text"]) for a in answers]

    @staticmethod
    def _announcer(item: PromptItem, layer: int, emit: Emit) -> Callable[[Reply], None]:
        """Shows each proposer's reply as it arrives."""
        def announce(reply: Reply) -> None:
            text = reply.completions[0].text if reply.ok else f"failed: {render(reply.error or '')}"
            emit(ReplyReceived(item.id, reply.member.name, layer, text, stage="layer"))
        return announce

    async def _final(self, item: PromptItem, references: list[Reference], state: "_State", tally: Tally,
                     emit: Emit) -> tuple[Completion, list[str]]:
        """The aggregator's answer; where it fails, the fallback's (``moa.fallback``), marked degraded."""
        try:
            return await self._aggregate(self.aggregator, item, references, state, tally, emit)
        except AuthError:
            raise  # a rejected key fails every call alike: no fallback can help
        except (ProviderError, StrategyError) as exc:
            if self.fallback is None and self.settings.fallback != "vote":
                state.aggregator_error = render(exc.template)
                raise
            reason = f"the aggregator '{self.aggregator.name}' failed: {render(exc.template)}"
            state.aggregator_error = render(exc.template)
            state.errors.append(reason)
        if self.fallback is not None:
            emit(Note(item.id, f"{reason}; the fallback aggregator '{self.fallback.name}' answers"))
            final, texts = await self._aggregate(self.fallback, item, references, state, tally, emit)
            state.degraded = {"reason": reason, "fallback": f"aggregator '{self.fallback.name}'"}
            return final, texts
        emit(Note(item.id, f"{reason}; the last layer's answers are voted instead"))
        final = voted(references)
        state.degraded = {"reason": reason, "fallback": "vote of the last layer's answers"}
        return final, [r.text for r in references]

    async def _aggregate(self, aggregator: Member, item: PromptItem, references: list[Reference],
                         state: "_State", tally: Tally, emit: Emit) -> tuple[Completion, list[str]]:
        texts = self._references_for(references, self.settings.layers + 1, 0, state.cuts, aggregator.name)
        instruction = self.settings.aggregate_instruction or AGGREGATE_INSTRUCTION
        request = Request(self._messages(aggregator, item, instruction, texts),
                          max_tokens=aggregator.max_tokens, temperature=aggregator.temperature,
                          seed=self._seed(self.settings.layers + 1, 0))
        final: Completion | None = None
        try:
            async for piece in aggregator.provider.stream(request):
                if isinstance(piece, Completion):
                    final = piece
                else:
                    emit(StreamDelta(item.id, piece))
        except ProviderError as exc:
            tally.add_failure(exc.retries)
            raise
        if final is None:
            raise ProviderError(f"member '{aggregator.name}': the stream ended without its final reply")
        tally.add([final])
        if not final.text.strip():
            raise StrategyError(f"moa: the aggregator '{aggregator.name}' returned an empty answer "
                                f"(finish reason {final.finish_reason!r})")
        return final, texts


def plan(moa: MixtureOfAgents, item: PromptItem) -> list[Planned]:
    """At worst: every proposer in every layer (layer 1's requests known exactly; later ones carry the
    previous layer's answers as references), the aggregator, and the fallback aggregator where there is one."""
    planned: list[Planned] = []
    limit = moa.settings.max_reference_chars
    references = sum(min(p.max_tokens, limit // 3 if limit else p.max_tokens) for p in moa.proposers)
    for layer in range(1, moa.settings.layers + 1):
        for index, member in enumerate(moa.proposers):
            request = Request(member.messages(item.messages), max_tokens=member.max_tokens,
                              temperature=member.temperature, seed=moa._seed(layer, index))
            planned.append(Planned(member, f"layer {layer}", request, 1, 1, member.max_tokens,
                                   references if layer > 1 else 0, (request,) if layer == 1 else ()))
    finals = [(moa.aggregator, "aggregator"), *([(moa.fallback, "fallback aggregator")] if moa.fallback else [])]
    for member, what in finals:
        request = Request(member.messages(item.messages), max_tokens=member.max_tokens, temperature=member.temperature)
        planned.append(Planned(member, what, request, 1, 1, member.max_tokens, references))
    return planned


def voted(references: list[Reference]) -> Completion:
    """The answer most of the last layer's proposers gave (case, spacing and end punctuation aside); ties go
    to the earliest proposer's. Its text is that proposer's own."""
    counts: dict[str, int] = {}
    first: dict[str, Reference] = {}
    for reference in references:
        key = normalise_text(reference.text)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, reference)
    best = max(counts, key=lambda key: (counts[key], -list(first).index(key)))
    return Completion(text=first[best].text, finish_reason="stop", provider="vote", model=first[best].member)


@dataclass
class _State:
    """What one prompt's run has gathered, so that a failure can record it."""

    layers: list[dict[str, Any]] = field(default_factory=list)
    cuts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    aggregator_error: str | None = None
    degraded: dict[str, str] | None = None

    def details(self, moa: MixtureOfAgents) -> dict[str, Any]:
        details: dict[str, Any] = {
            "layers": self.layers,
            "truncated": self.cuts,
            "self_moa": moa.settings.self_moa,
            "shuffle_references": moa.settings.shuffle_references,
            "proposers": [{"name": p.name, "temperature": p.temperature, "max_tokens": p.max_tokens}
                          for p in moa.proposers],
        }
        if self.aggregator_error is not None:
            details["aggregator_error"] = self.aggregator_error
        if self.degraded is not None:
            details["degraded"] = self.degraded
        return details


def roster(run: "RunConfig", settings: MoaSettings, roster: "Roster") -> None:
    """The proposers (Self-MoA copies; their temperatures spread where they would answer alike; their role
    settings), the aggregator (``moa.aggregator``, else the first member's model) and the fallback member."""
    from ..members import base_name, copies, fill, free_name, spread

    members = roster.members
    proposers = copies(members[0].model_copy(update={"name": base_name(members[0])}), settings.self_moa) \
        if settings.self_moa else members
    if settings.proposer_temperature is not None:
        proposers = [p.model_copy(update={"temperature": settings.proposer_temperature}) for p in proposers]
    else:
        varied = spread(proposers)
        if varied is not proposers:
            temps = ", ".join(f"{t:g}" for t in sorted({m.temperature or 0.0 for m in varied}))
            roster.notes.append(f"moa: {len(varied)} copies of member '{base_name(proposers[0])}' would "
                                f"answer alike; their temperatures are spread over {temps} "
                                f"(set {setting('moa.proposer_temperature')} to fix one)")
        proposers = varied
    if settings.proposer_max_tokens:
        proposers = [p.model_copy(update={"max_tokens": settings.proposer_max_tokens}) for p in proposers]
    default = free_name("aggregator", {m.name or "" for m in proposers})
    if settings.aggregator is not None:
        aggregator = fill(run, settings.aggregator, default)
    else:
        aggregator = members[0].model_copy(update={"name": default, "system": None})
    updates: dict = {}
    if settings.aggregator_temperature is not None:
        updates["temperature"] = settings.aggregator_temperature
    if settings.aggregator_max_tokens:
        updates["max_tokens"] = settings.aggregator_max_tokens
    if settings.self_moa:
        roster.origins = [f"copy {i + 1} of the first member (moa.self_moa: {settings.self_moa})"
                          for i in range(len(proposers))]
    roster.members = proposers
    roster.add_role("aggregator", aggregator.model_copy(update=updates) if updates else aggregator,
                    "moa.aggregator" if settings.aggregator else "the aggregator")
    second = role_member(settings.fallback)
    if second is not None:
        fallback = fill(run, second, free_name("fallback", roster.taken()))
        roster.add_role("fallback", fallback.model_copy(update=updates) if updates else fallback, "moa.fallback")


def build(made: Build) -> MixtureOfAgents:
    return MixtureOfAgents(made.members, made.roles["aggregator"], made.settings, made.config.seed,
                           made.roles.get("fallback"))


def member_usage(details: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Token usage per proposer, summed over the layers."""
    found: dict[str, dict[str, int]] = {}
    for layer in details.get("layers") or []:
        for answer in layer.get("answers") or []:
            mine = found.setdefault(str(answer.get("member")), {"prompt_tokens": 0, "completion_tokens": 0})
            for key in mine:
                mine[key] += int((answer.get("usage") or {}).get(key) or 0)
    return found


SPEC = StrategySpec(
    name="moa",
    summary="Mixture-of-Agents: layers of proposers refine each other's answers; an aggregator writes the final "
            "one.",
    settings=MoaSettings,
    details=MoaDetails,
    build=build,
    roles=("aggregator", "fallback"),
    roster=roster,
    streams=StreamDelta,
    member_usage=member_usage,
    plan=plan,
    request_keys={"max_tokens": "aggregator_max_tokens", "temperature": "aggregator_temperature"},
)
