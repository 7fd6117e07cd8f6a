"""Known OpenAI-compatible endpoints: where they live, which key they need, what they can do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .base import PrefixMode

LogprobsStyle = Literal["openai", "integer"]


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


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "none", 20, True,
               description="OpenAI chat completions; cannot continue an assistant prefix"),
        Preset("deepseek", "https://api.deepseek.com/beta", "DEEPSEEK_API_KEY", "deepseek", 20, False,
               description="DeepSeek (beta base URL for assistant prefix completion)", embeddings=False),
        Preset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", "none", 20, True,
               logprobs_style="integer", description="Together AI chat completions"),
        Preset("vllm", "http://127.0.0.1:8000/v1", None, "vllm", 20, True,
               description="vLLM server; prefix via continue_final_message"),
        Preset("ollama", "http://127.0.0.1:11434/v1", None, "raw", 20, False,
               description="Ollama; prefix via raw completion with a client-side chat template"),
        Preset("llamacpp", "http://127.0.0.1:8080/v1", None, "raw", 20, False,
               description="llama.cpp server or `ensemble serve`; prefix via raw completion",
               extra_body=(("repeat_penalty", 1.0),)),
        Preset("openai-compatible", None, None, "none", 20, True,
               description="any other OpenAI-compatible endpoint (needs --base-url; set prefix_mode)"),
    )
}

END_MARKERS = frozenset(
    {"<|im_end|>", "<|eot_id|>", "<|end|>", "</s>", "<|endoftext|>", "<｜end▁of▁sentence｜>", "<end_of_turn>"}
)
