"""`ensemble providers`: the backends and what each can do."""

from rich.console import Console
from rich.table import Table

from ..providers.local import MAX_TOP_LOGPROBS
from ..providers.presets import PRESETS

LOCAL_NOTE = "SmolLM2-135M-Instruct (embedded) or any GGUF by path, in-process"


def providers() -> None:
    """List the backends, their defaults and capabilities."""
    table = Table(title="providers")
    for column in ("name", "base URL", "key variable", "prefix", "top_logprobs", "n>1", "embeddings"):
        table.add_column(column, no_wrap=True)
    table.add_row("local", "in-process", "-", "native", str(MAX_TOP_LOGPROBS), "yes", "no")
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.base_url or "(--base-url)", preset.api_key_env or "-",
                      preset.prefix_mode, str(preset.max_top_logprobs), "yes" if preset.honours_n else "no",
                      "yes" if preset.embeddings else "no")
    console = Console()
    console.print(table)
    console.print(f"local: {LOCAL_NOTE}", highlight=False)
    for preset in PRESETS.values():
        console.print(f"{preset.name}: {preset.description}", highlight=False)
