"""OpenAI-compatible backends (OpenAI, DeepSeek, Together, vLLM, Ollama, llama.cpp) through the openai SDK.

The SDK owns the retry loop (``retry.py`` says what it cannot know); ``transport.py`` bounds
concurrency per endpoint and enforces the per-attempt deadline; ``parse.py`` reads the SDK's typed
replies. This module builds each backend's request body and turns failures into typed errors whose
messages name the setting to change and never carry a key.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, Sequence

import httpx
import openai
from openai.types import Completion as RawCompletion
from openai.types.chat import ChatCompletion

from ..errors import AuthError, ContextLengthError, ProviderError, ProviderResponseError, RetriesExhaustedError, setting
from ..formatting import count
from ..secrets import redact
from .backends import prefix_backends
from ..calls import Completion, Request, TokenLogprob, Usage
from .base import Capabilities
from .endpoint import Endpoint
from ..decoding import PrefixDecoder
from .parse import (ReplyShapeError, finish_of, loads, parse_choices, parse_logprobs, parse_ollama_generate,
                    parse_usage, text_of)
from .retry import RETRY_COUNT_HEADER, error_fields, is_context_length, is_quota_exhausted, retries_of
from .server_template import ServerTemplate, discover, render
from .templates import render_prompt

if TYPE_CHECKING:
    from ..usage import Tally

__all__ = ["OpenAICompatibleProvider", "MemberOptions", "parse_logprobs"]

RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class MemberOptions:
    """Per-member switches beyond the preset: ``reasoning`` overrides the preset's reasoning-model table;
    ``thinking`` lets DeepSeek think on calls that need neither logprobs nor greedy determinism."""

    reasoning: bool | None = None
    thinking: bool = False


class OpenAICompatibleProvider:
    """One model on one OpenAI-compatible endpoint."""

    def __init__(self, endpoint: Endpoint, model: str, label: str, prefix_mode: str, template: str | None,
                 options: MemberOptions = MemberOptions()) -> None:
        self.endpoint = endpoint
        self.base_url: str | None = endpoint.base_url
        self.model = model
        self.name = endpoint.preset.name
        self.label = label
        self.options = options
        preset = endpoint.preset
        self.reasoning = preset.is_reasoning(model) if options.reasoning is None else options.reasoning
        self.prefix_mode = "none" if self.reasoning else prefix_mode
        self.template = template
        self._server_template: ServerTemplate | None = None
        self.capabilities = Capabilities(
            max_top_logprobs=0 if self.reasoning else preset.max_top_logprobs,
            prefix_continuation=self.prefix_mode != "none",
            honours_n=preset.honours_n,
            prefix_mode=self.prefix_mode,  # type: ignore[arg-type]
            embeddings=preset.embeddings,
        )

    @property
    def template_source(self) -> str:
        """How raw (prefix) prompts are rendered for this member: ``config``, a server template, or ChatML."""
        if self.template:
            return "config template"
        if self.endpoint.preset.chat_template == "server":
            found = self._server_template
            return found.label if found else "server chat template (not yet asked)"
        return "client-side ChatML"

    def key(self) -> str:
        return f"{self.name}|{self.endpoint.base_url}|{self.model}"

    def identity(self) -> tuple[Any, ...]:
        return (self.key(), self.prefix_mode, self.template, repr(self.options))

    def prompt_tokens(self, request: Request) -> int | None:
        return None  # the server's tokenizer is not at hand

    def reproducible(self, request: Request) -> bool:
        """Temperature 0 where it is sent (reasoning models take none), or a seed where the server honours
        seeds exactly (``Preset.honours_seed``: OpenAI's is best effort, DeepSeek takes none)."""
        greedy = request.temperature == 0 and not self.reasoning
        return greedy or (request.seed is not None and self.endpoint.preset.honours_seed)

    def decoder(self, requests: Sequence[Request], top_k: int, tally: "Tally") -> PrefixDecoder:
        """Sequences continued through exact prefix continuation, many tokens per call."""
        return PrefixDecoder(self, requests, top_k, tally, self.label)

    async def aclose(self) -> None:
        """The endpoint's client is closed by the registry that owns it."""

    # Errors

    @property
    def _where(self) -> str:
        return f"{self.label} ({self.endpoint.shown_url}, model {self.model})"

    def _give_up(self, exc: BaseException, retries: int | None = None, streaming: bool = False) -> ProviderError:
        """The typed error for ``exc``, its message redacted, counting the retries spent."""
        if isinstance(exc, ProviderError):
            return exc
        spent = retries_of(exc) if retries is None else retries
        cls, message = self._describe(exc, spent, streaming)
        return cls(redact(f"{self._where}: {message}"), retries=spent)

    def _describe(self, exc: BaseException, retries: int, streaming: bool) -> tuple[type[ProviderError], str]:
        timeout = self.endpoint.timeout_s
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            code, message = error_fields(exc.response.content)
            detail = f"HTTP {status}" + (f": {message}" if message else "")
            if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
                env = self.endpoint.api_key_env or "the key variable"
                return AuthError, f"the API key was rejected ({detail}); check {env} or {setting('api_key_env')}"
            if status in (400, 413, 422) and is_context_length(code, message):
                return ContextLengthError, (f"the prompt does not fit the model's context ({detail}); lower "
                                            f"{setting('max_tokens')} or shorten the prompt")
            if is_quota_exhausted(status, exc.response.content):
                return ProviderError, f"quota exhausted; check your plan/billing ({detail})"
            if exc.response.headers.get("x-should-retry") == "false":
                return ProviderError, f"{detail} (not retried: the server says retrying cannot help)"
            if retries and (status in RETRYABLE_STATUS or status >= 500):
                return RetriesExhaustedError, (f"{detail}, still failing after {count(retries, 'retry')}; "
                                               f"raise {setting('max_retries')} or try later")
            return ProviderError, detail
        if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
            return RetriesExhaustedError, (f"timed out after {count(retries, 'retry')} (timeout {timeout:g} s per "
                                           f"attempt); raise {setting('timeout')} or {setting('max_retries')}")
        if streaming and isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
            return ProviderError, "the stream was interrupted before the reply was complete; is the server up?"
        if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
            return RetriesExhaustedError, (f"could not connect after {count(retries, 'retry')}; is the server up? "
                                           f"raise {setting('timeout')} or {setting('max_retries')}")
        if isinstance(exc, (ValueError, openai.APIResponseValidationError)):  # the SDK could not read the reply
            return ProviderResponseError, f"the reply is not a valid completion ({type(exc).__name__}: {exc})"
        return ProviderError, f"{type(exc).__name__}: {exc}"

    # Request bodies

    def _check(self, request: Request) -> None:
        if request.wants_logprobs and self.reasoning:
            raise ProviderError(f"{self._where}: a reasoning model gives no logprobs; "
                                "use a non-reasoning model or set reasoning: false")
        if request.prefix and request.prompt is None and self.prefix_mode == "none":
            raise ProviderError(
                f"{self.label}: provider '{self.name}' cannot continue an assistant prefix; use "
                f"{prefix_backends()}"
            )

    def _sends_n(self, request: Request) -> bool:
        return request.n > 1 and self.endpoint.preset.honours_n and self.model not in self.endpoint.ignores_n

    def _sampling(self, request: Request, raw: bool) -> dict[str, Any]:
        preset = self.endpoint.preset
        args: dict[str, Any] = {"model": self.model, ("max_tokens" if raw else preset.token_field): request.max_tokens}
        if not self.reasoning:
            args["temperature"] = request.temperature
            args["top_p"] = request.top_p
        if request.seed is not None:
            args["seed"] = request.seed
        if request.stop:
            args["stop"] = list(request.stop)
        if self._sends_n(request):
            args["n"] = request.n
        return args

    def _thinking(self, request: Request) -> bool:
        """DeepSeek thinks only when the member opted in and the call needs no logprobs, prefix or greedy."""
        return (self.options.thinking and not request.wants_logprobs and not request.prefix
                and request.temperature > 0)

    def _extra(self, request: Request) -> dict[str, Any]:
        preset = self.endpoint.preset
        extra: dict[str, Any] = dict(preset.extra_body)
        if preset.thinking_switch:
            extra["thinking"] = {"type": "enabled" if self._thinking(request) else "disabled"}
        return extra

    def _stream_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"stream": True}
        if self.endpoint.preset.stream_usage:
            args["stream_options"] = {"include_usage": True}
        return args

    def _chat_args(self, request: Request, stream: bool) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [m.as_dict() for m in request.messages]
        extra = self._extra(request)
        if request.prefix:
            if self.prefix_mode == "deepseek":
                messages.append({"role": "assistant", "content": request.prefix, "prefix": True})
            elif self.prefix_mode == "vllm":
                messages.append({"role": "assistant", "content": request.prefix})
                extra.update(continue_final_message=True, add_generation_prompt=False)
        args = self._sampling(request, raw=False)
        if request.wants_logprobs:
            k = min(request.top_logprobs, self.capabilities.max_top_logprobs)
            if self.endpoint.preset.logprobs_style == "integer":
                args["logprobs"] = k
            else:
                args.update(logprobs=True, top_logprobs=k)
        # plain dicts: the SDK's typed params do not know provider fields like ``prefix``
        args.update(messages=messages, extra_body=extra or None)
        if stream:
            args.update(self._stream_args())
        return args

    def _uses_raw(self, request: Request) -> bool:
        return request.prompt is not None or bool(request.prefix and self.prefix_mode == "raw")

    def _raw_k(self, request: Request) -> int:
        cap = self.endpoint.preset.raw_max_logprobs or self.capabilities.max_top_logprobs
        return min(request.top_logprobs, self.capabilities.max_top_logprobs, cap)

    async def _prompt_text(self, request: Request) -> str:
        if request.prompt is not None:
            return request.prompt + request.prefix
        if self.template:
            return render_prompt(request.messages, self.template, request.prefix)
        if self.endpoint.preset.chat_template == "server":
            client = self.endpoint.client()
            if self._server_template is None:
                self._server_template = await discover(client, self.endpoint.root_url)
            return await render(self._server_template, client, self.endpoint.root_url, request.messages, request.prefix)
        return render_prompt(request.messages, "chatml", request.prefix)

    async def _raw_args(self, request: Request, stream: bool) -> dict[str, Any]:
        args = self._sampling(request, raw=True)
        args["prompt"] = await self._prompt_text(request)
        if request.wants_logprobs:
            args["logprobs"] = self._raw_k(request)
        args["extra_body"] = self._extra(request) or None
        if stream:
            args.update(self._stream_args())
        return args

    # Calls

    async def complete(self, request: Request) -> list[Completion]:
        """``request.n`` choices; where the endpoint gives fewer, the rest come from separate seeded calls."""
        self._check(request)
        if request.n > 1 and not self._sends_n(request):
            return await self._separately(request, 0)
        completions = await self._once(request)
        if len(completions) < request.n:
            self.endpoint.ignores_n.add(self.model)
            completions += await self._separately(request, len(completions))
        return completions

    async def _separately(self, request: Request, start: int) -> list[Completion]:
        def one(i: int) -> Request:
            return request.but(n=1, seed=None if request.seed is None else request.seed + i)

        replies = await asyncio.gather(*(self._once(one(i)) for i in range(start, request.n)))
        return [c for reply in replies for c in reply[:1]]

    async def _once(self, request: Request) -> list[Completion]:
        """One call. Only the SDK's request is wrapped into provider errors (with the retries it spent); a
        reply of the wrong shape is ``ProviderResponseError``; anything else is a bug of ours and surfaces
        as one (an internal error), never as an upstream's fault."""
        started = time.perf_counter()
        if self._uses_raw(request) and self.endpoint.preset.raw_api == "ollama":
            return [await self._ollama_generate(request, started)]
        client = self.endpoint.client()
        raw_prompt = self._uses_raw(request)
        args = await self._raw_args(request, False) if raw_prompt else self._chat_args(request, False)
        try:
            if raw_prompt:
                raw: Any = await client.completions.with_raw_response.create(**args)
            else:
                raw = await client.chat.completions.with_raw_response.create(**args)
            response = raw.parse()
        except Exception as exc:  # typed below, once, with the retries the SDK spent
            raise self._give_up(exc) from exc
        with self._reading():
            return parse_choices(response, chat=not self._uses_raw(request), latency=time.perf_counter() - started,
                                 retries=raw.retries_taken, provider=self.name, model=self.model)

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Reading a reply: values of the wrong type or shape are the upstream's; any other error is ours."""
        try:
            yield
        except ReplyShapeError as exc:
            raise ProviderResponseError(redact(f"{self._where}: the reply is not a valid completion "
                                               f"({type(exc).__name__}: {exc})")) from exc

    async def _ollama_generate(self, request: Request, started: float) -> Completion:
        """Ollama's native ``/api/generate`` with ``raw: true``: the prompt is sent untemplated, so an assistant
        prefix is continued exactly (its OpenAI-compatible routes cannot do that)."""
        options: dict[str, Any] = {"temperature": request.temperature, "top_p": request.top_p,
                                   "num_predict": request.max_tokens, "repeat_penalty": 1.0}
        if request.seed is not None:
            options["seed"] = request.seed
        if request.stop:
            options["stop"] = list(request.stop)
        body: dict[str, Any] = {"model": self.model, "prompt": await self._prompt_text(request), "raw": True,
                                "stream": False, "options": options}
        if request.wants_logprobs:
            body.update(logprobs=True, top_logprobs=min(request.top_logprobs, self.capabilities.max_top_logprobs))
        try:
            response = await self.endpoint.client().post(f"{self.endpoint.root_url}/api/generate",
                                                         cast_to=httpx.Response, body=body)
        except Exception as exc:  # typed, once, with the retries the SDK spent
            raise self._give_up(exc) from exc
        retries = int(response.request.headers.get(RETRY_COUNT_HEADER, 0))
        with self._reading():
            return parse_ollama_generate(loads(response.content), latency=time.perf_counter() - started, retries=retries,
                                         provider=self.name, model=self.model)

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        """``/v1/embeddings`` with ``model`` (default: this member's model)."""
        if not self.capabilities.embeddings:
            raise ProviderError(f"{self._where}: provider '{self.name}' does not serve embeddings here")
        try:
            raw = await self.endpoint.client().embeddings.with_raw_response.create(model=model or self.model, input=texts)
            rows = sorted(raw.parse().data, key=lambda row: row.index)
            return [[float(v) for v in row.embedding] for row in rows]
        except Exception as exc:
            raise self._give_up(exc) from exc

    async def stream(self, request: Request) -> AsyncIterator[str | Completion]:
        """Text pieces as they arrive, then one ``Completion``. A stream cut off before its finish reason raises."""
        request = request.but(n=1)
        self._check(request)
        started = time.perf_counter()
        raw_mode = self._uses_raw(request)
        if raw_mode and self.endpoint.preset.raw_api == "ollama":
            (whole,) = await self._once(request)
            if whole.text:
                yield whole.text
            yield whole
            return
        try:
            client = self.endpoint.client()
            if raw_mode:
                raw = await client.completions.with_raw_response.create(**await self._raw_args(request, True))
            else:
                raw = await client.chat.completions.with_raw_response.create(**self._chat_args(request, True))
        except Exception as exc:
            raise self._give_up(exc) from exc
        retries = raw.retries_taken
        if "text/event-stream" not in raw.headers.get("content-type", ""):
            whole = await self._unstreamed(raw, raw_mode, started, retries)
            if whole.text:
                yield whole.text
            yield whole
            return
        pieces: list[str] = []
        tokens: list[TokenLogprob] = []
        finish: str | None = None
        usage = Usage()
        events = raw.parse()
        chunks = events.__aiter__()
        try:
            while True:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:  # the SDK reading the stream: the upstream's or the network's fault
                    raise self._give_up(exc, retries, streaming=True) from exc
                with self._reading():
                    if getattr(chunk, "usage", None):
                        usage = parse_usage(chunk.usage)
                    deltas = []
                    for choice in chunk.choices or []:
                        tokens.extend(parse_logprobs(getattr(choice, "logprobs", None)))
                        if choice.finish_reason:
                            finish = finish_of(choice.finish_reason)
                        deltas.append(text_of(choice.text if raw_mode else getattr(choice.delta, "content", None),
                                              "a streamed piece"))
                for delta in deltas:
                    if delta:
                        pieces.append(delta)
                        yield delta
        finally:
            await events.response.aclose()
        if finish is None:
            raise ProviderError(redact(f"{self._where}: the stream ended before the reply was complete (no finish "
                                       "reason); the server may have dropped the connection"), retries=retries)
        yield Completion(text="".join(pieces), tokens=tuple(tokens), finish_reason=finish, usage=usage,
                         latency_s=time.perf_counter() - started, provider=self.name, model=self.model, retries=retries)

    async def _unstreamed(self, raw: Any, raw_mode: bool, started: float, retries: int) -> Completion:
        """A server that ignored ``stream`` and sent one JSON body: read it as a whole reply."""
        try:
            data = await raw.http_response.aread()
        except Exception as exc:
            raise self._give_up(exc, retries) from exc
        try:
            with self._reading():
                body = loads(data)
                if not isinstance(body, dict):
                    raise ReplyShapeError(f"the reply is {type(body).__name__}, not a JSON object")
                typed = RawCompletion.construct(**body) if raw_mode else ChatCompletion.construct(**body)
                (first, *_) = parse_choices(typed, chat=not raw_mode, latency=time.perf_counter() - started,
                                            retries=retries, provider=self.name, model=self.model)
                return first
        finally:
            await raw.http_response.aclose()
