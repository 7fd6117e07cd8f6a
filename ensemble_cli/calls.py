"""What one call is, whatever serves it: its messages and request, and the completion that comes back.

Every layer shares these types (inputs, the cache, accounting, strategies, providers), so none of them
needs the providers package to describe a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
END = "\u0000<end>"
"""The end of the reply, as a candidate next token."""


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Request:
    """One call. ``prefix`` is assistant text the reply must continue exactly.

    ``prompt``, when given, is raw text sent as is (no chat template; ``messages`` are ignored), and the
    reply continues ``prompt + prefix``.
    """

    messages: tuple[Message, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    top_logprobs: int = 0
    prefix: str = ""
    prompt: str | None = None

    @property
    def wants_logprobs(self) -> bool:
        return self.top_logprobs > 0

    def but(self, **changes: Any) -> "Request":
        return replace(self, **changes)


@dataclass(frozen=True)
class TopToken:
    text: str
    logprob: float
    is_end: bool = False


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its log-probability and the top alternatives at its position."""

    text: str
    logprob: float
    top: tuple[TopToken, ...] = ()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class Completion:
    """One choice of a reply, normalised across backends. Numbers are plain Python floats."""

    text: str
    tokens: tuple[TokenLogprob, ...] = ()
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    provider: str = ""
    model: str = ""
    retries: int = 0
    end_logprobs: tuple[TopToken, ...] = ()
    """Top alternatives at the position after the last token, where the backend knows them."""
    cached: bool = False
    """Served from the call cache: no request was made and nothing was billed."""
    cpu_s: float = 0.0
    """CPU seconds an in-process backend spent on this choice (0 for remote calls)."""


def user_prompt(text: str, system: str | None = None) -> tuple[Message, ...]:
    """The messages of a plain prompt, with an optional system message first."""
    messages: list[Message] = []
    if system:
        messages.append(Message("system", system))
    messages.append(Message("user", text))
    return tuple(messages)
