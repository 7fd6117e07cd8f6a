"""The provider protocol every strategy calls, and its normalised request and completion types."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, AsyncIterator, Literal, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from ..usage import Tally

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


PrefixMode = Literal["native", "deepseek", "vllm", "raw", "none"]


@dataclass(frozen=True)
class Capabilities:
    max_top_logprobs: int
    prefix_continuation: bool
    honours_n: bool
    prefix_mode: PrefixMode = "none"
    embeddings: bool = False
    verified: bool = False
    """Log-probabilities and prefix continuation are exact by construction (in-process): no probe needed."""
    batched: bool = False
    """The decoder advances all its sequences in one batched forward pass per token, so drafting and
    gating save nothing."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_top_logprobs": self.max_top_logprobs,
            "prefix_continuation": self.prefix_continuation,
            "prefix_mode": self.prefix_mode,
            "honours_n": self.honours_n,
            "embeddings": self.embeddings,
            "batched": self.batched,
        }


@dataclass(frozen=True)
class Position:
    """One sequence's view of its next position: the top-k (text or ``END``, log-probability), best
    first, and the token it emits greedily there (``END`` to stop)."""

    top: tuple[tuple[str, float], ...]
    greedy: str


class Decoder(Protocol):
    """Several sequences of one provider continued together (committee groups, CoT branches).

    Each sequence starts from its own request (messages or raw prompt, plus prefix). ``positions``
    returns, per asked sequence, the positions that follow its current text: one for an in-process
    batched decoder (one forward pass for all sequences), up to ``want`` greedy ones for a remote
    decoder (one call per sequence, concurrently). ``extend`` appends chosen text to a sequence.
    """

    async def positions(self, sequences: Sequence[int], want: int) -> dict[int, list[Position]]: ...

    def extend(self, sequence: int, text: str) -> None: ...

    def text(self, sequence: int) -> str:
        """The exact text appended to ``sequence`` so far (bytes joined before decoding)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Provider(Protocol):
    """What every backend offers. ``complete`` returns ``request.n`` choices."""

    name: str
    model: str
    capabilities: Capabilities

    async def complete(self, request: Request) -> list[Completion]: ...

    def stream(self, request: Request) -> AsyncIterator["str | Completion"]:
        """The reply as it is generated (an async generator): text pieces (``str``), then exactly one
        ``Completion`` as the last item, holding the whole text, usage, retries and finish reason.

        A stream that ends early or is interrupted raises ``ProviderError``; it never ends as if it
        were complete."""
        ...

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        """Embedding vectors, where ``capabilities.embeddings``; raises ProviderError otherwise."""
        ...

    def key(self) -> str:
        """Identity of the endpoint and model: members with equal keys share a distribution."""
        ...

    def reproducible(self, request: Request) -> bool:
        """Whether this backend gives ``request`` the same reply each time: it applies, as sent, every setting
        that makes it so (temperature 0, or a seed it honours). Only such calls are cached or shared."""
        ...

    def decoder(self, requests: Sequence[Request], top_k: int, tally: "Tally") -> Decoder:
        """A decoder over one sequence per request, asking ``top_k`` alternatives per position."""
        ...

    async def aclose(self) -> None: ...


def user_prompt(text: str, system: str | None = None) -> tuple[Message, ...]:
    """The messages of a plain prompt, with an optional system message first."""
    messages: list[Message] = []
    if system:
        messages.append(Message("system", system))
    messages.append(Message("user", text))
    return tuple(messages)
