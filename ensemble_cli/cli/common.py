"""Wiring shared by the strategy commands: config, members, inputs, records, display, the error boundary."""

import asyncio
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import typer
from rich.console import Console

from ..config import RunConfig, deep_merge, load_config
from ..errors import ConfigError, EnsembleError, ExitStatus
from ..events import EventBus, PromptFinished
from ..inputs import load_inputs
from ..providers.registry import ProviderRegistry
from ..records import RecordWriter, completed_ids, new_run_id
from ..runner import RunOne, run_batch
from ..strategies.base import Member
from ..wiring import bind_members
from ..display import Display
from .options import CommonOptions

TRACEBACK_ENV = "ENSEMBLE_TRACEBACK"
BuildStrategy = Callable[[RunConfig, list[Member], ProviderRegistry], RunOne]


def stderr_console() -> Console:
    return Console(stderr=True)


def wants_traceback() -> bool:
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


@contextmanager
def error_boundary() -> Iterator[None]:
    """The one place where errors become exit codes and one clear line each on stderr."""
    try:
        yield
    except EnsembleError as exc:
        if wants_traceback():
            raise
        console = stderr_console()
        for line in str(exc).splitlines() or [type(exc).__name__]:
            console.print(f"ensemble: error: {line}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(int(exc.exit_status)) from None
    except KeyboardInterrupt:
        if wants_traceback():
            raise
        stderr_console().print(
            "ensemble: interrupted; records already written are kept; rerun with --resume to continue",
            markup=False, highlight=False, soft_wrap=True,
        )
        raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None


def execute(strategy: str, common: CommonOptions, settings: dict[str, Any], build: BuildStrategy) -> None:
    """Run ``strategy`` as configured by the YAML file and the flags."""
    with error_boundary():
        overrides = common.overrides()
        if settings:
            overrides = deep_merge(overrides, {strategy: settings})
        config = load_config(common.config, overrides)
        if config.strategy is not None and config.strategy != strategy:
            raise ConfigError(f"{common.config}: strategy: this config is for '{config.strategy}', not '{strategy}'")
        items = load_inputs(config.prompt, config.input)
        if config.resume and (not config.output or config.output == "-"):
            raise ConfigError("--resume reads the records already written: give it an output file with -o FILE")
        if config.resume:
            done = completed_ids(Path(str(config.output)))
            todo = [item for item in items if item.id not in done]
        else:
            todo = items
        console = stderr_console()
        if not todo:
            if not config.quiet:
                console.print(f"nothing to do: all {len(items)} prompt(s) are already in {config.output}")
            return
        outcome = asyncio.run(_run(strategy, config, todo, build, console))
        status = outcome.exit_status()
        if status != ExitStatus.OK:
            if not config.quiet:
                console.print(f"ensemble: {outcome.failed} of {outcome.ok + outcome.failed} prompt(s) failed",
                              style="red", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(int(status))


async def _run(strategy: str, config: RunConfig, items: list, build: BuildStrategy, console: Console):
    registry = ProviderRegistry(config)
    try:
        members = bind_members(config, registry)
        run_one = build(config, members, registry)
        bus = EventBus()
        display = Display(console, len(items), quiet=config.quiet)
        bus.subscribe(display)
        if config.output is None:
            bus.subscribe(_print_outputs)
        with RecordWriter(config.output) as writer, display:
            outcome = await run_batch(
                items, run_one, strategy=strategy, run_id=new_run_id(),
                members=[m.describe() for m in members], writer=writer, bus=bus, parallel=config.parallel_prompts,
            )
        display.summary()
        return outcome
    finally:
        await registry.aclose()


def _print_outputs(event: Any) -> None:
    """Without ``-o``, each prompt's final output goes to stdout as plain text."""
    if isinstance(event, PromptFinished):
        output = event.record.get("output")
        lines = output if isinstance(output, list) else [output]
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()
