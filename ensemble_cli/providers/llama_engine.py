"""In-process llama.cpp through llama-cpp-python: one loaded GGUF, batched multi-sequence decoding.

``LlamaEngine`` loads a model once and tokenises, templates and detokenises. ``SequenceBatch`` holds
several token sequences in one llama.cpp context and advances all of them with a single
``llama_decode`` per step, so N distinct members (or k CoT branches) cost one batched forward pass
per token, and no sequence ever re-reads its prefix.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np

from ..errors import ConfigError, ContextLengthError, ProviderError, setting
from ..logs import route_llama
from ..calls import Message
from .prompt_form import PromptForm, from_metadata
from ..formatting import count

T = TypeVar("T")
CONTEXT_ROUNDING = 256
FLASH_ATTN = True
"""Flash attention in every context (and in `ensemble serve --raw`): decided by scripts/bench_flash_attn.py."""
BATCH_TOKENS = 512
_DECODE_THREAD: list[ThreadPoolExecutor] = []
_DECODE_THREAD_LOCK = threading.Lock()


def decode_thread() -> ThreadPoolExecutor:
    """The process's one llama.cpp decode thread, shared by every loaded model (see ``LlamaEngine``)."""
    with _DECODE_THREAD_LOCK:
        if not _DECODE_THREAD:
            _DECODE_THREAD.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama"))
        return _DECODE_THREAD[0]


def embedded_model_path() -> Path:
    """The default embedded model's GGUF (SmolLM2, from the ``local`` extra; found, never downloaded)."""
    return resolve_model_path(None)


def resolve_model_path(model: str | None) -> Path:
    """The GGUF a local model name or path stands for (``local_models.resolve``)."""
    from .local_models import resolve

    return resolve(model)


def amx_build(llama_cpp: Any) -> bool:
    """Whether this llama.cpp was built with its AMX kernels (a build for the machine's own CPU, where the
    CPU reports AMX). Those kernels segfault in ``llama_decode`` on the virtual machines we test on, so the
    engine then loads models without llama.cpp's extra buffer types (AMX, weight repacking); the Makefile
    builds the portable backend, which has no AMX kernels and keeps repacking."""
    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


def _llama_cpp():
    try:
        import llama_cpp
        from llama_cpp import _internals
    except ImportError:
        raise ConfigError(
            "the local provider needs llama-cpp-python: pip install 'ensemble-cli[local]' (or run make install)"
        ) from None
    return llama_cpp, _internals


