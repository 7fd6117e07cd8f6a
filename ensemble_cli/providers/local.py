"""The embedded backend: SmolLM2-135M-Instruct (or any GGUF by path) in-process via llama-cpp-python.

It continues assistant prefixes exactly (chat template, then the prefix, no end of turn), returns
top-k log-probabilities from the full distribution, and keeps the evaluated prefix between calls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator, Callable

import numpy as np

from ..errors import ProviderError
from .base import Capabilities, Completion, Request, TokenLogprob, TopToken, Usage
from .llama_engine import LlamaEngine, SequenceBatch, TopCandidates, log_softmax, resolve_model_path, top_k

MAX_TOP_LOGPROBS = 100
_ENGINES: dict[Path, LlamaEngine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(model: str | None) -> LlamaEngine:
    """The process-wide engine for a model: each GGUF is loaded once and shared."""
    path = resolve_model_path(model).resolve()
    with _ENGINES_LOCK:
        engine = _ENGINES.get(path)
        if engine is None:
            engine = _ENGINES[path] = LlamaEngine(path)
        return engine


def top_tokens(engine: LlamaEngine, candidates: TopCandidates) -> tuple[TopToken, ...]:
    return tuple(
        TopToken(engine.piece(int(i)), float(lp), engine.is_end(int(i)))
        for i, lp in zip(candidates.ids, candidates.logprobs)
    )


def choose_token(logprobs: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Greedy at temperature 0 (ties to the lower id), else nucleus sampling at ``temperature``."""
    if temperature <= 0:
        return int(np.argmax(logprobs))
    scaled = logprobs / temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        keep = int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1
        mask = np.zeros_like(probs)
        mask[order[:keep]] = probs[order[:keep]]
        probs = mask / mask.sum()
    return int(rng.choice(probs.shape[0], p=probs))


class LocalProvider:
    """One GGUF model in-process. Calls are serialised on the model; each runs in a worker thread."""

    name = "local"

    def __init__(self, model: str | None, label: str = "local") -> None:
        self.engine = engine_for(model)
        self.model = model or "smollm2"
        self.label = label
        self.capabilities = Capabilities(
            max_top_logprobs=MAX_TOP_LOGPROBS, prefix_continuation=True, honours_n=True, prefix_mode="native"
        )
        self._cache: SequenceBatch | None = None

    def key(self) -> str:
        return f"local|{self.engine.path}"

    async def aclose(self) -> None:
        with self.engine.lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None

    async def complete(self, request: Request) -> list[Completion]:
        return await self.engine.run(self._complete_sync, request)

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        raise ProviderError(f"{self.label}: the local backend has no embeddings endpoint")

    async def stream(self, request: Request) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None | BaseException] = asyncio.Queue()

        def produce() -> None:
            try:
                self._generate(request, np.random.default_rng(request.seed),
                               lambda text: loop.call_soon_threadsafe(queue.put_nowait, text))
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        worker = asyncio.ensure_future(self.engine.run(produce))
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            await worker

    def _complete_sync(self, request: Request) -> list[Completion]:
        rng = np.random.default_rng(request.seed)
        choices = [self._generate(request, rng) for _ in range(max(request.n, 1))]
        return [choices[0]] + [replace(c, usage=Usage(0, c.usage.completion_tokens)) for c in choices[1:]]

    def _prefill(self, prompt: list[int], max_tokens: int) -> tuple[SequenceBatch, np.ndarray]:
        """Evaluate ``prompt`` on the cached sequence, reusing the longest prefix already evaluated."""
        needed = len(prompt) + max_tokens + 1
        if self._cache is None or self._cache.n_ctx < needed:
            if self._cache is not None:
                self._cache.close()
            self._cache = SequenceBatch(self.engine, 1, max(needed, 2048))
        cached = self._cache.tokens[0]
        common = 0
        for a, b in zip(cached, prompt):
            if a != b:
                break
            common += 1
        common = min(common, len(prompt) - 1)
        self._cache.truncate(0, common)
        return self._cache, self._cache.feed({0: prompt[common:]})[0]

    def _generate(
        self, request: Request, rng: np.random.Generator, on_text: Callable[[str], object] | None = None
    ) -> Completion:
        engine = self.engine
        started = time.perf_counter()
        with engine.lock:
            prompt = engine.prompt_tokens(request.messages, request.prefix, request.prompt)
            cache, logits = self._prefill(prompt, request.max_tokens)
            generated: list[int] = []
            tokens: list[TokenLogprob] = []
            end_top: tuple[TopToken, ...] = ()
            finish = "length"
            text = ""
            pending = b""
            for _ in range(request.max_tokens):
                logprobs = log_softmax(logits)
                token = choose_token(logprobs, request.temperature, request.top_p, rng)
                top = top_tokens(engine, top_k(logprobs, request.top_logprobs)) if request.wants_logprobs else ()
                if engine.is_end(token):
                    finish, end_top = "stop", top
                    break
                generated.append(token)
                tokens.append(TokenLogprob(engine.piece(token), float(logprobs[token]), top))
                if on_text is not None or request.stop:
                    pending += engine.piece_bytes(token)
                    new_text = pending.decode("utf-8", errors="ignore")
                    if on_text is not None and new_text != text and not _incomplete(pending):
                        on_text(new_text[len(text):])
                        text = new_text
                    if request.stop and _cut_at_stop(new_text, request.stop) is not None:
                        finish = "stop"
                        break
                logits = cache.feed({0: [token]})[0]
            full = engine.detokenize(generated)
            if request.stop:
                cut = _cut_at_stop(full, request.stop)
                full = full if cut is None else cut
        return Completion(
            text=full,
            tokens=tuple(tokens),
            finish_reason=finish,
            usage=Usage(len(prompt), len(generated)),
            latency_s=time.perf_counter() - started,
            provider=self.name,
            model=self.model,
            end_logprobs=end_top,
        )


def _incomplete(data: bytes) -> bool:
    """Whether ``data`` ends inside a multi-byte UTF-8 character (wait for the rest before showing it)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 3
    return False


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str | None:
    positions = [text.find(s) for s in stops if s and s in text]
    return text[: min(positions)] if positions else None
