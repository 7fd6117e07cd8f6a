"""Every backend and what it can do, in one table: `ensemble providers`, the ``--provider`` help, unknown
provider errors and every capability refusal read it, so that no list of backends is written twice.

Cheap to import (no numpy, no SDK): the console script's help text is built from it.
"""

from __future__ import annotations

from typing import Callable

from .base import Capabilities
from .presets import PRESETS

LOCAL = Capabilities(max_top_logprobs=100, prefix_continuation=True, honours_n=True, prefix_mode="native",
                     verified=True, batched=True)
"""The embedded model: exact by construction, every sequence advanced in one batched decode."""
LLM = Capabilities(max_top_logprobs=0, prefix_continuation=False, honours_n=False, prefix_mode="none")
"""Any model of simonw's ``llm``: text (and token counts where the plugin reports them) only."""


def preset_capabilities(name: str) -> Capabilities:
    preset = PRESETS[name]
    return Capabilities(max_top_logprobs=preset.max_top_logprobs, prefix_continuation=preset.prefix_mode != "none",
                        honours_n=preset.honours_n, prefix_mode=preset.prefix_mode, embeddings=preset.embeddings)


def table() -> dict[str, Capabilities]:
    """Each backend's capabilities by name, in the order they are listed."""
    return {"local": LOCAL, **{name: preset_capabilities(name) for name in PRESETS}, "llm": LLM}


NAMES: tuple[str, ...] = ("local", *PRESETS, "llm")


def able(predicate: Callable[[Capabilities], bool]) -> list[str]:
    """The backends whose capabilities satisfy ``predicate``."""
    return [name for name, caps in table().items() if predicate(caps)]


def listing(names: list[str] | tuple[str, ...], last: str = "or") -> str:
    """``a, b or c``."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def prefix_backends() -> str:
    """Who can continue an assistant prefix exactly, as a refusal offers them."""
    return (f"{listing(able(lambda caps: caps.prefix_continuation))} (or another OpenAI-compatible endpoint "
            "with prefix_mode set)")
