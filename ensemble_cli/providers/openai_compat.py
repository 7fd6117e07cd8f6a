"""OpenAI-compatible backends (OpenAI, DeepSeek, Together, vLLM, Ollama, llama.cpp) over httpx.

Calls go through the openai SDK's async client on one shared ``httpx.AsyncClient``; the SDK's own
retries are off so that ``retry.call_with_retries`` is the only retry loop.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Generic, Sequence, TypeVar

import httpx
import openai

from ..errors import AuthError, ProviderError, ProviderResponseError, RetriesExhaustedError
from .base import Capabilities, Completion, Request, TokenLogprob, TopToken, Usage
from .prefix_decoder import PrefixDecoder
from .presets import END_MARKERS, Preset
from .retry import RetryVerdict, call_with_retries, is_retryable_status, retry_after_seconds
from .templates import render_prompt

if TYPE_CHECKING:
    from ..usage import Tally

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One value per running event loop: clients and semaphores must not cross loops."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._factory()
        return value


@dataclass
class Endpoint:
    """One base URL with its key, client, timeout and concurrency bound, shared by its members."""

    preset: Preset
    base_url: str
    clients: PerLoop[openai.AsyncOpenAI]
    limiters: PerLoop[asyncio.Semaphore]
    timeout_s: float
    max_retries: int
    api_key_env: str | None = None

    @property
    def client(self) -> openai.AsyncOpenAI:
        return self.clients.get()

    @property
    def limiter(self) -> asyncio.Semaphore:
        return self.limiters.get()


def make_client(
    base_url: str, api_key: str, http_client: Callable[[], httpx.AsyncClient], timeout_s: float
) -> openai.AsyncOpenAI:
    # openai 3.x runs on httpx2 and accepts an httpx (the project's HTTP client) AsyncClient too
    return openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, http_client=http_client(), max_retries=0,  # type: ignore[arg-type]
        timeout=timeout_s,
    )


def classify(exc: BaseException) -> RetryVerdict:
    if isinstance(exc, openai.APITimeoutError):
        return RetryVerdict(True, reason="timed out")
    if isinstance(exc, openai.APIConnectionError):
        return RetryVerdict(True, reason="connection failed")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if is_retryable_status(status):
            return RetryVerdict(True, retry_after_seconds(exc.response.headers), reason=f"HTTP {status}")
    return RetryVerdict(False)


def _status_detail(exc: openai.APIStatusError) -> str:
    try:
        body = exc.response.json()
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except (ValueError, AttributeError):
        message = None
    return f"HTTP {exc.status_code}" + (f": {message}" if message else "")


class OpenAICompatibleProvider:
    """One model on one OpenAI-compatible endpoint."""

    def __init__(self, endpoint: Endpoint, model: str, label: str, prefix_mode: str, template: str) -> None:
        self.endpoint = endpoint
        self.model = model
        self.name = endpoint.preset.name
        self.label = label
        self.prefix_mode = prefix_mode
        self.template = template
        mode = prefix_mode
        self.capabilities = Capabilities(
            max_top_logprobs=endpoint.preset.max_top_logprobs,
            prefix_continuation=mode != "none",
            honours_n=endpoint.preset.honours_n,
            prefix_mode=mode,  # type: ignore[arg-type]
            embeddings=endpoint.preset.embeddings,
        )

    def key(self) -> str:
        return f"{self.name}|{self.endpoint.base_url}|{self.model}"

    def decoder(self, requests: Sequence[Request], top_k: int, tally: Tally) -> PrefixDecoder:
        return PrefixDecoder(self, requests, top_k, tally, self.label)

    async def aclose(self) -> None:
        """The shared HTTP client is closed by the registry that owns it."""

    def _give_up(self, exc: BaseException, retries: int) -> BaseException:
        where = f"{self.label} ({self.endpoint.base_url}, model {self.model})"
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            env = self.endpoint.api_key_env or "the key variable"
            return AuthError(f"{where}: the API key was rejected ({_status_detail(exc)}); check {env} or --api-key-env")
        if isinstance(exc, openai.APIStatusError):
            detail = _status_detail(exc)
            if retries and is_retryable_status(exc.status_code):
                return RetriesExhaustedError(f"{where}: {detail}, still failing after {retries} retries")
            return ProviderError(f"{where}: {detail}")
        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
            what = "timed out" if isinstance(exc, openai.APITimeoutError) else "could not connect"
            return RetriesExhaustedError(f"{where}: {what} after {retries} retries; is the server up? raise timeout or max_retries")
        if isinstance(exc, (ValueError, TypeError, KeyError, AttributeError, openai.APIResponseValidationError)):
            return ProviderResponseError(f"{where}: the reply is not a valid completion ({type(exc).__name__}: {exc})")
        if isinstance(exc, ProviderError):
            return exc
        return ProviderError(f"{where}: {type(exc).__name__}: {exc}")

    async def _call(self, make: Any) -> tuple[Any, int]:
        async with self.endpoint.limiter:
            return await call_with_retries(
                make, classify, max_retries=self.endpoint.max_retries, give_up=self._give_up
            )

    def _common_args(self, request: Request) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if request.seed is not None:
            args["seed"] = request.seed
        if request.stop:
            args["stop"] = list(request.stop)
        if request.n > 1:
            args["n"] = request.n
        return args

    def _chat_messages(self, request: Request) -> tuple[Any, dict[str, Any]]:
        """Chat messages (plain dicts: the SDK's typed params do not know provider fields like ``prefix``)."""
        messages: list[dict[str, Any]] = [m.as_dict() for m in request.messages]
        extra: dict[str, Any] = dict(self.endpoint.preset.extra_body)
        if request.prefix:
            mode = self.prefix_mode
            if mode == "deepseek":
                messages.append({"role": "assistant", "content": request.prefix, "prefix": True})
            elif mode == "vllm":
                messages.append({"role": "assistant", "content": request.prefix})
                extra.update(continue_final_message=True, add_generation_prompt=False)
            else:
                raise ProviderError(
                    f"{self.label}: provider '{self.name}' cannot continue an assistant prefix; "
                    "use deepseek, vllm, llamacpp, ollama or set prefix_mode"
                )
        return messages, extra

    def _uses_raw(self, request: Request) -> bool:
        return request.prompt is not None or bool(request.prefix and self.prefix_mode == "raw")

    def _raw_request(self, request: Request) -> tuple[str, dict[str, Any] | None]:
        """The text for ``/v1/completions`` (raw prompt, or templated messages, then the prefix) and extra fields."""
        if request.prompt is not None:
            text = request.prompt + request.prefix
        else:
            text = render_prompt(request.messages, self.template, request.prefix)
        return text, dict(self.endpoint.preset.extra_body) or None

    async def complete(self, request: Request) -> list[Completion]:
        if self._uses_raw(request):
            return await self._complete_raw(request)
        return await self._complete_chat(request)

    async def _complete_chat(self, request: Request) -> list[Completion]:
        messages, extra = self._chat_messages(request)
        args = self._common_args(request)
        if request.wants_logprobs:
            k = min(request.top_logprobs, self.capabilities.max_top_logprobs)
            if self.endpoint.preset.logprobs_style == "integer":
                args["logprobs"] = k
            else:
                args["logprobs"] = True
                args["top_logprobs"] = k
        client = self.endpoint.client
        started = time.perf_counter()
        response, retries = await self._call(
            lambda: client.chat.completions.create(messages=messages, extra_body=extra or None, **args)
        )
        latency = time.perf_counter() - started
        try:
            return self._parse(response.model_dump(), latency, retries, chat=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self._give_up(exc, retries) from exc

    async def _complete_raw(self, request: Request) -> list[Completion]:
        prompt, extra = self._raw_request(request)
        args = self._common_args(request)
        if request.wants_logprobs:
            args["logprobs"] = min(request.top_logprobs, self.capabilities.max_top_logprobs)
        client = self.endpoint.client
        started = time.perf_counter()
        response, retries = await self._call(lambda: client.completions.create(prompt=prompt, extra_body=extra, **args))
        latency = time.perf_counter() - started
        try:
            return self._parse(response.model_dump(), latency, retries, chat=False)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self._give_up(exc, retries) from exc

    def _parse(self, body: dict[str, Any], latency: float, retries: int, chat: bool) -> list[Completion]:
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError("no choices in the reply")
        usage_body = body.get("usage") or {}
        usage = Usage(int(usage_body.get("prompt_tokens") or 0), int(usage_body.get("completion_tokens") or 0))
        completions = []
        for position, choice in enumerate(sorted(choices, key=lambda c: c.get("index") or 0)):
            text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
            completions.append(
                Completion(
                    text=text or "",
                    tokens=parse_logprobs(choice.get("logprobs")),
                    finish_reason=choice.get("finish_reason") or "stop",
                    usage=usage if position == 0 else Usage(),
                    latency_s=latency,
                    provider=self.name,
                    model=self.model,
                    retries=retries,
                )
            )
        return completions

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        """``/v1/embeddings`` with ``model`` (default: this member's model)."""
        client = self.endpoint.client
        response, _ = await self._call(lambda: client.embeddings.create(model=model or self.model, input=texts))
        try:
            rows = sorted(response.model_dump()["data"], key=lambda row: row["index"])
            return [[float(v) for v in row["embedding"]] for row in rows]
        except (ValueError, TypeError, KeyError) as exc:
            raise self._give_up(exc, 0) from exc

    async def stream(self, request: Request) -> AsyncIterator[str | Completion]:
        args = self._common_args(request)
        client = self.endpoint.client
        raw = self._uses_raw(request)
        if raw:
            prompt, raw_extra = self._raw_request(request)
            stream, _ = await self._call(
                lambda: client.completions.create(prompt=prompt, stream=True, extra_body=raw_extra, **args)
            )
        else:
            messages, extra = self._chat_messages(request)
            stream, _ = await self._call(
                lambda: client.chat.completions.create(messages=messages, stream=True, extra_body=extra or None, **args)
            )
        pieces: list[str] = []
        finish: str | None = None
        try:
            async for chunk in stream:
                for choice in chunk.choices or []:
                    delta = choice.text if raw else getattr(choice.delta, "content", None)
                    finish = choice.finish_reason or finish
                    if delta:
                        pieces.append(delta)
                        yield delta
        except openai.APIError as exc:
            raise self._give_up(exc, 0) from exc
        if finish is None:
            raise ProviderError(f"{self.label}: the stream ended before the reply was finished")
        yield Completion(text="".join(pieces), finish_reason=finish, provider=self.name, model=self.model)


def _top(text: str, logprob: Any) -> TopToken:
    return TopToken(text=text, logprob=float(logprob), is_end=text in END_MARKERS)


def parse_logprobs(logprobs: Any) -> tuple[TokenLogprob, ...]:
    """Normalise both logprob shapes: chat ``content`` entries and legacy parallel lists."""
    if not logprobs:
        return ()
    if isinstance(logprobs, str):
        logprobs = json.loads(logprobs)
    content = logprobs.get("content")
    if content is not None:
        return tuple(
            TokenLogprob(
                text=entry["token"],
                logprob=float(entry["logprob"]),
                top=tuple(_top(t["token"], t["logprob"]) for t in entry.get("top_logprobs") or ()),
            )
            for entry in content
        )
    tokens = logprobs.get("tokens") or []
    token_logprobs = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    parsed = []
    for text, lp, top in zip(tokens, token_logprobs, tops):
        alternatives = tuple(
            sorted((_top(t, v) for t, v in (top or {}).items()), key=lambda t: -t.logprob)
        )
        parsed.append(TokenLogprob(text=text, logprob=float(lp if lp is not None else 0.0), top=alternatives))
    return tuple(parsed)

