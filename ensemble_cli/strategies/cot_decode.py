"""CoT-decoding (Wang & Zhou 2024): branch on the top-k first tokens, decode each greedily, and pick the
path whose answer tokens the model is most sure of.

Confidence of a path = mean over its answer-span tokens of p(top-1) - p(top-2). A path with no
extractable answer may get one follow-up (``answer_prompt``, e.g. " So the answer is") continued greedily.
``aggregate`` sums the confidences of paths that reach the same answer and picks the best answer.
``k: auto`` branches on the fewest first tokens that cover 90% of the first-token probability (at least
2, at most ``k_max``): fewer branches when one token dominates.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping

from pydantic import Field, field_validator

from ..errors import CapabilityError, ConfigError, EnsembleError, NoAnswerError, StrategyError, attach, setting
from ..events import Emit, ReplyReceived, ignore
from ..extraction import checked_extractor, get_extractor, in_own_words, token_span
from ..inputs import PromptItem
from ..calls import END, Request
from ..decoding import Decoder
from ..usage import Tally
from .details import Model, Settings
from .spec import Build, StrategySpec
from .base import Member, StrategyResult, require
from .planning import Planned
from .cot_paths import Path, decode_paths, first_tokens, follow_up
from ..formatting import count

class CotDecodeSettings(Settings):
    k: int | Literal["auto"] = Field(
        default=10, description="Branches: a number, or 'auto' (fewest first tokens covering 90%, up to k_max).")
    k_max: int = Field(default=10, ge=1, le=20, description="Most branches with k auto.")
    extract: str = Field(default="number", description="number, choice, boxed, line, text, json:FIELD or regex:PATTERN.")
    aggregate: bool = Field(default=False, description="Sum confidences of paths with the same answer.")
    template: str = Field(default="Q: {question}\nA:", description="Question-answer template with {question}.")
    raw: bool = Field(default=False, description="Send the template as a raw prompt (no chat template), as for base "
                                                 "models.")
    answer_prompt: str | None = Field(default=" So the answer is",
                                      description="Appended to a path with no answer, then continued once.")

    @field_validator("k")
    @classmethod
    def _k_range(cls, k: int | str) -> int | str:
        if isinstance(k, int) and not 1 <= k <= 20:
            raise ValueError("k must be 'auto' or a number of branches from 1 to 20")
        return k

    @field_validator("extract")
    @classmethod
    def _known_extractor(cls, spec: str) -> str:
        return checked_extractor(spec)

    @field_validator("template")
    @classmethod
    def _has_question(cls, template: str) -> str:
        if "{question}" not in template:
            raise ValueError("the template must contain {question}")
        return template


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


AUTO_MASS = 0.9
FOLLOW_UP_TOKENS = 16


def path_confidence(steps: list, start: int, end: int) -> tuple[float, list[float]]:
    """Mean p(top-1) - p(top-2) over the tokens overlapping [start, end) of the steps' text."""
    indices = token_span([s.text for s in steps], start, end)
    margins = [steps[i].margin for i in indices]
    return (sum(margins) / len(margins) if margins else 0.0), margins


