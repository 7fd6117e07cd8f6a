"""The strategy commands' adapter: flags -> config -> ``Session`` -> sinks. No pipeline logic lives here."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .boundary import error
from .naming import flag_for
from .options import CommonOptions

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..session import Outcome, Session


def execute(strategy: str, common: CommonOptions, settings: dict[str, Any], display: dict[str, Any] | None = None) -> None:
    """Run ``strategy`` as configured by the YAML file and the flags; exits with the README's codes."""
    # the library core loads here, not when the console script starts (`--help` stays fast)
    from ..config import deep_merge, load_config
    from ..errors import ConfigError
    from ..inputs import load_inputs
    from ..session import Session
    from ..sinks.console import stderr_console
    from ..sinks.display import Display
    from ..sinks.records import RecordSink
    from ..sinks.stdout import OutputPrinter
    from ..formatting import count

    overrides = common.overrides()
    if settings:
        overrides = deep_merge(overrides, {strategy: settings})
    if display:
        overrides = deep_merge(overrides, {"display": display})
    config = load_config(common.config, overrides)
    if config.strategy is not None and config.strategy != strategy:
        raise ConfigError(f"{common.config}: strategy: this config is for '{config.strategy}', not '{strategy}'")
    items = load_inputs(config.prompt, config.input)
    session = Session(config)
    prepared = session.prepare(strategy)
    todo, notes = session.pending(prepared, items)
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
