"""Decoding CoT branches: the top-k first tokens, each continued greedily with top-2 log-probabilities.

``LocalBrancher`` evaluates the prompt once and forks it into k sequences of one llama.cpp context
(no re-evaluation), then decodes all live branches together, one batched decode per position.
``RemoteBrancher`` asks once for the first-token alternatives, then continues every branch
concurrently through the provider's exact prefix continuation.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

import numpy as np

from ..aggregation import END
from ..errors import CapabilityError
from ..providers.base import Request, TokenLogprob
from ..providers.llama_engine import SequenceBatch, log_softmax, top2_probabilities, top_k
from ..providers.local import LocalProvider
from .base import Member, Tally


@dataclass
class Step:
    """One decoded token: its text and the probabilities of the top-1 and top-2 tokens at its position."""

    text: str
    p1: float
    p2: float
    chosen: float
    token_id: int | None = None

    @property
    def margin(self) -> float:
        """p(top-1) - p(top-2); for a branching first token, p(it) - p(best other)."""
        return self.chosen - (self.p2 if self.chosen >= self.p1 else self.p1)


@dataclass
class Path:
    first: str
    first_probability: float
    steps: list[Step] = field(default_factory=list)
    finish: str = "length"
    follow_up: list[Step] = field(default_factory=list)
    follow_prompt: str = ""

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.steps)


def steps_from_tokens(tokens: tuple[TokenLogprob, ...]) -> list[Step]:
    steps = []
    for token in tokens:
        probs = [math.exp(t.logprob) for t in token.top[:2]] + [0.0, 0.0]
        steps.append(Step(token.text, probs[0], probs[1], math.exp(token.logprob)))
    return steps


def first_tokens(candidates: list[tuple[str, float]], k: int | str, k_max: int, mass: float) -> list[tuple[str, float]]:
    """The first tokens to branch on (end tokens excluded). ``auto``: the fewest covering ``mass`` of the
    probability, at least 2, at most ``k_max``."""
    usable = [(t, p) for t, p in candidates if t != END and t]
    if k != "auto":
        return usable[: int(k)]
    covered, chosen = 0.0, []
    for text, probability in usable[:k_max]:
        chosen.append((text, probability))
        covered += probability
        if covered >= mass and len(chosen) >= 2:
            break
    return chosen


class RemoteBrancher:
    def __init__(self, member: Member, tally: Tally) -> None:
        self.member = member
        self.tally = tally

    async def candidates(self, base: Request, width: int, room: int) -> list[tuple[str, float]]:
        request = base.but(max_tokens=1, temperature=0.0, top_logprobs=width)
        (completion,) = (await self.member.provider.complete(request))[:1]
        self.tally.add([completion])
        top = completion.tokens[0].top if completion.tokens else completion.end_logprobs
        if len(top) < 2:
            raise CapabilityError(
                f"member '{self.member.name}' ({self.member.provider.name}, {self.member.provider.model}) returned "
                f"{len(top)} top log-probabilities for the first token; cot-decode needs at least 2")
        return [(END if t.is_end else t.text, math.exp(t.logprob)) for t in top]

    async def continue_all(self, base: Request, paths: list[Path], max_tokens: int) -> None:
        async def one(path: Path) -> None:
            request = base.but(max_tokens=max_tokens, temperature=0.0, top_logprobs=2, prefix=path.first)
            completion = (await self.member.provider.complete(request))[0]
            self.tally.add([completion])
            path.steps.extend(steps_from_tokens(completion.tokens))
            path.finish = completion.finish_reason

        await asyncio.gather(*(one(p) for p in paths))

    def close(self) -> None:
        """Nothing held between calls."""

    async def follow_up(self, base: Request, path: Path, prompt: str, max_tokens: int, seq: int = 0) -> None:
        request = base.but(max_tokens=max_tokens, temperature=0.0, top_logprobs=2, prefix=path.text + prompt)
        completion = (await self.member.provider.complete(request))[0]
        self.tally.add([completion])
        path.follow_prompt = prompt
        path.follow_up = steps_from_tokens(completion.tokens)


class LocalBrancher:
    """All branches in one context: the prompt evaluated once, forked, decoded in lockstep."""

    def __init__(self, provider: LocalProvider, tally: Tally) -> None:
        self.engine = provider.engine
        self.tally = tally
        self.batch: SequenceBatch | None = None
        self.prompt: list[int] = []
        self.first_logprobs: np.ndarray = np.zeros(0)
        self._ids: dict[str, int] = {}

    def _start(self, base: Request, width: int, room: int) -> list[tuple[str, float]]:
        engine = self.engine
        self.prompt = engine.prompt_tokens(base.messages, base.prefix, base.prompt)
        self.batch = SequenceBatch(engine, width, width * (len(self.prompt) + room))
        logits = self.batch.feed({0: self.prompt})[0]
        self.first_logprobs = log_softmax(logits)
        self.tally.calls += 1
        self.tally.prompt_tokens += len(self.prompt)
        candidates = top_k(self.first_logprobs, width)
        self._ids = {}
        result: list[tuple[str, float]] = []
        for token, lp in zip(candidates.ids.tolist(), candidates.logprobs.tolist()):
            text = END if engine.is_end(token) else engine.piece(token)
            self._ids.setdefault(text, token)
            result.append((text, math.exp(lp)))
        return result

    async def candidates(self, base: Request, width: int, room: int) -> list[tuple[str, float]]:
        return await self.engine.run(self._start, base, width, room)

    def _decode(self, paths: list[Path], max_tokens: int, stop_at_end: bool = True) -> None:
        assert self.batch is not None
        engine, batch = self.engine, self.batch
        for seq in range(1, len(paths)):
            batch.copy_sequence(0, seq)
        feed = {seq: [self._ids[path.first]] for seq, path in enumerate(paths)}
        probs0 = self.first_logprobs
        for path in paths:
            token = self._ids[path.first]
            best = top_k(probs0, 2)
            p1, p2 = (math.exp(v) for v in best.logprobs.tolist())
            path.steps.append(Step(engine.piece(token), p1, p2, math.exp(float(probs0[token])), token))
        live = dict(enumerate(paths))
        generated = 1
        while live and generated < max_tokens:
            logits = batch.feed({seq: feed[seq] for seq in live})
            self.tally.calls += 1
            feed = {}
            for seq in list(live):
                token, p1, p2 = top2_probabilities(logits[seq])
                if stop_at_end and engine.is_end(token):
                    live.pop(seq).finish = "stop"
                    continue
                live[seq].steps.append(Step(engine.piece(token), p1, p2, p1, token))
                feed[seq] = [token]
            generated += 1
        self.tally.completion_tokens += sum(len(p.steps) for p in paths)

    async def continue_all(self, base: Request, paths: list[Path], max_tokens: int,
                           stop_at_end: bool = True) -> None:
        """``stop_at_end=False`` decodes every branch to ``max_tokens`` (benchmarks compare equal lengths)."""
        await self.engine.run(self._decode, paths, max_tokens, stop_at_end)

    def _follow(self, seq: int, path: Path, prompt: str, max_tokens: int) -> None:
        assert self.batch is not None
        engine, batch = self.engine, self.batch
        fed = len(batch.tokens[seq]) - len(self.prompt)
        missing = [s.token_id for s in path.steps[fed:] if s.token_id is not None]
        ids = missing + engine.tokenize(prompt, add_bos=False)
        logits = batch.feed({seq: ids})[seq]
        path.follow_prompt = prompt
        path.follow_up = []
        for _ in range(max_tokens):
            token, p1, p2 = top2_probabilities(logits)
            if engine.is_end(token):
                break
            path.follow_up.append(Step(engine.piece(token), p1, p2, p1, token))
            logits = batch.feed({seq: [token]})[seq]
        self.tally.calls += 1

    async def follow_up(self, base: Request, path: Path, prompt: str, max_tokens: int, seq: int = 0) -> None:
        await self.engine.run(self._follow, seq, path, prompt, max_tokens)

    def close(self) -> None:
        if self.batch is not None:
            self.engine.run_sync(self.batch.close)
