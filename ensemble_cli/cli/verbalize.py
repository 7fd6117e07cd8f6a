"""`ensemble verbalize`: Verbalized Sampling, parsed robustly and sampled reproducibly."""

from typing import Annotated, Optional

import typer

from .common import execute
from .options import CommonOptions, section, with_common_options

HELP = "Verbalized Sampling: ask for k responses with probabilities, normalise them, and sample from that distribution."


@with_common_options
def verbalize(
    common: CommonOptions,
    k: Annotated[Optional[int], typer.Option("--k", min=1, help="Responses asked for per turn.")] = None,
    variant: Annotated[Optional[str], typer.Option(help="standard, cot (reason first) or multi (several turns).")] = None,
    total: Annotated[Optional[int], typer.Option(min=1, help="multi: keep asking until this many responses.")] = None,
    tail: Annotated[Optional[float], typer.Option(help="Ask for tail responses, each with probability below T.")] = None,
    min_prob: Annotated[Optional[float], typer.Option(help="Drop parsed responses below P, then renormalise.")] = None,
    min_keep: Annotated[Optional[int], typer.Option(min=1, help="Keep at least this many with --min-prob.")] = None,
    sample: Annotated[Optional[int], typer.Option(min=0, help="Draws from the distribution (same --seed, same draws).")] = None,
    show_all: Annotated[Optional[bool], typer.Option("--all/--no-all", help="Show the whole distribution as a table.")] = None,
    compare: Annotated[Optional[str], typer.Option(help="'direct': also sample the prompt plainly and compare diversity.")] = None,
) -> None:
    settings = section(k=k, variant=variant, total=total, tail=tail, min_prob=min_prob, min_keep=min_keep,
                       sample=sample, compare=compare)
    execute("verbalize", common, settings, section(show_all=show_all))
