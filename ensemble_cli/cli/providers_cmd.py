"""`ensemble providers`: the backends and what each can do, as a table or as JSON (``--json``)."""

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import ConfigError
from ..sinks.console import stdout_console
from ..providers import backends
from ..providers.base import Capabilities
from ..providers.presets import PRESETS

LLM_NOTE = ("any model of simonw's llm (its plugins, keys and aliases): provider: llm, model: ID_OR_ALIAS; "
            "no logprobs or prefix continuation, so committee and cot-decode refuse it")
LOCAL_NOTE = "SmolLM2-135M-Instruct (embedded) or any GGUF by path, in-process"
WIDE = 200
"""Console width when stdout is not a terminal: every column stays whole (``ensemble providers | cat``)."""


def _capabilities(caps: Capabilities) -> dict[str, Any]:
    return {key: caps.as_dict()[key] for key in ("max_top_logprobs", "prefix_continuation", "prefix_mode",
                                                 "honours_n", "embeddings")}


def rows() -> list[dict[str, Any]]:
    """Each backend with its base URL, key variable, capabilities (from the one table,
    ``providers/backends.py``), notes and the documentation it follows."""
    table = backends.table()
    listed: list[dict[str, Any]] = [{
        "name": "local", "base_url": None, "key_variable": None, "prefix": "native",
        "capabilities": _capabilities(table["local"]), "notes": LOCAL_NOTE, "doc_date": None, "doc_url": None,
    }]
    for p in PRESETS.values():
        listed.append({
            "name": p.name, "base_url": p.base_url, "key_variable": p.api_key_env, "prefix": p.prefix_mode,
            "capabilities": {**_capabilities(table[p.name]), "raw_max_logprobs": p.raw_max_logprobs,
                             "reasoning_models": list(p.reasoning_prefixes)},
            "default_model": p.default_model, "notes": p.description, "doc_date": p.doc_date or None,
            "doc_url": p.doc_url or None,
        })
    listed.append({
        "name": "llm", "base_url": None, "key_variable": None, "prefix": "none",
        "capabilities": _capabilities(table["llm"]), "notes": LLM_NOTE, "doc_date": None,
        "doc_url": "https://llm.datasette.io/en/stable/python-api.html",
    })
    return listed


def llm_models() -> list[dict[str, Any]]:
    """The models llm knows here (empty without the llm package)."""
    try:
        from ..providers.llm_backend import known_models

        return known_models()
    except ConfigError:
        return []


def providers(
    as_json: Annotated[bool, typer.Option("--json", help="Print the backends as JSON (machine-readable).")] = False,
) -> None:
    """List the backends, their defaults and capabilities."""
    listed = rows()
    if as_json:
        listed[-1]["models"] = llm_models()
        typer.echo(json.dumps(listed, indent=2))
        return
    table = Table(title="providers")
    for column in ("name", "base URL", "key variable", "prefix", "top_logprobs", "n>1", "embeddings", "docs"):
        table.add_column(column, no_wrap=True)
    for row in listed:
        caps = row["capabilities"]
        table.add_row(row["name"], row["base_url"] or {"local": "in-process", "llm": "(llm plugins)"}.get(row["name"], "(--base-url)"),
                      row["key_variable"] or ("llm keys" if row["name"] == "llm" else "-"), row["prefix"], str(caps["max_top_logprobs"]),
                      "yes" if caps["honours_n"] else "no", "yes" if caps["embeddings"] else "no",
                      row["doc_date"] or "-")
    console = stdout_console(WIDE)
    console.print(table)
    for row in listed:
        console.print(f"{row['name']}: {row['notes']}", highlight=False, soft_wrap=True)