class CotDecode:
    def __init__(self, members: list[Member], settings: CotDecodeSettings | None = None, max_tokens: int = 256) -> None:
        if not members:
            raise ConfigError("cot-decode: no member")
        self.settings = settings or CotDecodeSettings()
        self.member = members[0]
        self.max_tokens = max_tokens
        require([self.member], "cot-decode", prefix=True, top_logprobs=2)
        self.extractor = get_extractor(self.settings.extract)
        self.notes: list[str] = []
        if len(members) > 1:
            self.notes.append(f"cot-decode decodes with one model; ignoring members {', '.join(m.name for m in members[1:])}")
        wanted = self.settings.k_max if self.settings.k == "auto" else int(self.settings.k)
        limit = self.member.provider.capabilities.max_top_logprobs
        if wanted > limit:
            self.notes.append(f"member '{self.member.name}' gives at most {count(limit, 'alternative')}; using k={limit}")
        self.width = min(wanted, limit)
        self.raw = self.settings.raw
        if "raw" not in self.settings.model_fields_set and self.member.provider.capabilities.plain_prompts:
            self.raw = True  # a base model: the question-answer template is the whole prompt, as in the paper
            self.notes.append(f"member '{self.member.name}' is a base model (no chat template): cot-decode sends its "
                              f"template as the raw prompt, as the CoT-decoding paper does; set "
                              f"{setting('cot-decode.raw')} false to write it in the model's prompt form instead")

    def called(self) -> list[Member]:
        return [self.member]

    def base_request(self, item: PromptItem) -> Request:
        """The question in the template: as a chat user message, or with ``raw`` as the whole prompt."""
        question = self.settings.template.replace("{question}", item.text)
        if self.raw:
            return Request((), prompt=question)
        return Request(self.member.messages(item.asking(question)))

    def decoder(self, item: PromptItem, sequences: int, tally: Tally) -> Decoder:
        """One sequence per possible branch, each from the same request (the prompt is evaluated once)."""
        room = self.max_tokens + FOLLOW_UP_TOKENS + 16
        request = self.base_request(item).but(max_tokens=room)
        width = min(sequences + 2, self.member.provider.capabilities.max_top_logprobs)
        return self.member.provider.decoder([request] * sequences, width, tally)

    async def run(self, item: PromptItem, emit: Emit = ignore, tally: Tally | None = None) -> StrategyResult:
        tally = Tally() if tally is None else tally
        width = self.width
        decoder = self.decoder(item, width, tally)
        try:
            first = (await decoder.positions([0], 1))[0][0]
            if len(first.top) < 2:
                raise CapabilityError(
                    f"member '{self.member.name}' ({self.member.provider.name}, {self.member.provider.model}) returned "
                    f"{len(first.top)} top log-probabilities for the first token; cot-decode needs at least 2")
            candidates = [(text, math.exp(lp)) for text, lp in first.top]
            firsts = first_tokens(candidates, self.settings.k, width, AUTO_MASS)
            if not firsts:
                raise StrategyError(f"cot-decode: member '{self.member.name}' offered no first token to branch on")
            paths = [Path(text, probability) for text, probability in firsts]
            try:
                await decode_paths(decoder, first, paths, self.max_tokens)
                unanswered = {seq: path for seq, path in enumerate(paths) if self.extractor(path.text) is None}
                if unanswered and self.settings.answer_prompt:
                    await follow_up(decoder, unanswered, self.settings.answer_prompt, FOLLOW_UP_TOKENS)
            except EnsembleError as exc:  # the paths as far as they were decoded are kept in the record
                raise attach(exc, {"paths": [self._score(seq, path) for seq, path in enumerate(paths)],
                                   "first_token_candidates": [[t, round(p, 6)] for t, p in candidates]}) from None
        finally:
            await decoder.aclose()
        scored = [self._score(seq, path) for seq, path in enumerate(paths)]
        for entry in scored:
            emit(ReplyReceived(item.id, self.member.name, entry["rank_first"], entry["text"], entry["answer"], "path"))
        return self._select(scored, [(END if t == END else t, p) for t, p in candidates], tally)

    def _score(self, seq: int, path: Path) -> dict[str, Any]:
        text = path.text
        answer = self.extractor(text)
        steps, offset, follow, tail = path.steps, 0, False, ""
        if answer is None and path.follow_prompt:
            tail = path.follow_prompt + "".join(s.text for s in path.follow_up)
            answer = self.extractor(tail)
            steps, offset, follow = path.follow_up, len(path.follow_prompt), True
        confidence, margins = 0.0, list[float]()
        if answer is not None:
            confidence, margins = path_confidence(steps, max(answer.start - offset, 0), answer.end - offset)
        return {
            "rank_first": seq + 1,
            "first_token": path.first,
            "first_probability": round(path.first_probability, 6),
            "text": text,
            "follow_up": ("".join(s.text for s in path.follow_up)) if follow else None,
            "answer": answer.value if answer else None,
            "answer_words": answer.words(tail if follow else text) if answer else None,
            "confidence": round(confidence, 6),
            "margins": [round(m, 6) for m in margins],
            "length": len(path.steps),
            "finish_reason": path.finish,
        }

    def _select(self, scored: list[dict[str, Any]], candidates, tally: Tally) -> StrategyResult:
        answered = [s for s in scored if s["answer"] is not None]
        method = "aggregate" if self.settings.aggregate else "max"
        totals: dict[str, float] = {}
        if not answered:
            raise NoAnswerError(
                f"cot-decode: no path had an extractable answer ({self.settings.extract}); try another "
                f"{setting('cot-decode.extract')} or {setting('cot-decode.answer_prompt')}", {"paths": scored})
        if self.settings.aggregate:
            for s in answered:
                totals[s["answer"]] = totals.get(s["answer"], 0.0) + s["confidence"]
            best_answer = max(totals, key=lambda a: (totals[a], -min(s["rank_first"] for s in answered if s["answer"] == a)))
            winner = max((s for s in answered if s["answer"] == best_answer), key=lambda s: (s["confidence"], -s["rank_first"]))
        else:
            winner = max(answered, key=lambda s: (s["confidence"], -s["rank_first"]))
        ranked = sorted(scored, key=lambda s: (s["answer"] is None, -s["confidence"], s["rank_first"]))
        details = {
            "k": len(scored),
            "k_setting": self.settings.k,
            "selection": method,
            "extract": self.settings.extract,
            "winner": winner["rank_first"],
            "answer": winner["answer"],
            "answer_totals": {a: round(v, 6) for a, v in totals.items()} if totals else None,
            "first_token_candidates": [[t, round(p, 6)] for t, p in candidates],
            "paths": ranked,
            "finish_reason": winner["finish_reason"],
        }
        output = winner["answer_words"] if in_own_words(self.settings.extract) else winner["answer"]
        return StrategyResult(output=output, details=CotDecodeDetails.model_validate(details), tally=tally)


