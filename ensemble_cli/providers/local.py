"""The embedded backend: SmolLM2-135M-Instruct, Gemma 3 270M or any GGUF (``local_models.py``) in-process
via llama-cpp-python.

It continues assistant prefixes exactly (the model's prompt form, then the prefix, no end of turn),
returns top-k log-probabilities from the full distribution, and keeps the evaluated prefix between calls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Sequence

import numpy as np

from ..errors import ProviderError
from ..numeric import TopCandidates, log_softmax, top_k, top_logprobs
from .backends import LOCAL
from ..calls import END, Completion, Request, TokenLogprob, TopToken, Usage
from ..decoding import Position
from .gguf_info import read_info
from .llama_engine import LlamaEngine, SequenceBatch, resolve_model_path
from .local_models import display_name
from .prompt_form import PromptForm
from .templates import PLAIN_STOP

if TYPE_CHECKING:
    from ..usage import Tally

MAX_TOP_LOGPROBS = LOCAL.max_top_logprobs
_ENGINES: dict[Path, LlamaEngine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(model: str | None) -> LlamaEngine:
    """The process-wide engine for a model: each GGUF is loaded once and shared."""
    return engine_at(resolve_model_path(model).resolve())


def engine_at(path: Path) -> LlamaEngine:
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


CAPABILITIES = LOCAL
MAX_BATCH = 16
"""The most choices of one request decoded in one batch."""


class LocalProvider:
    """One GGUF model in-process. Calls are serialised on the model; each runs on its decode thread.

    The file is found when the provider is made (a wrong path fails before anything runs); the model
    loads on first use, so a whole run is validated before any model loads.
    """

    name = "local"
    capabilities = CAPABILITIES

    def __init__(self, model: str | None, label: str = "local", template: str | None = None) -> None:
        self.path = resolve_model_path(model).resolve()
        self.model = display_name(model)
        self.label = label
        self.template = template
        """The member's own prompt template (a built-in name or Jinja2 source); None: the model's form."""
        if self.plain_prompts:
            self.capabilities = replace(CAPABILITIES, plain_prompts=True)
        self.base_url: str | None = None
        self._engine: LlamaEngine | None = None
        self._cache: SequenceBatch | None = None

    @property
    def engine(self) -> LlamaEngine:
        if self._engine is None:
            self._engine = engine_at(self.path)
        return self._engine

    @property
    def plain_prompts(self) -> bool:
        """The model has no chat template (a base model) and no template was chosen: chat messages are
        written in the plain completion form (read from the GGUF's header, before the model loads)."""
        return self._header_form().plain

    def prompt_form(self) -> str:
        """How this provider writes prompts, in words (for run notes)."""
        return self._header_form().describe()

    def _header_form(self) -> PromptForm:
        """The prompt form as the GGUF's header gives it (enough to say which form; rendering needs the
        model's BOS/EOS texts: ``LlamaEngine.form``)."""
        return PromptForm(read_info(self.path).chat_template, template=self.template)

    def _ended(self, request: Request) -> Request:
        """In the plain completion form a base model's answer ends where it starts the next question."""
        if request.prompt is None and self.plain_prompts and PLAIN_STOP not in request.stop:
            return request.but(stop=(*request.stop, PLAIN_STOP))
        return request

    def tokens_of(self, request: Request) -> list[int]:
        return self.engine.prompt_tokens(request.messages, request.prefix, request.prompt, self.template)

    def key(self) -> str:
        return f"local|{self.path}" if self.template is None else f"local|{self.path}|{self.template}"

    def identity(self) -> tuple[Any, ...]:
        return (self.key(),)

    def reproducible(self, request: Request) -> bool:
        """Greedy decoding, or sampling from a generator seeded with the request's seed: both in-process."""
        return request.temperature == 0 or request.seed is not None

    def prompt_tokens(self, request: Request) -> int | None:
        return len(self.tokens_of(request))

    def decoder(self, requests: Sequence[Request], top_k: int, tally: "Tally") -> "LocalDecoder":
        return LocalDecoder(self.engine, requests, top_k, tally, model=f"{self.name}/{self.model}",
                            template=self.template)

    async def aclose(self) -> None:
        if self._engine is None:
            return
        with self._engine.lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None

    async def complete(self, request: Request) -> list[Completion]:
        """The choices, decoded on the engine's thread; cancelled (the caller went away), the decode stops at
        its next token instead of running on to max_tokens."""
        stop = threading.Event()
        request = self._ended(request)
        try:
            return await self.engine.run(self._complete_sync, request, stop)
        except asyncio.CancelledError:
            stop.set()
            raise

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        raise ProviderError(f"{self.label}: the local backend has no embeddings endpoint")

    async def stream(self, request: Request) -> AsyncIterator[str | Completion]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Completion | BaseException] = asyncio.Queue()

        stop = threading.Event()
        request = self._ended(request)

        def produce() -> None:
            try:
                completion = self._generate(request, np.random.default_rng(request.seed),
                                            lambda text: loop.call_soon_threadsafe(queue.put_nowait, text), stop)
                loop.call_soon_threadsafe(queue.put_nowait, completion)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        worker = asyncio.ensure_future(self.engine.run(produce))
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Completion):
                    return
        finally:
            stop.set()  # a reader that went away stops the decode at its next token
            await asyncio.gather(worker, return_exceptions=True)

    def _complete_sync(self, request: Request, stop: threading.Event | None = None) -> list[Completion]:
        """One choice on the cached sequence; ``n`` choices decoded together in one batch, choice j sampled
        from a generator seeded with ``seed + j`` (as a call with that seed would be)."""
        if request.n <= 1:
            return [self._generate(request, np.random.default_rng(request.seed), stop=stop)]
        choices: list[Completion] = []
        for chunk in self._chunks(request):
            choices += self._generate_together(request, chunk, stop)
        return [choices[0]] + [replace(c, usage=Usage(0, c.usage.completion_tokens)) for c in choices[1:]]

    def _chunks(self, request: Request) -> list[range]:
        """The choices split so that each batch's sequences fit one context of the model."""
        engine = self.engine
        prompt = len(self.tokens_of(request))
        per_choice = prompt + request.max_tokens + 8
        fit = max(1, min(MAX_BATCH, engine.n_ctx_train // per_choice))
        return [range(start, min(start + fit, request.n)) for start in range(0, request.n, fit)]

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
        self, request: Request, rng: np.random.Generator, on_text: Callable[[str], object] | None = None,
        stop: threading.Event | None = None,
    ) -> Completion:
        engine = self.engine
        started = time.perf_counter()
        with engine.lock:
            cpu_started = time.process_time()  # the whole process: llama.cpp decodes on its own threads
            prompt = self.tokens_of(request)
            cache, logits = self._prefill(prompt, request.max_tokens)
            draft = Draft(engine, request, rng, on_text)
            while (token := draft.take(logits)) is not None:
                if stop is not None and stop.is_set():
                    raise Cancelled("the caller went away")
                logits = cache.feed({0: [token]})[0]
            cpu_s = time.process_time() - cpu_started
        return draft.completion(self, len(prompt), time.perf_counter() - started, cpu_s)

    def _generate_together(self, request: Request, choices: range, stop: threading.Event | None) -> list[Completion]:
        """The ``choices`` of ``request`` as sequences of one batch: the prompt evaluated once and forked,
        then every unfinished sequence advanced by one batched decode per token."""
        engine = self.engine
        started = time.perf_counter()
        with engine.lock:
            cpu_started = time.process_time()
            prompt = self.tokens_of(request)
            size = len(choices)
            batch = SequenceBatch(engine, size, size * (len(prompt) + request.max_tokens + 8))
            try:
                first = batch.feed({0: prompt})[0]
                for seq in range(1, size):
                    batch.copy_sequence(0, seq)
                drafts = [Draft(engine, request, np.random.default_rng(None if request.seed is None
                                                                       else request.seed + j))
                          for j in choices]
                logits = {seq: first for seq in range(size)}
                while logits:
                    if stop is not None and stop.is_set():
                        raise Cancelled("the caller went away")
                    chosen = {seq: drafts[seq].take(row) for seq, row in logits.items()}
                    logits = batch.feed({seq: [token] for seq, token in chosen.items() if token is not None})
            finally:
                batch.close()
            cpu_s = (time.process_time() - cpu_started) / size
        latency = time.perf_counter() - started
        return [draft.completion(self, len(prompt), latency, cpu_s) for draft in drafts]


class Draft:
    """One sequence being generated: chooses each next token from the logits, and says when it is done
    (an end token, a stop string, or max_tokens)."""

    def __init__(self, engine: LlamaEngine, request: Request, rng: np.random.Generator,
                 on_text: Callable[[str], object] | None = None) -> None:
        self.engine, self.request, self.rng, self.on_text = engine, request, rng, on_text
        self.generated: list[int] = []
        self.tokens: list[TokenLogprob] = []
        self.end_top: tuple[TopToken, ...] = ()
        self.finish = "length"
        self.text = ""
        self.pending = b""
        self.done = request.max_tokens <= 0

    def take(self, logits: np.ndarray) -> int | None:
        """The token to feed next, or None once the sequence is finished."""
        if self.done:
            return None
        request, engine = self.request, self.engine
        logprobs = log_softmax(logits)
        token = choose_token(logprobs, request.temperature, request.top_p, self.rng)
        top = top_tokens(engine, top_k(logprobs, request.top_logprobs)) if request.wants_logprobs else ()
        if engine.is_end(token):
            self.finish, self.end_top, self.done = "stop", top, True
            return None
        self.generated.append(token)
        self.tokens.append(TokenLogprob(engine.piece(token), float(logprobs[token]), top))
        if self.on_text is not None or request.stop:
            self.pending += engine.piece_bytes(token)
            new_text = self.pending.decode("utf-8", errors="ignore")
            if self.on_text is not None and new_text != self.text and not _incomplete(self.pending):
                self.on_text(new_text[len(self.text):])
                self.text = new_text
            if request.stop and _cut_at_stop(new_text, request.stop) is not None:
                self.finish, self.done = "stop", True
                return None
        if len(self.generated) >= request.max_tokens:
            self.done = True
            return None
        return token

    def completion(self, provider: "LocalProvider", prompt_tokens: int, latency_s: float, cpu_s: float) -> Completion:
        full = self.engine.detokenize(self.generated)
        if self.request.stop:
            cut = _cut_at_stop(full, self.request.stop)
            full = full if cut is None else cut
        return Completion(
            text=full,
            tokens=tuple(self.tokens),
            finish_reason=self.finish,
            usage=Usage(prompt_tokens, len(self.generated)),
            latency_s=latency_s,
            provider=provider.name,
            model=provider.model,
            end_logprobs=self.end_top,
            cpu_s=cpu_s,
        )


class Cancelled(Exception):
    """The caller of an in-process decode went away: the decode stops (nobody reads its reply)."""


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


class LocalDecoder:
    """Sequences of one in-process model in one llama.cpp context, advanced by one batched decode.

    Sequences whose requests render to the same prompt share its evaluation (the first is evaluated,
    the others are forked from it). Text a sequence chose itself (its own top token) is appended by that
    token's id. Text chosen for it (another member's token, e.g. " Ray" where this model's token is
    " Rayleigh") opens a *tail*: from there on, the sequence holds this model's own tokenization of the
    text since its last own choice, re-tokenised as text arrives; only the tokens that change are dropped
    from the cache and evaluated again (the prefix before them is never re-read). The tail closes at the
    sequence's next own choice whose tokens agree with that tokenization.
    """

    def __init__(self, engine: LlamaEngine, requests: Sequence[Request], top_k: int, tally: "Tally",
                 model: str = "local/smollm2", template: str | None = None) -> None:
        self.engine = engine
        self.model = model
        self.template = template
        self.requests = list(requests)
        self.top_k = top_k
        self.tally = tally
        self.batch: SequenceBatch | None = None
        count = len(self.requests)
        self.prompt_length: list[int] = [0] * count
        self.generated: list[list[int]] = [[] for _ in self.requests]
        """Each sequence's tokens after its prompt: those in the cache, then those to feed."""
        self.valid: list[int] = [0] * count
        """How many of ``generated`` are in the cache as they stand (the rest are fed at the next step)."""
        self.synced: list[int] = [0] * count
        """Where the open tail starts in ``generated`` (equal to its length when no tail is open)."""
        self.tail: list[str] = [""] * count
        self.offered: list[dict[str, int]] = [{} for _ in self.requests]
        self.choice: list[str | None] = [None] * count
        self.rewound = 0
        """Tokens dropped from the cache and evaluated again, over all sequences (cross-tokenizer tails)."""
        self._logits: dict[int, np.ndarray] = {}
        self.source: list[int] = list(range(count))

    def _step(self, sequences: Sequence[int]) -> dict[int, list[Position]]:
        with self.engine.lock:
            cpu_started = time.process_time()  # the whole process: llama.cpp decodes on its own threads
            opening = self.batch is None
            if opening:
                self._open_with_logits(sequences)
            else:
                assert self.batch is not None
                self._logits = self.batch.feed({s: self._unfed(s) for s in sequences})
            found: dict[int, list[Position]] = {}
            for seq in sequences:
                self.valid[seq] = len(self.generated[seq])
                found[seq] = [self._position(seq, self._logits[seq])]
                if opening:  # forks of this sequence were offered the same candidates
                    for fork, source in enumerate(self.source):
                        if source == self.source[seq]:
                            self.offered[fork], self.choice[fork] = self.offered[seq], self.choice[seq]
            cpu_s = time.process_time() - cpu_started
        self.tally.add_steps(1, completion_tokens=len(sequences), model=self.model, cpu_s=cpu_s)
        return found

    def _unfed(self, seq: int) -> list[int]:
        """The tokens ``seq`` still has to evaluate, after dropping from the cache those that changed."""
        assert self.batch is not None
        cached = len(self.batch.tokens[seq]) - self.prompt_length[seq]
        if self.valid[seq] < cached:
            self.batch.truncate(seq, self.prompt_length[seq] + self.valid[seq])
            cached = self.valid[seq]
        return self.generated[seq][cached:]

    def _open_with_logits(self, sequences: Sequence[int]) -> None:
        """Evaluate each distinct prompt once, fork the copies, and keep every sequence's first logits."""
        engine = self.engine
        prompts = [engine.prompt_tokens(r.messages, r.prefix, r.prompt, self.template) for r in self.requests]
        self.prompt_length = [len(p) for p in prompts]
        first_of: dict[tuple[int, ...], int] = {}
        for seq, prompt in enumerate(prompts):
            first_of.setdefault(tuple(prompt), seq)
        n_ctx = sum(len(p) + r.max_tokens + 8 for p, r in zip(prompts, self.requests))
        self.batch = SequenceBatch(engine, len(prompts), n_ctx)
        sources = sorted(set(first_of.values()))
        logits = self.batch.feed({seq: prompts[seq] for seq in sources})
        self.source = [first_of[tuple(prompt)] for prompt in prompts]
        for seq, source in enumerate(self.source):
            if source != seq:
                self.batch.copy_sequence(source, seq)
                logits[seq] = logits[source]
        # text appended before the first step (a gated committee's other members) follows the prompts
        late = {seq: self.generated[seq] for seq in sequences if self.generated[seq]}
        if late:
            logits.update(self.batch.feed(late))
        self._logits = logits
        self.tally.add_steps(0, prompt_tokens=sum(len(prompts[s]) for s in sources), model=self.model)

    def _position(self, seq: int, logits: np.ndarray) -> Position:
        engine = self.engine
        candidates = top_logprobs(logits, self.top_k)
        offered: dict[str, int] = {}
        top: list[tuple[str, float]] = []
        for token, lp in zip(candidates.ids.tolist(), candidates.logprobs.tolist()):
            text = END if engine.is_end(token) else engine.piece(token)
            offered.setdefault(text, token)
            top.append((text, lp))
        self.offered[seq] = offered
        self.choice[seq] = top[0][0]
        return Position(tuple(top), top[0][0])

    async def positions(self, sequences: Sequence[int], want: int) -> dict[int, list[Position]]:
        """One batched decode step for ``sequences`` (``want`` is ignored: one position each)."""
        return await self.engine.run(self._step, list(sequences))

    def extend(self, sequence: int, text: str) -> None:
        """Append the committee's chosen ``text``: by its token id where this sequence chose it itself, else
        as this model's own tokenization of the open tail (see the class)."""
        token = self.offered[sequence].get(text)
        own = token is not None and text == self.choice[sequence]
        self.offered[sequence], self.choice[sequence] = {}, None
        generated = self.generated[sequence]
        if token is not None and (own and self.synced[sequence] == len(generated) or "\ufffd" in text):
            generated.append(token)  # a byte of a character split across tokens: only its id keeps it whole
            self.synced[sequence] = len(generated)
            return
        start = self.synced[sequence]
        tail = self.tail[sequence] + text
        ids = self.engine.tokenize(tail, add_bos=False)
        old = generated[start:]
        common = 0
        for a, b in zip(old, ids):
            if a != b:
                break
            common += 1
        if start + common < self.valid[sequence]:
            self.rewound += self.valid[sequence] - (start + common)
            self.valid[sequence] = start + common
        generated[start:] = ids
        if own and common == len(old) and ids[common:] == [token]:
            self.synced[sequence], self.tail[sequence] = len(generated), ""
        else:
            self.tail[sequence] = tail

    def text(self, sequence: int) -> str:
        return self.engine.detokenize(self.generated[sequence])

    async def aclose(self) -> None:
        if self.batch is not None:
            batch, self.batch = self.batch, None
            await self.engine.run(batch.close)
