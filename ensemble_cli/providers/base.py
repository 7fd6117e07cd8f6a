"""The provider protocol every strategy calls: what a backend offers and says about itself.

The types of a call (``Message``, ``Request``, ``Completion``...) live in ``calls.py`` and the decoding
protocol in ``decoding.py``; both are shared by every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Literal, Protocol, Sequence, runtime_checkable

from ..calls import Completion, Request
from ..decoding import Decoder

if TYPE_CHECKING:
    from ..usage import Tally

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
    plain_prompts: bool = False
    """The model has no chat template (an in-process base model): chat messages reach it in the plain
    completion form, so a strategy that has a raw prompt of its own (cot-decode) sends that instead."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_top_logprobs": self.max_top_logprobs,
            "prefix_continuation": self.prefix_continuation,
            "prefix_mode": self.prefix_mode,
            "honours_n": self.honours_n,
            "embeddings": self.embeddings,
            "batched": self.batched,
        }


@runtime_checkable
class Provider(Protocol):
    """What every backend offers. ``complete`` returns ``request.n`` choices."""

    name: str
    model: str
    capabilities: Capabilities
    label: str
    """How errors name it (``member 'a'``, ``provider 'vllm'``)."""
    base_url: str | None
    """The endpoint a record names (no credentials); None in-process."""

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

    def identity(self) -> tuple[Any, ...]:
        """The endpoint, model and member options that shape the wire request (never a key): calls are the
        same call only between equal identities."""
        ...

    def reproducible(self, request: Request) -> bool:
        """Whether this backend gives ``request`` the same reply each time: it applies, as sent, every setting
        that makes it so (temperature 0, or a seed it honours). Only such calls are cached or shared."""
        ...

    def prompt_tokens(self, request: Request) -> int | None:
        """The prompt tokens of ``request`` counted by the model's own tokenizer, where one is at hand (an
        in-process model); None where only the server knows (a dry run then estimates)."""
        ...

    def decoder(self, requests: Sequence[Request], top_k: int, tally: "Tally") -> Decoder:
        """A decoder over one sequence per request, asking ``top_k`` alternatives per position."""
        ...

    async def aclose(self) -> None: ...
