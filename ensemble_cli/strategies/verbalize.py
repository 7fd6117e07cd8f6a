"""Verbalized Sampling (Zhang et al. 2025): ask for k responses with probabilities, parse, normalise, sample.

Variants: ``standard`` (one call), ``cot`` (brief reasoning first), ``multi`` (more turns, each asking for
k new responses, until ``total`` are gathered). A reply that does not parse gets one repair call; where
the provider continues assistant prefixes, replies are started with ``<response><text>`` so that small
models keep to the format. ``--tail T`` asks for tail responses (each below T); ``--min-prob P`` drops
parsed candidates below P afterwards (keeping at least ``min_keep``) and renormalises.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping

from pydantic import Field, model_validator

from ..diversity import report
from ..errors import ConfigError, EnsembleError, ProviderError, StrategyError, attach
from ..events import Emit, Note, ReplyReceived, ignore
from ..formatting import count
from ..inputs import PromptItem
from ..calls import Message, Request
from . import verbalize_prompts as prompts
from ..usage import Tally
from .details import Model, Settings
from .spec import Build, StrategySpec
from .base import Member, StrategyResult, ask_all, call
from .planning import Planned, sampled
from .verbalize_parse import Candidate, filter_min_prob, merge_duplicates, normalise, parse_reply

class VerbalizeSettings(Settings):
    k: int = Field(default=5, ge=1, description="Responses asked for per turn.")
    variant: Literal["standard", "cot", "multi"] = Field(
        default="standard", description="standard, cot (reason first) or multi (several turns).")
    total: int | None = Field(default=None, ge=1, description="multi: keep asking until this many responses.")
    tail: float | None = Field(default=None, gt=0.0, le=1.0,
                               description="Ask for tail responses, each with probability below T.")
    min_prob: float | None = Field(default=None, ge=0.0, le=1.0,
                                   description="Drop parsed responses below P, then renormalise.")
    min_keep: int = Field(default=1, ge=1, description="Keep at least this many with min_prob.")
    sample: int = Field(default=1, ge=0, description="Draws from the distribution (same seed, same draws).")
    compare: Literal["direct"] | None = Field(
        default=None, description="'direct': also sample the prompt plainly and compare diversity.")
    embedding_model: str | None = Field(default=None,
                                        description="The embeddings model for compare's cosine similarity.")
    instruction: str | None = Field(default=None, description="Replaces our instruction text ({k}, {request}, {tail}).")

    @model_validator(mode="after")
    def _multi_needs_total(self) -> "VerbalizeSettings":
        if self.variant == "multi" and (self.total or 0) < self.k:
            raise ValueError("the multi variant needs a total of at least k")
        return self


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


MAX_EXTRA_TURNS = 2


class Verbalize:
    def __init__(self, members: list[Member], settings: VerbalizeSettings | None = None, seed: int | None = None,
                 max_tokens: int = 512) -> None:
        if not members:
            raise ConfigError("verbalize: no member")
        self.member = members[0]
        self.settings = settings or VerbalizeSettings()
        self.seed = seed
        self.max_tokens = max_tokens
        self.prefill = prompts.PREFILL if self.member.provider.capabilities.prefix_continuation else ""
        self.notes: list[str] = []
        if len(members) > 1:
            self.notes.append(f"verbalize asks one member; ignoring {', '.join(m.name for m in members[1:])}")

    def called(self) -> list[Member]:
        return [self.member]

    async def _ask(self, conversation: list[Message], tally: Tally) -> tuple[str, str]:
        """The member's reply (after the prefill) and its finish reason."""
        request = Request(self.member.messages(conversation), max_tokens=self.max_tokens,
                          temperature=self.member.temperature, seed=self.seed, prefix=self.prefill)
        completion = (await call(self.member, request, tally))[0]
        return self.prefill + completion.text, completion.finish_reason

    async def _turn(self, conversation: list[Message], tally: Tally, turns: list[dict[str, Any]]) -> list[Candidate]:
        reply, finish = await self._ask(conversation, tally)
        path, candidates = parse_reply(reply)
        turn: dict[str, Any] = {"reply": reply, "parse": path, "finish_reason": finish}
        if not candidates:
            repair = [*conversation, Message("assistant", reply), Message("user", prompts.REPAIR)]
            repaired, finish = await self._ask(repair, tally)
            path, candidates = parse_reply(repaired)
            turn.update(repair_reply=repaired, parse=f"repair:{path}", finish_reason=finish)
            if not candidates:
                turns.append(turn)
                raise StrategyError(
                    f"verbalize: member '{self.member.name}' gave no response in a readable format, even after a "
                    f"repair call; the raw replies are in the record", {"turns": turns})
            reply = repaired
        turn["candidates"] = len(candidates)
        turns.append(turn)
        conversation += [Message("assistant", reply)]
        return candidates

    async def _more(self, conversation: list[Message], tally: Tally, turns: list[dict[str, Any]],
                    candidates: list[Candidate], item: PromptItem, emit: Emit) -> bool:
        """One more turn asking for further responses; its candidates join ``candidates``."""
        try:
            candidates += await self._turn(conversation, tally, turns)
        except StrategyError:
            emit(Note(item.id, f"turn {len(turns)} did not parse; keeping the {count(len(candidates), 'response')} so far"))
            return False
        return True

    async def run(self, item: PromptItem, emit: Emit = ignore, tally: Tally | None = None) -> StrategyResult:
        tally = Tally() if tally is None else tally
        settings = self.settings
        first = prompts.first_request(settings.variant, item.text, settings.k, settings.tail, settings.instruction)
        conversation: list[Message] = list(item.asking(first))
        turns: list[dict[str, Any]] = []
        try:
            return await self._sample(item, conversation, turns, tally, emit)
        except EnsembleError as exc:  # the turns so far (their raw replies) are kept in the record
            raise attach(exc, {"turns": turns}) from None

    async def _sample(self, item: PromptItem, conversation: list[Message], turns: list[dict[str, Any]],
                      tally: Tally, emit: Emit) -> StrategyResult:
        settings = self.settings
        candidates = await self._turn(conversation, tally, turns)
        wanted = (settings.total or settings.k) if settings.variant == "multi" else settings.k
        if settings.variant == "multi":
            limit = math.ceil(wanted / settings.k) + MAX_EXTRA_TURNS
            while len(merge_duplicates(candidates)) < wanted and len(turns) < limit:
                conversation.append(Message("user", prompts.more_request(settings.k)))
                if not await self._more(conversation, tally, turns, candidates, item, emit):
                    break
        else:
            have = len(merge_duplicates(candidates))
            if have < wanted:  # one call asks for the missing ones
                conversation.append(Message("user", prompts.missing_request(have, wanted)))
                await self._more(conversation, tally, turns, candidates, item, emit)
        merged = merge_duplicates(candidates)
        if settings.variant == "multi" and settings.total:
            merged = merged[: settings.total]
        shortfall = max(wanted - len(merged), 0)
        if shortfall:
            emit(Note(item.id, f"member '{self.member.name}' gave {count(len(merged), 'different response')} of the "
                               f"{wanted} asked for, even after asking for the missing ones"))
        probabilities, source = normalise(merged)
        kept = filter_min_prob(probabilities, settings.min_prob, settings.min_keep)
        kept_total = sum(probabilities[i] for i in kept)
        final = {i: probabilities[i] / kept_total for i in kept}
        import numpy as np  # loaded on first use: the console script starts without numpy

        rng = np.random.default_rng(self.seed)
        order = list(final)
        draws = [order[int(i)] for i in rng.choice(len(order), size=settings.sample, p=[final[i] for i in order])] if settings.sample else []
        table = [
            {"text": c.text, "raw_probability": c.raw_probability, "parsed_probability": c.probability,
             "probability": round(probabilities[i], 6), "final_probability": round(final.get(i, 0.0), 6),
             "kept": i in final, "note": c.note}
            for i, c in enumerate(merged)
        ]
        for number, index in enumerate(draws, start=1):
            emit(ReplyReceived(item.id, self.member.name, number, merged[index].text, f"p={final[index]:.2f}", "draw"))
        details: dict[str, Any] = {
            "variant": settings.variant,
            "k": settings.k,
            "parse": [t["parse"] for t in turns],
            "probability_source": source,
            "candidates": table,
            "shortfall": shortfall,
            "draws": [{"index": i, "text": merged[i].text} for i in draws],
            "seed": self.seed,
            "turns": turns,
            # a list cut at max_tokens may have lost responses (and the last one its end)
            "finish_reason": "length" if any(t["finish_reason"] == "length" for t in turns) else "stop",
        }
        if settings.compare == "direct":
            details["compare"] = await self._compare(item, [merged[i].text for i in draws], tally)
        output: Any = [merged[i].text for i in draws] if settings.sample != 1 else merged[draws[0]].text
        return StrategyResult(output=output, details=VerbalizeDetails.model_validate(details), tally=tally)

    async def _compare(self, item: PromptItem, verbalized: list[str], tally: Tally) -> dict[str, Any]:
        """The same number of plain samples of the prompt, and both sets' diversity side by side."""
        count = max(len(verbalized), 2)
        temperature = self.member.temperature if self.member.temperature > 0 else 1.0
        jobs = [(self.member, Request(self.member.messages(item.messages), max_tokens=self.max_tokens,
                                      temperature=temperature, seed=None if self.seed is None else self.seed + i))
                for i in range(count)]
        direct = [r.completions[0].text for r in await ask_all(jobs, tally) if r.ok]
        vectors, similarity = await self._embeddings(direct + verbalized)
        return {"temperature": temperature, "direct_samples": direct, "similarity": similarity,
                "direct": report(direct, vectors and vectors[: len(direct)]),
                "verbalized": report(verbalized, vectors and vectors[len(direct):])}

    async def _embeddings(self, texts: list[str]) -> tuple[list[list[float]] | None, str]:
        """Embedding vectors where the member's provider has an embeddings endpoint, else word-level Jaccard."""
        provider = self.member.provider
        if not provider.capabilities.embeddings:
            return None, f"word-level Jaccard ({provider.name} has no embeddings endpoint)"
        try:
            return await provider.embed(texts, self.settings.embedding_model), "embedding cosine and word-level Jaccard"
        except ProviderError as exc:
            return None, f"word-level Jaccard (embeddings failed: {exc})"


