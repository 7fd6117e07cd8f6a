"""Known OpenAI-compatible endpoints: where they live, which key they need, what they can do, and the
date of the documentation each preset follows (``doc_date``, ``doc_url``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .base import PrefixMode

LogprobsStyle = Literal["openai", "integer"]
TemplateSource = Literal["client", "server"]


@dataclass(frozen=True)
class Preset:
    name: str
    base_url: str | None
    api_key_env: str | None
    prefix_mode: PrefixMode
    max_top_logprobs: int
    honours_n: bool
    logprobs_style: LogprobsStyle = "openai"
    description: str = ""
    extra_body: tuple[tuple[str, object], ...] = ()
    """Fields sent with every request (llama.cpp servers default to a repeat penalty: greedy must be greedy)."""
    embeddings: bool = True
    token_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    raw_max_logprobs: int | None = None
    """The most ``logprobs`` raw ``/completions`` accepts, where lower than ``max_top_logprobs``."""
    reasoning_prefixes: tuple[str, ...] = ()
    """Model names starting with one of these are reasoning models (no temperature, top_p, logprobs)."""
    not_reasoning_prefixes: tuple[str, ...] = ()
    thinking_switch: bool = False
    """DeepSeek: send ``thinking: {type: disabled}`` unless the member opts into thinking."""
    stream_usage: bool = True
    """Ask for ``stream_options: {include_usage: true}`` on streamed calls."""
    raw_api: Literal["completions", "ollama"] = "completions"
    """Where raw (prefix) continuation goes: ``/completions``, or Ollama's native ``/api/generate``."""
    chat_template: TemplateSource = "client"
    """``server``: render prompts for raw completion with the server's own chat template (llama.cpp)."""
    default_model: str | None = None
    honours_seed: bool = False
    """The server samples reproducibly from a request's seed (vLLM, llama.cpp, Ollama); elsewhere a seeded,
    sampled call may differ from one call to the next, so it is neither cached nor shared."""
    doc_date: str = ""
    doc_url: str = ""

    @property
    def base_url_env(self) -> str | None:
        """The environment variable that moves the preset's endpoint (``OPENAI_BASE_URL``, as the openai SDK
        reads it): a proxy or a gateway, set by whoever runs the process; none where the preset has no URL."""
        return f"{self.name.upper().replace('-', '_')}_BASE_URL" if self.base_url else None

    def is_reasoning(self, model: str) -> bool:
        name = model.lower().rsplit("/", 1)[-1]
        if any(name.startswith(p) for p in self.not_reasoning_prefixes):
            return False
        return any(name.startswith(p) for p in self.reasoning_prefixes)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "none", 20, True,
               description="OpenAI chat completions; max_completion_tokens; reasoning models (o-series, gpt-5) "
                           "take no temperature, top_p or logprobs; raw /completions gives at most 5 logprobs; "
                           "cannot continue an assistant prefix",
               token_field="max_completion_tokens", raw_max_logprobs=5,
               reasoning_prefixes=("o1", "o3", "o4", "gpt-5", "codex-mini"), not_reasoning_prefixes=("gpt-5-chat",),
               doc_date="2026-04", doc_url="https://platform.openai.com/docs/api-reference/chat/create"),
        Preset("deepseek", "https://api.deepseek.com/beta", "DEEPSEEK_API_KEY", "deepseek", 20, False,
               description="DeepSeek V4 (beta base URL for chat prefix completion); thinking is switched off "
                           "(thinking: {type: disabled}) unless the member opts in",
               embeddings=False, thinking_switch=True, default_model="deepseek-v4-flash",
               doc_date="2026-04-27", doc_url="https://api-docs.deepseek.com/guides/thinking_mode"),
        Preset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", "raw", 20, True,
               logprobs_style="integer",
               description="Together AI; integer logprobs; prefix via raw /completions with a client-side template; "
                           "finish_reason eos read as stop",
               doc_date="2025-06-18", doc_url="https://docs.together.ai/reference/chat-completions-1"),
        Preset("vllm", "http://127.0.0.1:8000/v1", None, "vllm", 20, True,
               description="vLLM server; prefix via continue_final_message; neutral sampling sent explicitly "
                           "(the model's generation_config would override unset ones)",
               extra_body=(("repetition_penalty", 1.0), ("top_k", -1), ("min_p", 0.0)), honours_seed=True,
               doc_date="2025-12", doc_url="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html"),
        Preset("ollama", "http://127.0.0.1:11434/v1", None, "raw", 20, False,
               description="Ollama; prefix via native /api/generate with raw: true and a client-side template; "
                           "whether logprobs come back is decided per server by the probe",
               raw_api="ollama", honours_seed=True, doc_date="2025-11", doc_url="https://docs.ollama.com/api/generate"),
        Preset("llamacpp", "http://127.0.0.1:8080/v1", None, "raw", 20, False,
               description="llama.cpp llama-server or `ensemble serve`; prefix via raw completion rendered with "
                           "the server's chat template (/props or /apply-template, else ChatML)",
               extra_body=(("repeat_penalty", 1.0), ("cache_prompt", False)), embeddings=False,
               chat_template="server", honours_seed=True,
               doc_date="2025-11", doc_url="https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md"),
        Preset("openai-compatible", None, None, "none", 20, True,
               description="any other OpenAI-compatible endpoint (needs --base-url; set prefix_mode)",
               stream_usage=False),
    )
}

END_MARKERS = frozenset(
    {"<|im_end|>", "<|eot_id|>", "<|end|>", "</s>", "<|endoftext|>", "<｜end▁of▁sentence｜>", "<end_of_turn>"}
)

FINISH_REASONS = {
    "stop": "stop", "eos": "stop", "eos_token": "stop", "stop_sequence": "stop", "end_turn": "stop",
    "length": "length", "max_tokens": "length", "model_length": "length",
    "tool_calls": "tool_calls", "function_call": "tool_calls", "content_filter": "content_filter",
}
"""Every backend's finish reasons mapped onto OpenAI's (Together says ``eos``, Ollama ``done_reason``...)."""


def normalise_finish(reason: str | None) -> str:
    if not reason:
        return "stop"
    return FINISH_REASONS.get(reason.lower(), reason.lower())
