"""What every strategy shares: members bound to providers, call accounting, results, capability checks."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol, Sequence

from pydantic import BaseModel

from ..cache import same_call_key
from ..errors import AuthError, CapabilityError, ContextLengthError, ProviderError, StrategyError, setting
from ..formatting import count
from ..providers.backends import prefix_backends
from ..calls import Completion, Message, Request
from ..providers.base import Provider
from ..events import Emit, ignore
from ..inputs import PromptItem
from ..usage import Tally


@dataclass(frozen=True)
class Member:
    """One ensemble member: a provider and model, with its own system prompt, temperature and weight."""

    name: str
    provider: Provider
    system: str | None = None
    temperature: float = 0.0
    max_tokens: int = 256
    weight: float = 1.0
    role: str = "member"
    """What the member does in the strategy: member, proposer, aggregator or judge."""

    def messages(self, conversation: Sequence[Message]) -> tuple[Message, ...]:
        """The conversation as this member sees it: its system prompt first, if it has one."""
        if not self.system:
            return tuple(conversation)
        rest = [m for m in conversation if m.role != "system"]
        return (Message("system", self.system), *rest)

    def distribution_key(self) -> tuple[Any, ...]:
        """Members with equal keys produce the same next-token distribution."""
        return (self.provider.key(), self.system or "", self.temperature)

    def describe(self) -> dict[str, Any]:
        """What a record says about the member (never a key or header)."""
        info: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "provider": self.provider.name,
            "model": self.provider.model,
            "weight": self.weight,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.provider.base_url:
            info["base_url"] = self.provider.base_url
        if self.system:
            info["system"] = self.system
        return info


async def call(member: Member, request: Request, tally: Tally) -> list[Completion]:
    """One accounted call to a member's provider; a call that fails still counts, with its retries."""
    try:
        completions = await member.provider.complete(request)
    except ProviderError as exc:
        tally.add_failure(exc.retries)
        raise
    tally.add(completions)
    return completions


@dataclass
class StrategyResult:
    """What a strategy returns for one prompt; the session turns it into a record."""

    output: Any
    details: BaseModel
    tally: Tally
    errors: list[str] = field(default_factory=list)


class Strategy(Protocol):
    """What the session runs: one prompt at a time, emitting events; built and validated before any call.

    ``notes`` are remarks about the whole run (settings that do nothing here, copies that cannot
    differ), said once; ``called`` lists every member the strategy may call, in every role, with the
    settings it calls them with, for the record.
    """

    notes: list[str]

    def called(self) -> list[Member]: ...

    async def run(self, item: PromptItem, emit: Emit = ignore, tally: Tally | None = None) -> StrategyResult: ...


def require(
    members: Sequence[Member],
    strategy: str,
    *,
    prefix: bool = False,
    top_logprobs: int = 0,
) -> None:
    """Refuse, before any call, members whose provider lacks what ``strategy`` needs."""
    for member in members:
        caps = member.provider.capabilities
        if prefix and not caps.prefix_continuation:
            raise CapabilityError(
                f"member '{member.name}' ({member.provider.name}, {member.provider.model}) cannot continue an "
                f"assistant prefix exactly, which {strategy} needs; use {prefix_backends()}"
            )
        if top_logprobs and caps.max_top_logprobs < top_logprobs:
            raise CapabilityError(
                f"member '{member.name}' ({member.provider.name}) gives at most {caps.max_top_logprobs} top "
                f"log-probabilities; {strategy} needs {top_logprobs}"
            )


@dataclass
class Reply:
    """One member's answer to one request: its completions, or the error it failed with."""

    member: Member
    completions: list[Completion]
    error: str | None = None
    """The failure's message, settings still named as keys (``errors.setting``)."""
    cause: ProviderError | None = None
    same_as: int | None = None
    """No call of its own: the reply of the job at this index, an identical call (``ask_all``)."""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.completions)


