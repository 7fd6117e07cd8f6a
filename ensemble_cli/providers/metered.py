"""The provider wrapper the session puts around every bound member: budget and call cache.

``Meter`` tracks the dollars a run has spent across all its prompts and refuses, before it is made, a
call whose estimated cost would take the run past ``--budget`` (``BudgetExceeded``). The estimate is
the call's prompt size (UTF-8 bytes / 3, plus a few tokens per message: above the real count for most
text) and ``max_tokens`` per choice at the member's price; it is reserved while the call is in flight
and replaced by the real cost when the reply comes, so concurrent calls cannot overshoot together.

``MeteredProvider`` serves reproducible requests (``Provider.reproducible``: temperature 0 or a seed the
backend applies) from the ``CallCache``
and stores their replies; a hit makes no request and costs nothing. Remote decoders (committee,
cot-decode) are built over the wrapper, so their calls are metered and cached too; the in-process
local decoder is the local provider's own (free, and not cached: its steps are not requests).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, AsyncIterator, Sequence

from ..errors import BudgetExceeded, ConfigError, setting
from ..prices import Price, PriceTable
from ..calls import Completion, Request
from .base import Provider
from ..decoding import Decoder, PrefixDecoder

if TYPE_CHECKING:
    from ..cache import CallCache
    from ..usage import Tally

BYTES_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 8


def estimate_prompt_tokens(request: Request) -> int:
    """A rough upper estimate of a request's prompt tokens, made before the call."""
    texts = [request.prompt or "", request.prefix] + ([] if request.prompt else [m.content for m in request.messages])
    size = sum(len(text.encode("utf-8")) for text in texts)
    return math.ceil(size / BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE * (len(request.messages) + 1)


class Meter:
    """Dollars spent by one run, across its prompts, against an optional budget. Thread-safe."""

    def __init__(self, budget: float | None, prices: PriceTable) -> None:
        self.budget = budget
        self.prices = prices
        self.spent = 0.0
        self.reserved = 0.0
        self.stopped: BudgetExceeded | None = None
        self.in_flight = 0
        self._idle: asyncio.Event | None = None
        self._lock = threading.Lock()

    def price(self, provider: Provider) -> Price | None:
        return self.prices.price_for(provider.name, provider.model)

    def check_priced(self, providers: Sequence[tuple[str, Provider]]) -> None:
        """With a budget, refuse before any call a member whose model has no price."""
        if self.budget is None:
            return
        for name, provider in providers:
            if self.price(provider) is None:
                raise ConfigError(
                    f"{setting('budget')}: no price for member '{name}' ({provider.name}/{provider.model}), so its "
                    f"spending cannot be bounded; add it under {setting('prices')}, e.g. prices: "
                    f"{{\"{provider.name}/{provider.model}\": {{input: 0.15, output: 0.6}}}} (dollars per million "
                    f"tokens), or run without {setting('budget')}")

    def reserve(self, provider: Provider, request: Request) -> float:
        """Hold the call's estimated cost, or raise ``BudgetExceeded`` if it could pass the budget."""
        if self.budget is None:
            return 0.0
        price = self.price(provider)
        if price is None:  # check_priced refused these before the run; a provider passed in late is refused here
            self.check_priced([(provider.name, provider)])
            return 0.0
        choices = max(request.n, 1)
        prompts = 1 if provider.capabilities.honours_n else choices
        estimate = price.cost(estimate_prompt_tokens(request) * prompts, request.max_tokens * choices)
        with self._lock:
            if self.stopped is not None and estimate > 0:
                raise self.stopped  # the run has stopped: no further paid call, even one that would fit
            if self.spent + self.reserved + estimate > self.budget:
                stop = BudgetExceeded(self.budget, self.spent + self.reserved, estimate)
                self.stopped = self.stopped or stop
                raise stop
            self.reserved += estimate
        return estimate

    def started(self) -> None:
        """A call is going out (used to wait for the calls in flight when the budget stops a run)."""
        self.in_flight += 1
        if self._idle is not None:
            self._idle.clear()

    def finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def drained(self) -> None:
        """Wait until no call is in flight, so that what they cost reaches their prompts' tallies."""
        if self.in_flight == 0:
            return
        if self._idle is None:
            self._idle = asyncio.Event()
        self._idle.clear()
        await self._idle.wait()

    def settle(self, provider: Provider, reservation: float, completions: Sequence[Completion] | None) -> None:
        """Release a reservation and add what the call cost (nothing if it failed or came from the cache)."""
        cost = 0.0
        if completions and not completions[0].cached:
            price = self.price(provider)
            if price is not None:
                cost = price.cost(sum(c.usage.prompt_tokens for c in completions),
                                  sum(c.usage.completion_tokens for c in completions))
        with self._lock:
            self.reserved -= reservation
            self.spent += cost


class MeteredProvider:
    """A provider with the run's budget and call cache in front of ``complete`` and ``stream``; what it
    says about itself (name, model, capabilities, label, identity...) is the wrapped provider's."""

    def __init__(self, inner: Provider, meter: Meter, cache: "CallCache | None" = None) -> None:
        self.inner = inner
        self.meter = meter
        self.cache = cache
        self.name = inner.name
        self.model = inner.model
        self.capabilities = inner.capabilities
        self.label = inner.label
        self.base_url = inner.base_url

    def key(self) -> str:
        return self.inner.key()

    def identity(self) -> tuple[Any, ...]:
        return self.inner.identity()

    def prompt_tokens(self, request: Request) -> int | None:
        return self.inner.prompt_tokens(request)

    def cached(self, request: Request) -> bool:
        """Whether the call cache already holds this exact call's reply (a run would not make it)."""
        key = self._cache_key(request)
        return key is not None and self.cache is not None and self.cache.get(key) is not None

    def reproducible(self, request: Request) -> bool:
        return self.inner.reproducible(request)

    def _cache_key(self, request: Request) -> str | None:
        from ..cache import same_call_key

        if self.cache is None or self.cache.disabled:
            return None
        return same_call_key(self.inner, request)

    async def _cached(self, key: str | None) -> list[Completion] | None:
        if key is None or self.cache is None:
            return None
        started = time.perf_counter()
        found = await asyncio.to_thread(self.cache.get, key)
        if found is None:
            return None
        latency = time.perf_counter() - started
        return [replace(c, cached=True, retries=0, cpu_s=0.0, latency_s=latency) for c in found]

    async def _store(self, key: str | None, completions: list[Completion]) -> None:
        if key is not None and self.cache is not None and completions:
                await asyncio.to_thread(self.cache.put, key, completions)

    async def complete(self, request: Request) -> list[Completion]:
        key = self._cache_key(request)
        hit = await self._cached(key)
        if hit is not None:
            return hit
        reservation = self.meter.reserve(self.inner, request)
        completions: list[Completion] | None = None
        self.meter.started()
        try:
            try:
                completions = await self.inner.complete(request)
            finally:
                self.meter.settle(self.inner, reservation, completions)
            await self._store(key, completions)
        finally:
            self.meter.finished()  # the caller accounts the reply in the same step: no await after this
        return completions

    async def stream(self, request: Request) -> AsyncIterator[str | Completion]:
        key = self._cache_key(request)
        hit = await self._cached(key)
        if hit is not None:
            if hit[0].text:
                yield hit[0].text
            yield hit[0]
            return
        reservation = self.meter.reserve(self.inner, request)
        settled = False
        self.meter.started()
        try:
            async for piece in self.inner.stream(request):
                if isinstance(piece, Completion):  # the last item: account and store it before handing it on
                    self.meter.settle(self.inner, reservation, [piece])
                    settled = True
                    await self._store(key, [piece])
                yield piece
        finally:
            if not settled:
                self.meter.settle(self.inner, reservation, None)
            self.meter.finished()

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        return await self.inner.embed(texts, model)

    def decoder(self, requests: Sequence[Request], top_k: int, tally: "Tally") -> Decoder:
        """In-process batched decoders are the provider's own; remote ones call through this wrapper."""
        caps = self.inner.capabilities
        if caps.batched or not caps.prefix_continuation:
            return self.inner.decoder(requests, top_k, tally)
        return PrefixDecoder(self, requests, top_k, tally, self.inner.label)

    async def aclose(self) -> None:
        """The wrapped provider belongs to the registry (or caller) that made it."""
