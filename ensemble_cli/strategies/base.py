"""What every strategy shares: members bound to providers, call accounting, results, capability checks."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from pydantic import BaseModel

from ..errors import AuthError, CapabilityError, ContextLengthError, ProviderError, StrategyError, setting
from ..formatting import count
from ..providers.backends import prefix_backends
from ..providers.base import Completion, Message, Provider, Request
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
        base_url = getattr(getattr(self.provider, "endpoint", None), "base_url", None)
        if base_url:
            info["base_url"] = base_url
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

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.completions)


async def ask_all(
    jobs: Sequence[tuple[Member, Request]], tally: Tally, on_reply: Callable[[Reply], None] | None = None
) -> list[Reply]:
    """All requests concurrently (each provider bounds its own concurrency); failures become replies.

    ``on_reply`` sees each reply as it arrives; the returned list keeps the order of ``jobs``.
    """

    async def one(member: Member, request: Request) -> Reply:
        try:
            reply = Reply(member, await call(member, request, tally))
        except AuthError:
            raise  # a rejected key fails every call alike: stop the run
        except ProviderError as exc:
            reply = Reply(member, [], exc.template, exc)
        if on_reply is not None:
            on_reply(reply)
        return reply

    return list(await asyncio.gather(*(one(member, request) for member, request in jobs)))


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