async def ask_all(
    jobs: Sequence[tuple[Member, Request]], tally: Tally, on_reply: Callable[[Reply], None] | None = None
) -> list[Reply]:
    """All requests concurrently (each provider bounds its own concurrency); failures become replies.

    Calls that are identical by construction (``same_call_key``: the same endpoint, model and request, which
    the backend makes reproducible) are made once: every job after the first gets the first one's reply,
    marked ``same_as`` its index; ``n`` choices of one greedy call are one choice, repeated. ``on_reply``
    sees each reply as it arrives; the returned list keeps the order of ``jobs``.
    """
    keys = [same_call_key(member.provider, request) for member, request in jobs]
    leader: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is not None:
            leader.setdefault(key, index)

    async def ask(index: int) -> Reply:
        member, request = jobs[index]
        greedy_choices = request.n > 1 and keys[index] is not None and request.temperature == 0
        try:
            completions = await call(member, request.but(n=1) if greedy_choices else request, tally)
            reply = Reply(member, completions * request.n if greedy_choices else completions)
        except AuthError:
            raise  # a rejected key fails every call alike: stop the run
        except ProviderError as exc:
            reply = Reply(member, [], exc.template, exc)
        return reply

    firsts = [leader.get(key, index) if key is not None else index for index, key in enumerate(keys)]
    made = {index: asyncio.ensure_future(ask(index)) for index in sorted(set(firsts))}

    async def one(index: int) -> Reply:
        reply = await made[firsts[index]]
        if firsts[index] != index:
            reply = replace(reply, member=jobs[index][0], same_as=firsts[index])
        if on_reply is not None:
            on_reply(reply)
        return reply

    try:
        return list(await asyncio.gather(*(one(index) for index in range(len(jobs)))))
    except asyncio.CancelledError:  # the caller went away: no call goes on for nobody
        for future in made.values():
            future.cancel()
        raise


def check_quorum(answered: int, total: int, quorum: float, what: str, errors: Sequence[str], key: str,
                 causes: Sequence[ProviderError | None] = ()) -> None:
    """Go on only if at least ``quorum`` of ``total`` answered; else one clear error naming the failures.

    When no member answered at all, every call failed at the provider: that is a provider error (exit 4),
    not a strategy that could not decide; where every member's prompt was too long for its context, it is
    that (the caller's mistake). ``key`` is the quorum's setting (``vote.quorum``)."""
    needed = max(1, math.ceil(quorum * total))
    if answered < needed:
        detail = "; ".join(errors[:3])
        message = f"{what}: only {answered} of {count(total, 'member')} answered, {needed} needed ({setting(key)}); {detail}"
        if answered == 0 and causes and all(isinstance(c, ContextLengthError) for c in causes):
            raise ContextLengthError(message)
        raise ProviderError(message) if answered == 0 and errors else StrategyError(message)


def identical_calls(what: str, members: Sequence[Member], samples: int = 1,
                    seed_of: Callable[[Member], int | None] = lambda member: None) -> list[str]:
    """A note for each group of members whose calls are the same call by construction (temperature 0 where
    their backend applies it; a greedy call's seed changes nothing): ``ask_all`` makes it once and counts it
    with its multiplicity. Calls the backend does not make reproducible are never the same call."""
    groups: dict[str, list[Member]] = {}
    for member in members:
        probe = Request(member.messages((Message("user", "?"),)), max_tokens=member.max_tokens,
                        temperature=member.temperature, seed=seed_of(member))
        key = same_call_key(member.provider, probe)
        if key is not None and member.temperature == 0:
            groups.setdefault(key, []).append(member)
    notes = []
    for group in groups.values():
        calls = len(group) * samples
        if calls > 1:
            names = ", ".join(f"'{name}'" for name in dict.fromkeys(m.name.rsplit("#", 1)[0] for m in group))
            notes.append(f"{what}: the {calls} calls of {names} at temperature 0 are the same call, made once and "
                         f"counted {calls} times; set {setting('temperature')} (e.g. 0.7) for replies that can differ")
    return notes
