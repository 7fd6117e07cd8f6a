"""The `ensemble` console script: a root Typer app joining one small module per command.

Every command line runs inside the one error boundary (``boundary.guarded``), entered once, in
``EnsembleGroup.main``: the console script, ``python -m ensemble_cli`` and Typer's test runner all
come through it, parse errors included.
"""

import sys
from typing import Annotated, Any, Optional, Sequence

import typer
from typer.core import TyperGroup

from .. import __version__, catalog
from .bench import bench_app
from . import help_types  # noqa: F401  (flags show no value type in help)
from .boundary import TRACEBACK_ENV, guarded
from .cache_cmd import cache_app
from .models_cmd import models
from .providers_cmd import providers
from .revote import HELP as REVOTE_HELP, revote
from .schema_cmd import schema
from .serve import HELP as SERVE_HELP, serve
from .show import HELP as SHOW_HELP, show


class EnsembleGroup(TyperGroup):
    """The root command: one command per registered strategy (made from its spec when first asked for) and
    the others; parses and runs a command line inside the error boundary, then exits with its status."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*catalog.names(), *super().list_commands(ctx)]

    def get_command(self, ctx: Any, name: str) -> Any:
        spec = catalog.find(name)
        if spec is not None and spec.name == name:
            return strategy_command(spec)
        return super().get_command(ctx, name)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        from ..sinks.console import install

        install()
        arguments = sys.argv[1:] if args is None else list(args)

        def run() -> None:
            with self.make_context(prog_name or "ensemble", arguments, **extra) as ctx:
                self.invoke(ctx)

        sys.exit(guarded(run))


app = typer.Typer(
    name="ensemble",
    cls=EnsembleGroup,
    help="Make several LLM calls work as one: consensus decoding, voting, mixture-of-agents, CoT-decoding, verbalized sampling.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ensemble {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
    traceback: Annotated[bool, typer.Option("--traceback", help=f"Show tracebacks instead of one-line errors (or set {TRACEBACK_ENV}=1).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Also show the log lines of the libraries underneath (llama.cpp, HTTP clients, the server).")] = False,
) -> None:
    if traceback:
        import os

        os.environ[TRACEBACK_ENV] = "1"
    from ..logs import configure

    configure(verbose)


app.command("serve", help=SERVE_HELP)(serve)
app.command("providers")(providers)
app.command("models")(models)
app.command("schema")(schema)
app.add_typer(bench_app, name="bench")
app.command("revote", help=REVOTE_HELP)(revote)
app.command("show", help=SHOW_HELP)(show)
app.add_typer(cache_app, name="cache")


_COMMANDS: dict[int, Any] = {}


def strategy_command(spec: Any) -> Any:
    """The click command of a strategy, made once per spec."""
    made = _COMMANDS.get(id(spec))
    if made is None:
        from .strategy_commands import command_for

        single = typer.Typer(add_completion=False)
        single.registered_commands.append(command_for(spec))
        made = _COMMANDS[id(spec)] = typer.main.get_command(single)
    return made


def main() -> None:
    app()
