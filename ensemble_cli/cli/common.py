"""The strategy commands' adapter: flags -> config -> ``Session`` -> sinks. No pipeline logic lives here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, setting

from .boundary import error
from .naming import flag_for

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..session import Outcome, Session


def flag_overrides(common: dict[str, Any]) -> dict[str, Any]:
    """The run keys the shared flags set; ``--prompt`` and ``--input`` replace each other's YAML value."""
    if common.get("prompt") is not None and common.get("input") is not None:
        raise ConfigError(f"give either {setting('prompt')} or {setting('input')}, not both")
    chosen = dict(common)
    if common.get("prompt") is not None:
        chosen["input"] = None
    if common.get("input") is not None:
        chosen["prompt"] = None
    return chosen


def execute(strategy: str, config_path: Path | None, common: dict[str, Any], settings: dict[str, Any],
            display: dict[str, Any] | None = None, dry_run: bool = False) -> None:
    """Run ``strategy`` as configured by the YAML file and the flags; exits with the README's codes."""
    # the library core loads here, not when the console script starts (`--help` stays fast)
    from ..config import deep_merge, load_config
    from ..inputs import load_inputs
    from ..session import Session
    from ..sinks.console import stderr_console
    from ..sinks.display import Display
    from ..sinks.jsonl import RecordSink
    from ..sinks.stdout import OutputPrinter
    from ..formatting import count

    overrides = flag_overrides(common)
    if settings:
        overrides = deep_merge(overrides, {strategy: settings})
    if display:
        overrides = deep_merge(overrides, {"display": display})
    config = load_config(config_path, overrides)
    if config.strategy is not None and config.strategy != strategy:
        raise ConfigError(f"{config_path}: strategy: this config is for '{config.strategy}', not '{strategy}'")
    items = load_inputs(config.prompt, config.input)
    session = Session(config)
    prepared = session.prepare(strategy)
    todo, notes = session.pending(prepared, items)
    if dry_run:
        _dry_run(session, prepared, todo, config)
        return
    console = stderr_console()
    if not todo:
        if not config.quiet:
            console.print(f"nothing to do: all {count(len(items), 'prompt')} are already in {config.output}",
                          highlight=False)
        return
    display_sink = Display(console, len(todo), quiet=config.quiet, show_all=config.display.show_all, namer=flag_for)
    sinks: list[Any] = [display_sink]
    if config.output is None:
        sinks.append(OutputPrinter(batch=config.input is not None))
    with RecordSink(config.output) as records, display_sink:
        outcome = asyncio.run(_run(session, prepared, todo, [records, *sinks], notes))
    display_sink.summary()
    _finish(config, outcome)


def _dry_run(session: Session, prepared: Any, todo: list, config: RunConfig) -> None:
    """The plan on stdout (one JSON object with ``-o -``); nothing is called or written."""
    import json

    from ..dry_run import plan_run, render
    from ..sinks.console import stderr_console, stdout_console

    try:
        plan = plan_run(session, prepared, todo, namer=flag_for)
    finally:
        session.close()
    if not config.quiet:
        console = stderr_console()
        for note in plan["notes"]:
            console.print(f"[yellow]note[/] {note}", highlight=False)
    if config.output == "-":
        print(json.dumps(plan))
    else:
        stdout_console().print(render(plan))


async def _run(session: Session, prepared: Any, todo: list, sinks: list, notes: list[str]) -> Outcome:
    async with session:
        return await session.run(prepared, todo, sinks, notes)


def _finish(config: RunConfig, outcome: Outcome) -> None:
    import typer

    from ..formatting import count, usd

    status = outcome.exit_status()
    kept = f"; records are in {config.output}" if config.output and config.output != "-" else ""
    if outcome.budget is not None:
        error(f"stopped by --budget: {outcome.budget}; {count(outcome.ok, 'prompt')} done, {outcome.stopped} "
              f"stopped mid-way, {outcome.skipped} not started, {usd(outcome.spent_usd)} spent in all{kept}")
        raise typer.Exit(int(status))
    if status:
        error(f"{outcome.failed} of {count(outcome.ok + outcome.failed, 'prompt')} failed{kept}")
        raise typer.Exit(int(status))
