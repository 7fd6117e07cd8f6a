"""CoT-decoding (Wang & Zhou 2024): branch on the top-k first tokens, decode each greedily, and pick the
path whose answer tokens the model is most sure of.

Confidence of a path = mean over its answer-span tokens of p(top-1) - p(top-2). A path with no
extractable answer may get one follow-up (``answer_prompt``, e.g. " So the answer is") continued greedily.
``aggregate`` sums the confidences of paths that reach the same answer and picks the best answer.
``k: auto`` branches on the fewest first tokens that cover 90% of the first-token probability (at least
2, at most ``k_max``): fewer branches when one token dominates.
"""

from __future__ import annotations

import asyncio

from typing import Any

from ..config import CotDecodeSettings
from ..errors import ConfigError, StrategyError
from ..events import Emit, Note, ReplyReceived, ignore
from ..extraction import get_extractor, token_span
from ..inputs import PromptItem
from ..providers.base import Request
from ..providers.local import LocalProvider
from .base import Member, StrategyResult, Tally, require
from .cot_paths import LocalBrancher, Path, RemoteBrancher, first_tokens

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
        self.ignored = [m.name for m in members[1:]]
        self.max_tokens = max_tokens
        require([self.member], "cot-decode", prefix=True, top_logprobs=2)
        self.extractor = get_extractor(self.settings.extract)
        if "{question}" not in self.settings.template:
            raise ConfigError("cot-decode.template: must contain {question}")

    def base_request(self, item: PromptItem) -> Request:
        """The question in the template: as a chat user message, or with ``raw`` as the whole prompt."""
        question = self.settings.template.replace("{question}", item.text)
        if self.settings.raw:
            return Request((), prompt=question)
        return Request(self.member.messages(item.asking(question)))

    def _width(self, emit: Emit, item: PromptItem) -> int:
        wanted = self.settings.k_max if self.settings.k == "auto" else int(self.settings.k)
        limit = self.member.provider.capabilities.max_top_logprobs
        if wanted > limit:
            emit(Note(item.id, f"member '{self.member.name}' gives at most {limit} alternatives; using k={limit}"))
        return min(wanted, limit)

    async def run(self, item: PromptItem, emit: Emit = ignore) -> StrategyResult:
        tally = Tally()
        if self.ignored:
            emit(Note(item.id, f"cot-decode decodes with one model; ignoring members {', '.join(self.ignored)}"))
        messages = self.base_request(item)
        width = self._width(emit, item)
        provider = self.member.provider
        brancher: LocalBrancher | RemoteBrancher
        if isinstance(provider, LocalProvider):
            brancher = LocalBrancher(provider, tally)
        else:
            brancher = RemoteBrancher(self.member, tally)
        try:
            room = self.max_tokens + FOLLOW_UP_TOKENS + 16
            candidates = await brancher.candidates(messages, min(width + 2, provider.capabilities.max_top_logprobs), room)
            k = self.settings.k if self.settings.k == "auto" else width
            firsts = first_tokens(candidates, k, width, AUTO_MASS)
            if not firsts:
                raise StrategyError(f"cot-decode: member '{self.member.name}' offered no first token to branch on")
            paths = [Path(text, probability) for text, probability in firsts]
            await brancher.continue_all(messages, paths, self.max_tokens)
            scored = list(await asyncio.gather(*(self._score(brancher, messages, seq, path)
                                                 for seq, path in enumerate(paths))))
        finally:
            brancher.close()
        for entry in scored:
            emit(ReplyReceived(item.id, self.member.name, entry["rank_first"], entry["text"], entry["answer"], "path"))
        return self._select(scored, candidates, tally)

    async def _score(self, brancher, messages, seq: int, path: Path) -> dict[str, Any]:
        text = path.text
        answer = self.extractor(text)
        steps, offset, follow = path.steps, 0, False
        if answer is None and self.settings.answer_prompt:
            await brancher.follow_up(messages, path, self.settings.answer_prompt, FOLLOW_UP_TOKENS, seq)
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
            raise StrategyError(
                f"cot-decode: no path had an extractable answer ({self.settings.extract}); try another --extract "
                f"or --answer-prompt", {"paths": scored})
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
        }
        return StrategyResult(output=winner["answer"], details=details, tally=tally)

