"""Where committee distributions come from: a batched in-process pool, or one remote call per group.

A *group* is a set of identical members (same endpoint, model, system prompt and temperature),
computed once and counted with its multiplicity. Every source returns, for the committee's current
text, a list of positions: the group's top-k at that position and the token it would emit greedily
there. Remote groups can return several positions per call (drafting); the local pool returns one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..aggregation import END
from ..errors import ProviderError
from ..providers.base import Message, Request, TopToken
from ..providers.llama_engine import SequenceBatch, log_softmax, top_k
from ..providers.local import LocalProvider
from .base import Member, Tally

NO_LOGPROB = -9999.0


@dataclass(frozen=True)
class Position:
    """A group's view of one position: its top-k, and its greedy token there (``END`` to stop)."""

    top: tuple[tuple[str, float], ...]
    greedy: str
    token_ids: dict[str, int] = field(default_factory=dict, compare=False)


@dataclass
class Group:
    index: int
    members: list[Member]

    @property
    def lead(self) -> Member:
        return self.members[0]

    @property
    def name(self) -> str:
        return self.lead.name if len(self.members) == 1 else f"{self.lead.name} x{len(self.members)}"

    @property
    def weight(self) -> float:
        return sum(m.weight for m in self.members)


def group_members(members: list[Member]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for member in members:
        key = member.distribution_key()
        if key not in groups:
            groups[key] = Group(len(groups), [])
        groups[key].members.append(member)
    return list(groups.values())


def _pairs(top: tuple[TopToken, ...]) -> tuple[tuple[str, float], ...]:
    return tuple((END if t.is_end else t.text, t.logprob) for t in top)


class RemoteGroupSource:
    """One provider call per step (or per draft of ``want`` tokens), continuing the committee text."""

    def __init__(self, group: Group, conversation: tuple[Message, ...], top_k: int, tally: Tally) -> None:
        self.group = group
        self.messages = group.lead.messages(conversation)
        self.top_k = min(top_k, group.lead.provider.capabilities.max_top_logprobs)
        self.tally = tally

    async def positions(self, text: str, want: int) -> list[Position]:
        provider = self.group.lead.provider
        request = Request(self.messages, max_tokens=want, temperature=0.0, top_logprobs=self.top_k, prefix=text)
        completions = await provider.complete(request)
        self.tally.add(completions)
        completion = completions[0]
        positions = []
        for token in completion.tokens:
            if not token.top:
                raise ProviderError(f"member '{self.group.lead.name}': the reply has no top log-probabilities")
            positions.append(Position(_pairs(token.top), token.text))
        if completion.finish_reason == "stop" and len(positions) < want:
            end_top = _pairs(completion.end_logprobs) if completion.end_logprobs else ((END, 0.0),)
            positions.append(Position(end_top, END))
        if not positions:
            raise ProviderError(f"member '{self.group.lead.name}': the provider returned no token and no stop")
        return positions


class LocalPool:
    """Groups on one in-process model, one sequence each in one context; one batched decode per step."""

    def __init__(self, provider: LocalProvider, groups: list[Group], conversation: tuple[Message, ...],
                 top_k: int, max_tokens: int, tally: Tally) -> None:
        self.engine = provider.engine
        self.groups = groups
        self.slot = {g.index: i for i, g in enumerate(groups)}
        self.top_k = top_k
        self.tally = tally
        self.pending: dict[int, list[int]] = {}
        prompts = [self.engine.prompt_tokens(g.lead.messages(conversation)) for g in groups]
        self.prompt_tokens = sum(len(p) for p in prompts)
        n_ctx = sum(len(p) for p in prompts) + len(groups) * (max_tokens + 8)
        self.batch = self.engine.run_sync(SequenceBatch, self.engine, len(groups), n_ctx)
        for group, prompt in zip(groups, prompts):
            self.pending[group.index] = list(prompt)
        tally.prompt_tokens += self.prompt_tokens

    def accept(self, text: str, token_id: int | None) -> None:
        ids = [token_id] if token_id is not None else self.engine.tokenize(text, add_bos=False)
        for pending in self.pending.values():
            pending.extend(ids)

    def _step_sync(self, indices: list[int]) -> dict[int, Position]:
        with self.engine.lock:
            feed = {self.slot[i]: self.pending[i] for i in indices}
            logits = self.batch.feed(feed)
        for i in indices:
            self.pending[i] = []
        result = {}
        for i in indices:
            logprobs = log_softmax(logits[self.slot[i]])
            cand = top_k(logprobs, self.top_k)
            ids: dict[str, int] = {}
            top: list[tuple[str, float]] = []
            for token, lp in zip(cand.ids.tolist(), cand.logprobs.tolist()):
                text = END if self.engine.is_end(token) else self.engine.piece(token)
                ids.setdefault(text, token)
                top.append((text, lp))
            result[i] = Position(tuple(top), top[0][0], ids)
        return result

    async def positions(self, indices: list[int]) -> dict[int, Position]:
        """One batched decode for the given groups, on the engine's decode thread."""
        result = await self.engine.run(self._step_sync, indices)
        self.tally.calls += 1
        self.tally.completion_tokens += len(indices)
        return result

    def text(self, ids: list[int]) -> str:
        return self.engine.detokenize(ids)

    def close(self) -> None:
        self.engine.run_sync(self.batch.close)


@dataclass(frozen=True)
class ProbeReport:
    ok: bool
    reason: str = ""
    top_alternatives: int = 0


async def probe(member: Member, conversation: tuple[Message, ...], top_k: int, tally: Tally) -> ProbeReport:
    """Two small calls: real logprobs with enough alternatives, then an exact prefix continuation.

    The first call decodes two greedy tokens; the second continues after the first of them and must
    give the second again. A server that ignores the prefix starts the answer over instead.
    """
    messages = member.messages(conversation)
    try:
        first = (await member.provider.complete(Request(messages, max_tokens=2, top_logprobs=top_k)))[0]
        tally.add([first])
        if len(first.tokens) < 2:
            return ProbeReport(True, top_alternatives=top_k)  # too short a reply to check; nothing to refute
        head, following = first.tokens[0].text, first.tokens[1].text
        second = (await member.provider.complete(Request(messages, max_tokens=1, top_logprobs=top_k, prefix=head)))[0]
        tally.add([second])
    except ProviderError as exc:
        return ProbeReport(False, f"the probe call failed: {exc}")
    tops = [t.top for t in first.tokens]
    if any(not top for top in tops):
        return ProbeReport(False, "no top log-probabilities came back (the provider ignores top_logprobs)")
    values = [lp for top in tops for _, lp in _pairs(top)]
    if all(v == 0.0 for v in values) or all(v <= NO_LOGPROB for v in values) or any(math.isnan(v) for v in values):
        return ProbeReport(False, "the log-probabilities are placeholders (all 0 or -9999), not real values")
    alternatives = min(len(top) for top in tops)
    if alternatives < min(2, top_k):
        return ProbeReport(False, f"only {alternatives} top alternative(s) per token; need at least 2")
    got = second.tokens[0].text if second.tokens else second.text
    if got.strip() != following.strip():
        if got.strip() and got.strip() == head.strip():
            return ProbeReport(False, "the reply restarts the answer instead of continuing the assistant prefix")
        return ProbeReport(False, f"continuing the prefix gave {got!r}, not the greedy next token {following!r}")
    return ProbeReport(True, top_alternatives=alternatives)


def needs_probe(member: Member) -> bool:
    return not isinstance(member.provider, LocalProvider)