class LlamaEngine:
    """One GGUF model, loaded once per process.

    Every decode runs on the process's one decode thread (``run``), whichever model it is for:
    llama.cpp's OpenMP team belongs to the calling thread and spins after each decode, so decoding from
    several threads makes the idle teams steal the cores (measured here: half the speed). One thread
    keeps one hot team, and two models in one committee take turns on it.
    """

    def __init__(self, path: Path, n_threads: int | None = None) -> None:
        llama_cpp, internals = _llama_cpp()
        self._llama_cpp = llama_cpp
        self._internals = internals
        self.path = path
        self.lock = threading.RLock()
        self.executor = decode_thread()
        route_llama(llama_cpp)
        llama_cpp.llama_backend_init()
        params = internals.LlamaModel.default_params()
        if amx_build(llama_cpp):
            params.use_extra_bufts = False  # keeps llama.cpp off its AMX kernels, which crash in llama_decode here
        try:
            self.model = internals.LlamaModel(path_model=str(path), params=params, verbose=False)
        except ValueError as exc:
            raise ConfigError(f"{path}: llama.cpp could not load this GGUF ({exc})") from None
        self._pieces: dict[int, str] = {}
        self._ends: dict[int, bool] = {}
        self.n_vocab = self.model.n_vocab()
        self.n_ctx_train = self.model.n_ctx_train()
        self.n_threads = n_threads or max(os.cpu_count() or 1, 1)
        self.add_bos = bool(self.model.add_bos_token())
        self.metadata = self.model.metadata()
        bos, eos = self.model.token_bos(), self.model.token_eos()
        self.bos_text = self.piece(bos) if bos >= 0 else ""
        self.eos_text = self.piece(eos) if eos >= 0 else ""

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` on the engine's decode thread without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(function, *args))

    def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        return self.executor.submit(function, *args).result()

    # Text <-> tokens

    def tokenize(self, text: str, add_bos: bool | None = None) -> list[int]:
        bos = self.add_bos if add_bos is None else add_bos
        return self.model.tokenize(text.encode("utf-8"), bos, True)

    def piece(self, token: int) -> str:
        """The text of one token (special tokens spelled out), decoded leniently."""
        text = self._pieces.get(token)
        if text is None:
            text = self._piece_bytes(token, special=True).decode("utf-8", errors="replace")
            self._pieces[token] = text
        return text

    def piece_bytes(self, token: int) -> bytes:
        """The bytes a generated token adds to the text (end-of-generation tokens add none)."""
        return self._piece_bytes(token, special=False)

    def _piece_bytes(self, token: int, special: bool) -> bytes:
        size = 64
        buffer = (ctypes.c_char * size)()
        n = self._llama_cpp.llama_token_to_piece(self.model.vocab, token, buffer, size, 0, special)
        return buffer.raw[: max(n, 0)]

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of generated tokens; end-of-generation tokens are not spelled out."""
        data = b"".join(self._piece_bytes(t, special=False) for t in tokens)
        return data.decode("utf-8", errors="replace")

    def is_end(self, token: int) -> bool:
        end = self._ends.get(token)
        if end is None:
            end = self._ends[token] = bool(self._llama_cpp.llama_vocab_is_eog(self.model.vocab, token))
        return end

    def form(self, template: str | None = None) -> PromptForm:
        """How this model's prompts are written (``prompt_form.py``); ``template``: a member's own."""
        return from_metadata(self.metadata, self.bos_text, self.eos_text, self.add_bos, template)

    def render(self, messages: Sequence[Message], prefix: str = "", template: str | None = None) -> str:
        """The model's chat template (or the plain form, or ``template``) with the assistant's turn begun,
        then ``prefix`` (no end of turn)."""
        return self.form(template).render(messages, prefix)

    def prompt_tokens(self, messages: Sequence[Message], prefix: str = "", raw: str | None = None,
                      template: str | None = None) -> list[int]:
        """Tokens of the rendered ``messages`` then ``prefix``; or of ``raw + prefix`` when raw is given."""
        return self.tokenize(raw + prefix if raw is not None else self.render(messages, prefix, template))

    # Contexts

    def new_context(self, n_seqs: int, n_ctx: int, flash_attn: bool | None = None):
        """A llama.cpp context for ``n_seqs`` sequences sharing ``n_ctx`` KV cells."""
        n_ctx = min(_round_up(n_ctx, CONTEXT_ROUNDING), max(self.n_ctx_train, CONTEXT_ROUNDING))
        params = self._internals.LlamaContext.default_params()
        params.n_ctx = n_ctx
        params.n_batch = BATCH_TOKENS
        params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = n_seqs
        params.kv_unified = True
        use_flash = FLASH_ATTN if flash_attn is None else flash_attn
        params.flash_attn_type = (self._llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if use_flash
                                  else self._llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        route_llama(self._llama_cpp)
        try:
            return self._internals.LlamaContext(model=self.model, params=params, verbose=False)
        except ValueError as exc:
            raise ProviderError(f"llama.cpp could not create a context of {count(n_ctx, 'token')}: {exc}") from None


def _round_up(value: int, step: int) -> int:
    return ((value + step - 1) // step) * step


class SequenceBatch:
    """Several sequences in one context, advanced together; ``feed`` is one batched decode."""

    def __init__(self, engine: LlamaEngine, n_seqs: int, n_ctx: int, flash_attn: bool | None = None) -> None:
        self.engine = engine
        self.ctx = engine.new_context(n_seqs, n_ctx, flash_attn)
        self.n_ctx = engine._llama_cpp.llama_n_ctx(self.ctx.ctx)
        self.tokens: list[list[int]] = [[] for _ in range(n_seqs)]
        self._batch = engine._internals.LlamaBatch(n_tokens=BATCH_TOKENS, embd=0, n_seq_max=n_seqs, verbose=False)

    def used(self) -> int:
        return sum(len(t) for t in self.tokens)

    def copy_sequence(self, source: int, target: int) -> None:
        """Make ``target`` share ``source``'s evaluated tokens (a fork: no re-evaluation)."""
        lc = self.engine._llama_cpp
        memory = lc.llama_get_memory(self.ctx.ctx)
        lc.llama_memory_seq_rm(memory, target, -1, -1)
        lc.llama_memory_seq_cp(memory, source, target, -1, -1)
        self.tokens[target] = list(self.tokens[source])

    def truncate(self, seq: int, length: int) -> None:
        """Forget ``seq``'s tokens from position ``length`` on (keeps the cached prefix)."""
        lc = self.engine._llama_cpp
        lc.llama_memory_seq_rm(lc.llama_get_memory(self.ctx.ctx), seq, length, -1)
        del self.tokens[seq][length:]

    def feed(self, new_tokens: Mapping[int, Sequence[int]]) -> dict[int, np.ndarray]:
        """Append tokens to sequences; returns each fed sequence's logits after its last new token."""
        pending = [(seq, list(tokens)) for seq, tokens in new_tokens.items() if tokens]
        if self.used() + sum(len(t) for _, t in pending) > self.n_ctx:
            raise ContextLengthError(
                f"the prompt and its reply do not fit the local model's context ({count(self.n_ctx, 'token')}); lower "
                f"{setting('max_tokens')} or shorten the prompt"
            )
        logits: dict[int, np.ndarray] = {}
        entries = [(seq, i, tok) for seq, tokens in pending for i, tok in enumerate(tokens)]
        last_index = {seq: len(tokens) - 1 for seq, tokens in pending}
        batch = self._batch.batch
        for start in range(0, len(entries), BATCH_TOKENS):
            chunk = entries[start : start + BATCH_TOKENS]
            batch.n_tokens = len(chunk)
            wanted: list[tuple[int, int]] = []
            for j, (seq, i, token) in enumerate(chunk):
                batch.token[j] = token
                batch.pos[j] = len(self.tokens[seq]) + i
                batch.n_seq_id[j] = 1
                batch.seq_id[j][0] = seq
                is_last = i == last_index[seq]
                batch.logits[j] = is_last
                if is_last:
                    wanted.append((seq, j))
            code = self.engine._llama_cpp.llama_decode(self.ctx.ctx, batch)
            if code != 0:
                raise ProviderError(f"llama.cpp decode failed (code {code}); the context may be full")
            if wanted:
                # output rows follow the batch order of the tokens that asked for logits
                pointer = self.engine._llama_cpp.llama_get_logits(self.ctx.ctx)
                rows = np.ctypeslib.as_array(pointer, shape=(len(wanted) * self.engine.n_vocab,))
                matrix = rows.reshape(len(wanted), self.engine.n_vocab).copy()
                for row, (seq, _) in enumerate(wanted):
                    logits[seq] = matrix[row]
        for seq, tokens in pending:
            self.tokens[seq].extend(tokens)
        return logits

    def close(self) -> None:
        self._batch.close()
        self.ctx.close()
