"""Typed events that strategies emit; the display and the recorder subscribe to them.

Strategies receive an ``emit`` callable and never know who listens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Event:
    prompt_id: str


@dataclass(frozen=True)
class RunStarted(Event):
    """Before the first prompt: how many prompts will run, and remarks to show once."""

    total: int
    notes: tuple[str, ...] = ()
    """Remarks about the whole run, settings named as keys (``errors.render`` shows them)."""


@dataclass(frozen=True)
class PromptStarted(Event):
    prompt: str


@dataclass(frozen=True)
class TokenChosen(Event):
    """Committee: one token appended to the shared answer."""

    text: str
    probability: float
    agreement: float
    dissenters: tuple[str, ...] = ()
    logprob: float = 0.0
    """The token's merged log-probability, exactly as the record's step holds it."""


@dataclass(frozen=True)
class ReplyReceived(Event):
    """Vote, MoA, verbalize, cot-decode: one member's reply (and what was extracted from it)."""

    member: str
    round: int
    text: str
    answer: str | None = None
    stage: str = "round"
    """What ``round`` counts: "round" (vote), "layer" (moa), "path" (cot-decode), "draw" (verbalize)."""


@dataclass(frozen=True)
class VoteTally(Event):
    """Vote: the running vote table of a round, as replies arrive (rows: answer, votes, members)."""

    round: int
    rows: tuple[tuple[str, int, tuple[str, ...]], ...]
    leader: str | None


@dataclass(frozen=True)
class RoundFinished(Event):
    round: int
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamDelta(Event):
    """A piece of streamed final output (the MoA aggregator)."""

    text: str


@dataclass(frozen=True)
class Note(Event):
    """A warning or remark a strategy wants the user to see (settings named as keys, as in ``RunStarted``)."""

    message: str


@dataclass(frozen=True)
class PromptFinished(Event):
    record: dict[str, Any]


@dataclass(frozen=True)
class PromptFailed(Event):
    error: str
    """The message, settings still named as keys (``errors.setting``): each front end ``render``s it."""
    record: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False
    """Stopped by the run's budget, not failed: the run's end says so once."""


Emit = Callable[[Event], None]


def ignore(_: Event) -> None:
    """The default listener: strategies called from Python need no subscriber."""


class EventBus:
    """Fans one event out to every subscriber, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[Emit] = []

    def subscribe(self, listener: Emit) -> None:
        self._subscribers.append(listener)

    def emit(self, event: Event) -> None:
        for listener in self._subscribers:
            listener(event)
