"""A scripted in-process provider for strategy logic (as simonw/llm's ``MockModel.enqueue``).

Replies are queued texts, exceptions to raise, or a function of the request; ``default`` (one of the
same) answers every request once the queue is empty; every request is kept for assertions. No HTTP,
no SDK, no retry loop: strategy tests test strategies.
"""

from __future__ import annotations

import math
import re
from collections import deque
from typing import Any, AsyncIterator, Callable, Sequence, Union

from ensemble_cli.calls import Completion, Request, TokenLogprob, TopToken, Usage
from ensemble_cli.providers.base import Capabilities
from ensemble_cli.decoding import PrefixDecoder

Reply = Union[str, BaseException, Callable[[Request], str]]
"""A scripted reply: a text, an exception to raise, or a function of the request."""


class ScriptedProvider:
    name = "scripted"

    def __init__(self, *replies: Reply, model: str = "scripted", default: Reply | None = None,
                 capabilities: Capabilities | None = None, confidence: float = 0.9) -> None:
        self.model = model
        self.queue: deque[Any] = deque(replies)
        self.default = default
        self.requests: list[Request] = []
        self.capabilities = capabilities or Capabilities(max_top_logprobs=5, prefix_continuation=True, honours_n=True)
        self.confidence = confidence

    def enqueue(self, *replies: Reply) -> "ScriptedProvider":
        self.queue.extend(replies)
        return self

    label = "scripted"
    base_url = None

    def key(self) -> str:
        return f"scripted|{id(self)}"

    def identity(self) -> tuple:
        return (self.key(),)

    def prompt_tokens(self, request: Request) -> int | None:
        return None

    def reproducible(self, request: Request) -> bool:
        return request.temperature == 0 or request.seed is not None

    def _next(self, request: Request) -> str:
        reply = self.queue.popleft() if self.queue else self.default
        if reply is None:
            raise AssertionError(f"no scripted reply left for {request.messages[-1].content[:60]!r}")
        if isinstance(reply, BaseException):
            raise reply
        return reply(request) if callable(reply) else reply

    def _tokens(self, text: str, k: int) -> tuple[TokenLogprob, ...]:
        pieces = re.findall(r"\s*\S+", text)
        lp = math.log(self.confidence)
        alt = math.log((1 - self.confidence) / max(k - 1, 1))
        return tuple(TokenLogprob(p, lp, (TopToken(p, lp), *(TopToken(f" alt{j}", alt) for j in range(k - 1))))
                     for p in pieces if p)

    async def complete(self, request: Request) -> list[Completion]:
        """Each choice is the next reply; a reply that starts with the request's prefix is continued after
        it (exact prefix continuation); more pieces than ``max_tokens`` are cut with finish ``length``."""
        self.requests.append(request)
        completions = []
        for _ in range(request.n):
            text = self._next(request)
            if request.prefix and text.startswith(request.prefix):
                text = text[len(request.prefix):]
            pieces = self._tokens(text, max(request.top_logprobs, 2))
            finish = "stop"
            if len(pieces) > request.max_tokens:
                pieces, finish = pieces[: request.max_tokens], "length"
                text = "".join(p.text for p in pieces)
            tokens = pieces if request.wants_logprobs else ()
            usage = Usage(sum(len(m.content.split()) for m in request.messages), len(pieces))
            completions.append(Completion(text=text, tokens=tokens, finish_reason=finish, usage=usage,
                                          provider=self.name, model=self.model))
        return completions

    async def stream(self, request: Request) -> AsyncIterator[str | Completion]:
        completion = (await self.complete(request))[0]
        for word in completion.text.split(" "):
            yield word + " "
        yield completion

    def decoder(self, requests: Sequence[Request], top_k: int, tally: Any) -> PrefixDecoder:
        return PrefixDecoder(self, requests, top_k, tally, "scripted")

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass
