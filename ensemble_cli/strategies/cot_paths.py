"""Decoding CoT branches through a provider's decoder: the top-k first tokens, each continued greedily.

Every branch is one sequence of one decoder. On the embedded model the prompt is evaluated once and
forked, and all live branches advance in one batched decode per position; a remote decoder continues
each branch concurrently through exact prefix continuation, many tokens per call. Both record every
token of a path, its first token included, with the top-1 and top-2 probabilities at its position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..calls import END
from ..decoding import Decoder, Position


@dataclass
class Step:
    """One decoded token: its text and the probabilities of the top-1 and top-2 tokens at its position."""

    text: str
    p1: float
    p2: float
    chosen: float

    @property
    def margin(self) -> float:
        """p(top-1) - p(top-2); for a branching first token, p(it) - p(best other)."""
        return self.chosen - (self.p2 if self.chosen >= self.p1 else self.p1)


def step_at(position: Position, text: str) -> Step:
    """The step of choosing ``text`` at ``position``."""
    probs = [math.exp(lp) for _, lp in position.top[:2]] + [0.0, 0.0]
    chosen = next((math.exp(lp) for t, lp in position.top if t == text), probs[0])
    return Step(text, probs[0], probs[1], chosen)


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


async def greedy(decoder: Decoder, runs: dict[int, list[Step]], max_tokens: int,
                 stop_at_end: bool = True) -> dict[int, str]:
    """Continue every sequence in ``runs`` greedily until its end or ``max_tokens`` steps in its list;
    returns each sequence's finish reason. ``stop_at_end=False`` decodes past the end (benchmarks)."""
    finish: dict[int, str] = {}
    live = [seq for seq, steps in runs.items() if len(steps) < max_tokens]
    finish.update({seq: "length" for seq in runs if seq not in live})
    while live:
        found = await decoder.positions(live, max_tokens - min(len(runs[s]) for s in live))
        for seq in list(live):
            steps = runs[seq]
            for position in found[seq]:
                if position.greedy == END and stop_at_end:
                    finish[seq] = "stop"
                    break
                text = position.greedy if position.greedy != END else position.top[1][0]
                steps.append(step_at(position, text))
                decoder.extend(seq, text)
                if len(steps) >= max_tokens:
                    finish[seq] = "length"
                    break
            if seq in finish:
                live.remove(seq)
    return finish


async def decode_paths(decoder: Decoder, first: Position, paths: list[Path], max_tokens: int,
                       stop_at_end: bool = True) -> None:
    """Branch sequence i on ``paths[i].first`` at the ``first`` position, then decode all greedily."""
    for seq, path in enumerate(paths):
        path.steps.append(step_at(first, path.first))
        decoder.extend(seq, path.first)
    finish = await greedy(decoder, {seq: path.steps for seq, path in enumerate(paths)}, max_tokens, stop_at_end)
    for seq, path in enumerate(paths):
        path.finish = finish[seq]


async def follow_up(decoder: Decoder, paths: dict[int, Path], prompt: str, max_tokens: int) -> None:
    """Append ``prompt`` to each given path and decode a short greedy answer after it."""
    for seq, path in paths.items():
        path.follow_prompt = prompt
        decoder.extend(seq, prompt)
    await greedy(decoder, {seq: path.follow_up for seq, path in paths.items()}, max_tokens)
