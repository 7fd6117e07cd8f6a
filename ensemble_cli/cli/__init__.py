"""The `ensemble` console script: a root Typer app joining one small module per command.

Every command line runs inside the one error boundary (``boundary.guarded``), entered once, in
``EnsembleGroup.main``: the console script, ``python -m ensemble_cli`` and Typer's test runner all
come through it, parse errors included.
"""

import sys
from typing import Annotated, Any, Optional, Sequence

import typer
from typer.core import TyperGroup

from .. import __version__
from .committee import HELP as COMMITTEE_HELP, committee
from .cot_decode import HELP as COT_HELP, cot_decode
from .moa import HELP as MOA_HELP, moa
from .bench import bench_app
from .boundary import TRACEBACK_ENV, guarded
from .providers_cmd import providers
from .revote import HELP as REVOTE_HELP, revote
from .schema_cmd import schema
from .serve import HELP as SERVE_HELP, serve
from .verbalize import HELP as VERBALIZE_HELP, verbalize
from .vote import HELP as VOTE_HELP, vote

STRATEGY_COMMANDS = {name: name for name in ("committee", "vote", "moa", "cot-decode", "verbalize")}
"""The commands that run a strategy, by the run-config section their own flags set."""


class EnsembleGroup(TyperGroup):
    """The root command: parses and runs a command line inside the error boundary, then exits with its status."""

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


app.command("committee", help=COMMITTEE_HELP)(committee)
app.command("vote", help=VOTE_HELP)(vote)
app.command("moa", help=MOA_HELP)(moa)
app.command("cot-decode", help=COT_HELP)(cot_decode)
app.command("verbalize", help=VERBALIZE_HELP)(verbalize)
app.command("serve", help=SERVE_HELP)(serve)
app.command("providers")(providers)
app.command("schema")(schema)
app.add_typer(bench_app, name="bench")
app.command("revote", help=REVOTE_HELP)(revote)


def main() -> None:
    app()
