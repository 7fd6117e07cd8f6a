"""`ensemble providers`: the backends and what each can do."""

from rich.table import Table

from ..providers.presets import PRESETS
from ..providers.local import MAX_TOP_LOGPROBS
from rich.console import Console


def providers() -> None:
    """List the backends, their defaults and capabilities."""
    table = Table(title="providers")
    for column in ("name", "base URL", "key variable", "prefix continuation", "max top_logprobs", "n > 1",
                   "embeddings", "notes"):
        table.add_column(column)
    table.add_row("local", "in-process", "-", "native", str(MAX_TOP_LOGPROBS), "yes", "no",
                  "SmolLM2-135M-Instruct (embedded) or any GGUF by path")
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.base_url or "(--base-url)", preset.api_key_env or "-",
                      preset.prefix_mode, str(preset.max_top_logprobs), "yes" if preset.honours_n else "no",
                      "yes" if preset.embeddings else "no", preset.description)
    Console().print(table)
