"""A scripted in-process provider for strategy logic (as simonw/llm's ``MockModel.enqueue``).

Replies are queued texts, exceptions to raise, completions with scripted log-probabilities (``steps``,
``Script``), or a function of the request; ``default`` (one of the same) answers every request once the
queue is empty; every request is kept for assertions, streamed ones also in ``streamed``, and each call's
start and end in ``timeline`` (shareable between providers) to check what ran concurrently. No HTTP, no
SDK, no retry loop: strategy tests test strategies.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from dataclasses import replace
from typing import Any, AsyncIterator, Callable, Sequence, Union

from ensemble_cli.calls import END, Completion, Request, TokenLogprob, TopToken, Usage
from ensemble_cli.providers.base import Capabilities
from ensemble_cli.decoding import PrefixDecoder

Reply = Union[str, Completion, BaseException, Callable[[Request], Union[str, Completion]]]
"""A scripted reply: a text, a completion (its tokens' top alternatives scripted), an exception to raise,
or a function of the request."""

Step = tuple[str, float, Sequence[tuple[str, float]]]
"""One scripted token: its text, its probability, and the (text or ``END``, probability) alternatives at
its position, best first."""


def pieces(text: str) -> list[str]:
    """Text as the scripted provider's tokens: each word with the spaces before it."""
    return re.findall(r"\s*\S+", text)


def steps(tokens: Sequence[Step], finish: str = "stop") -> Completion:
    """A completion with scripted log-probabilities; ``complete`` cuts its alternatives to the request's
    ``top_logprobs`` (none when it asks for none) and its tokens to ``max_tokens``."""
    made = tuple(TokenLogprob(text, math.log(p), tuple(TopToken(t, math.log(q), t == END) for t, q in top))
                 for text, p, top in tokens)
    return Completion(text="".join(t.text for t in made), tokens=made, finish_reason=finish)


class Script:
    """A reply that says ``script`` piece by piece, as the fake server's ``ScriptedModel``: the request's
    prefix, counted in pieces, is where it goes on (not what it says). Each piece has probability
    ``confidence``; the alternatives and the end share the rest. After the script it stops."""

    def __init__(self, script: str, confidence: float = 0.9,
                 alternatives: tuple[str, ...] = (" maybe", " perhaps", " so")) -> None:
        self.script = pieces(script)
        self.confidence = confidence
        self.alternatives = alternatives

    def __call__(self, request: Request) -> Completion:
        told = self.script[len(pieces(request.prefix)):]
        said = told[: request.max_tokens]
        made = []
        for piece in said:
            rest = [a for a in self.alternatives if a != piece] + [END]
            made.append((piece, self.confidence, [(piece, self.confidence),
                                                  *((a, (1 - self.confidence) / len(rest)) for a in rest)]))
        return steps(made, "stop" if len(told) <= request.max_tokens else "length")


def max_in_flight(timeline: Sequence[tuple[str, Request]]) -> int:
    """The most calls of a ``timeline`` that were started and not yet ended at once."""
    most = now = 0
    for event, _ in timeline:
        now += 1 if event == "start" else -1
        most = max(most, now)
    return most


class ScriptedProvider:
    name = "scripted"

    def __init__(self, *replies: Reply, model: str = "scripted", default: Reply | None = None,
                 capabilities: Capabilities | None = None, confidence: float = 0.9,
                 timeline: list[tuple[str, Request]] | None = None,
                 embedding: Callable[[str], list[float]] | None = None) -> None:
        """``embedding``, where given, is the embeddings endpoint: a vector for each text (``embedded``
        keeps each call's model and texts)."""
        self.model = model
        self.queue: deque[Any] = deque(replies)
        self.default = default
        self.requests: list[Request] = []
        self.streamed: list[Request] = []
        self.timeline = [] if timeline is None else timeline
        self.embedding = embedding
        self.embedded: list[tuple[str | None, list[str]]] = []
        self.capabilities = capabilities or Capabilities(max_top_logprobs=5, prefix_continuation=True, honours_n=True,
                                                         embeddings=embedding is not None)
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

    def _next(self, request: Request) -> str | Completion:
        reply = self.queue.popleft() if self.queue else self.default
        if reply is None:
            asked = request.messages[-1].content if request.messages else request.prompt or ""
            raise AssertionError(f"no scripted reply left for {asked[:60]!r}")
        if isinstance(reply, BaseException):
            raise reply
        return reply(request) if callable(reply) else reply

    def _scripted(self, request: Request, completion: Completion) -> Completion:
        """A scripted completion as the request asked for it: alternatives cut to ``top_logprobs``."""
        tokens = completion.tokens[: request.max_tokens]
        finish = "length" if len(completion.tokens) > request.max_tokens else completion.finish_reason
        kept = tuple(replace(t, top=t.top[: request.top_logprobs]) for t in tokens) if request.wants_logprobs else ()
        text = "".join(t.text for t in tokens) if completion.tokens else completion.text
        usage = Usage(sum(len(m.content.split()) for m in request.messages), len(tokens))
        return replace(completion, text=text, tokens=kept, finish_reason=finish, usage=usage,
                       provider=self.name, model=self.model)

    def _tokens(self, text: str, k: int) -> tuple[TokenLogprob, ...]:
        lp = math.log(self.confidence)
        alt = math.log((1 - self.confidence) / max(k - 1, 1))
        return tuple(TokenLogprob(p, lp, (TopToken(p, lp), *(TopToken(f" alt{j}", alt) for j in range(k - 1))))
                     for p in pieces(text))

    async def complete(self, request: Request) -> list[Completion]:
        """Each choice is the next reply; a reply that starts with the request's prefix is continued after
        it (exact prefix continuation); more pieces than ``max_tokens`` are cut with finish ``length``.
        A scripted completion is taken as it is (it continues the prefix itself). Each call lets other tasks run between its start and its end, so concurrent calls overlap."""
        self.requests.append(request)
        self.timeline.append(("start", request))
        await asyncio.sleep(0)
        try:
            return self._complete(request)
        finally:
            self.timeline.append(("end", request))

    def _complete(self, request: Request) -> list[Completion]:
        completions = []
        for _ in range(request.n):
            text = self._next(request)
            if isinstance(text, Completion):
                completions.append(self._scripted(request, text))
                continue
            if request.prefix and text.startswith(request.prefix):
                text = text[len(request.prefix):]
            said = self._tokens(text, max(request.top_logprobs, 2))
            finish = "stop"
            if len(said) > request.max_tokens:
                said, finish = said[: request.max_tokens], "length"
                text = "".join(p.text for p in said)
            tokens = said if request.wants_logprobs else ()
            usage = Usage(sum(len(m.content.split()) for m in request.messages), len(said))
            completions.append(Completion(text=text, tokens=tokens, finish_reason=finish, usage=usage,
                                          provider=self.name, model=self.model))
        return completions

    async def stream(self, request: Request) -> AsyncIterator[str | Completion]:
        """The reply's pieces (they join to its text), then the completion."""
        self.streamed.append(request)
        completion = (await self.complete(request))[0]
        said = pieces(completion.text)
        rest = completion.text[len("".join(said)):]  # trailing spaces
        for piece in [*said, rest] if rest else said:
            yield piece
        yield completion

    def decoder(self, requests: Sequence[Request], top_k: int, tally: Any) -> PrefixDecoder:
        return PrefixDecoder(self, requests, top_k, tally, "scripted")

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        if self.embedding is None:
            raise NotImplementedError
        self.embedded.append((model, list(texts)))
        return [self.embedding(text) for text in texts]

    async def aclose(self) -> None:
        pass