def confidence(details: Mapping[str, Any]) -> dict[str, Any]:
    """The winning path's confidence."""
    winner = details.get("winner")
    path = next((p for p in details.get("paths") or [] if p.get("rank_first") == winner), None)
    return {"confidence": None if path is None else path.get("confidence")}


def winning_confidence(details: Mapping[str, Any]) -> float | None:
    return confidence(details)["confidence"]


def plan(cot: CotDecode, item: PromptItem) -> list[Planned]:
    """At worst: the first token's distribution, then every branch decoded to max_tokens and followed up. In
    process each batched step is a call; remotely each branch is a call and its follow-up another."""
    room = cot.max_tokens + FOLLOW_UP_TOKENS
    request = cot.base_request(item).but(max_tokens=room)
    if cot.member.provider.capabilities.batched:
        return [Planned(cot.member, f"decode steps ({count(cot.width, 'branch', 'branches')} in one batch)", request, room + 1, 1,
                        cot.width * room)]
    follow = cot.width if cot.settings.answer_prompt else 0
    calls = 1 + cot.width + follow
    return [Planned(cot.member, f"first token, {count(cot.width, 'branch', 'branches')} and their follow-ups", request, calls, calls,
                    cot.width * room + 1, follow * cot.max_tokens)]


def build(made: Build) -> CotDecode:
    return CotDecode(made.members, made.settings, made.config.max_tokens)


SPEC = StrategySpec(
    name="cot-decode",
    summary="CoT-decoding: branch on the top-k first tokens, decode each greedily, pick the most confident answer.",
    settings=CotDecodeSettings,
    details=CotDecodeDetails,
    build=build,
    one_member=True,
    measure=confidence,
    confidence=winning_confidence,
    plan=plan,
    greedy_only=True,
)
