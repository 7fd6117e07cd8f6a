"""`ensemble vote`: independent answers, extracted and voted, with optional negotiation rounds."""

from typing import Annotated, Optional

import typer

from .common import execute
from .options import CommonOptions, section, with_common_options

HELP = "Members answer independently; answers are extracted and voted, optionally over debate rounds."


@with_common_options
def vote(
    common: CommonOptions,
    samples: Annotated[Optional[int], typer.Option(min=1, help="Replies per member per round.")] = None,
    extract: Annotated[Optional[str], typer.Option(help="number, choice, boxed, line, text, json:FIELD, regex:PATTERN or judge.")] = None,
    method: Annotated[Optional[str], typer.Option(help="majority, weighted, confidence, borda, irv or usc.")] = None,
    rounds: Annotated[Optional[int], typer.Option(min=1, help="Debate rounds; from round 2 members see the others' answers.")] = None,
    consensus: Annotated[Optional[float], typer.Option(help="Stop early when the leader has this share of the votes.")] = None,
    quorum: Annotated[Optional[float], typer.Option(help="Share of members that must answer for the vote to go on.")] = None,
    judge_provider: Annotated[Optional[str], typer.Option(help="Provider of the judge member (extract judge, method usc).")] = None,
    judge_model: Annotated[Optional[str], typer.Option(help="Model of the judge member.")] = None,
) -> None:
    judge = section(provider=judge_provider, model=judge_model) or None
    settings = section(samples=samples, extract=extract, method=method, rounds=rounds, consensus=consensus,
                       quorum=quorum, judge=judge)
    execute("vote", common, settings)
