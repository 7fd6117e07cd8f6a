"""One command per registered strategy (``ensemble vote``, ``ensemble cot-decode``...), generated from its
spec: the spec's summary is the command's help, its settings model its own flags, its display settings
their flags; the flags every strategy command shares come from the run config's fields. A strategy
registered at run time (``catalog.register``) has its command too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..config import DisplaySettings, RunConfig
from ..providers.backends import NAMES
from ..strategies.spec import StrategySpec
from .common import execute
from .flags import Flag, command_with, flags_for, values

COMMON = ("prompt", "input", "output", "resume", "members", "provider", "model", "base_url", "api_key_env", "n",
          "max_tokens",
          "temperature", "seed", "max_concurrency", "parallel_prompts", "timeout", "max_retries", "quiet", "budget",
          "cache", "cache_dir")
"""The run settings every strategy command has a flag for."""
HELPS = {"provider": f"One of: {', '.join(NAMES)} (default local; `ensemble providers` lists what each can do)."}
CONFIG = Flag("config", Optional[Path], ("config",))
CONFIG_OPTION = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML run config; flags override its keys.")]
DRY_RUN = Flag("dry_run", Optional[bool], ("dry_run",))
DRY_RUN_OPTION = Annotated[Optional[bool], typer.Option(
    "--dry-run", help="Check everything and print what the run would call and cost at worst; make no call "
                      "(-o - prints the plan as JSON).")]


def common_flags() -> list[tuple[Flag, Any]]:
    """``--config`` and the flags of the run settings every strategy command shares."""
    made = [pair for pair in flags_for(RunConfig, HELPS, empty_is_none=False) if pair[0].param in COMMON]
    return [(CONFIG, CONFIG_OPTION), *sorted(made, key=lambda pair: COMMON.index(pair[0].param)),
            (DRY_RUN, DRY_RUN_OPTION)]


def strategy_flags(spec: StrategySpec) -> list[tuple[Flag, Any]]:
    """The strategy's own flags (one per setting) and those of the display settings it offers."""
    own = flags_for(spec.settings)
    shown = [pair for pair in flags_for(DisplaySettings) if pair[0].param in spec.display]
    return [*own, *shown]


def command_for(spec: StrategySpec) -> typer.models.CommandInfo:
    """The Typer command of a strategy."""
    common, own = common_flags(), strategy_flags(spec)
    taken = {flag.param for flag, _ in common}
    clash = [flag.param for flag, _ in own if flag.param in taken]
    if clash:
        raise ValueError(f"strategy {spec.name!r}: settings {clash} clash with the run settings' flags")
    own_settings = [flag for flag, _ in own if flag.param not in DisplaySettings.model_fields]
    display = [flag for flag, _ in own if flag.param in DisplaySettings.model_fields]

    def run(given: dict[str, Any]) -> None:
        execute(spec.name, given.get("config"), values([f for f, _ in common if f not in (CONFIG, DRY_RUN)], given),
                values(own_settings, given), values(display, given), dry_run=bool(given.get("dry_run")))

    function = command_with([*common, *own], run)
    return typer.models.CommandInfo(name=spec.name, callback=function, help=spec.summary)
