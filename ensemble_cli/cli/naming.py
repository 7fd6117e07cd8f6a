"""How the CLI names a setting in its messages: the flag that sets it, else its key in a config file."""

from __future__ import annotations

from functools import cache

SPECIAL = {
    "vote.judge": "--judge-provider/--judge-model",
    "moa.aggregator": "--aggregator-provider/--aggregator-model",
    "display.show_all": "--all",
}
"""Settings whose flags are not their key's name."""


@cache
def _flags() -> dict[str, str]:
    """Each command's options, by the setting they set: ``{"vote.extract": "--extract", "max_tokens": ...}``."""
    import typer

    from . import STRATEGY_COMMANDS, app

    root = typer.main.get_command(app)
    found: dict[str, str] = {}
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        strategy = STRATEGY_COMMANDS.get(name)
        for param in command.params:
            flag = next((o for o in param.opts if o.startswith("--")), None)
            if flag is None or param.name is None:
                continue
            found.setdefault(param.name, flag)
            if strategy is not None:
                found.setdefault(f"{strategy}.{param.name}", flag)
    return found


def flag_for(path: str) -> str:
    """``vote.extract`` -> ``--extract``; a key that no flag sets, as a config file writes it
    (``members[0].temperature in the config``)."""
    if path in SPECIAL:
        return SPECIAL[path]
    flag = _flags().get(path)
    if flag is not None:
        return flag
    parts = path.split(".")
    shown = parts[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts[1:])
    return f"{shown} in the config"
