"""How the CLI names a setting in its messages: the flag that sets it, else its key in a config file."""

from __future__ import annotations

from functools import cache

from .. import catalog


@cache
def _flags() -> dict[str, str]:
    """The flag of every setting a strategy command has one for: ``{"vote.extract": "--extract",
    "max_tokens": "--max-tokens", "vote.judge": "--judge-provider/--judge-model", "display.show_all": "--all"}``."""
    from .strategy_commands import common_flags, strategy_flags

    found: dict[str, str] = {}
    for flag, annotation in common_flags():
        found.setdefault(".".join(flag.path), _long(annotation))
    for spec in catalog.specs():
        for flag, annotation in strategy_flags(spec):
            section = "display" if spec.display and flag.param in spec.display else spec.name
            path = ".".join((section, *flag.path))
            found.setdefault(path, _long(annotation))
            if len(flag.path) == 2:  # one of a member setting's flags: the member itself is named by both
                whole = f"{section}.{flag.path[0]}"
                found[whole] = f"{found[whole]}/{_long(annotation)}" if whole in found else _long(annotation)
    return found


def _long(annotation: object) -> str:
    """The long flag of a generated parameter (``--max-tokens``; a switch's ``--trace``, not ``--no-trace``)."""
    option = annotation.__metadata__[0]  # type: ignore[attr-defined]
    declared = (option.default, *option.param_decls)  # Typer keeps the first declaration as the default
    return next(d for d in declared if isinstance(d, str) and d.startswith("--")).split("/")[0]


catalog.on_change(_flags.cache_clear)


def flag_for(path: str) -> str:
    """``vote.extract`` -> ``--extract``; a key that no flag sets, as a config file writes it
    (``members[0].temperature in the config``)."""
    flag = _flags().get(path)
    if flag is not None:
        return flag
    parts = path.split(".")
    shown = parts[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts[1:])
    return f"{shown} in the config"