def confidence(details: Mapping[str, Any]) -> dict[str, Any]:
    """The probability of the one draw, where there is one."""
    draws = details.get("draws") or []
    table = details.get("candidates") or []
    if len(draws) == 1 and 0 <= draws[0].get("index", -1) < len(table):
        return {"confidence": table[draws[0]["index"]].get("final_probability")}
    return {}


def plan(verbalize: Verbalize, item: PromptItem) -> list[Planned]:
    """At worst: each turn (one, or as many as ``multi`` may take) and a repair of each, every later call
    resending the conversation so far; with ``compare: direct``, k plain samples beside."""
    settings, member = verbalize.settings, verbalize.member
    turns = 1 + (math.ceil((settings.total or settings.k) / settings.k) + MAX_EXTRA_TURNS - 1
                 if settings.variant == "multi" else 1)
    calls = 2 * turns  # a reply that does not parse is asked once more
    request = Request(member.messages(item.messages), max_tokens=verbalize.max_tokens,
                      temperature=member.temperature, seed=verbalize.seed, prefix=verbalize.prefill)
    growing = verbalize.max_tokens * calls * (calls - 1) // 2
    planned = [Planned(member, "turns (and repairs)", request, calls, calls, calls * verbalize.max_tokens, growing)]
    if settings.compare == "direct":
        direct = Request(member.messages(item.messages), max_tokens=verbalize.max_tokens,
                         temperature=member.temperature, seed=verbalize.seed)
        planned.append(sampled(member, "direct samples (compare)", direct, settings.k, exact=False))
    return planned


def build(made: Build) -> Verbalize:
    return Verbalize(made.members, made.settings, made.config.seed, made.config.max_tokens)


SPEC = StrategySpec(
    name="verbalize",
    summary="Verbalized Sampling: ask for k responses with probabilities, normalise them, and sample from that "
            "distribution.",
    settings=VerbalizeSettings,
    details=VerbalizeDetails,
    build=build,
    one_member=True,
    measure=confidence,
    plan=plan,
    checked=("temperature", "max_tokens"),
    display=("show_all",),
)
