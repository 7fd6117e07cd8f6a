"""`ensemble committee`: consensus decoding over N members."""

from typing import Annotated, List, Optional

import typer

from .common import execute
from .options import CommonOptions, section, with_common_options

HELP = "Consensus decoding: members continue one shared answer token by token, merging their next-token distributions."


@with_common_options
def committee(
    common: CommonOptions,
    merge: Annotated[Optional[str], typer.Option(help="How to merge distributions: mean (log-mean-exp), product or vote.")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, help="Top alternatives asked of each member per token.")] = None,
    draft: Annotated[Optional[int], typer.Option(min=0, help="Remote members propose up to K greedy tokens per call (lossless).")] = None,
    gate: Annotated[Optional[float], typer.Option(help="The first member decodes alone while its top-1 probability is at least P.")] = None,
    trace: Annotated[Optional[bool], typer.Option("--trace/--no-trace", help="Record every member's top-k at each step.")] = None,
    stop: Annotated[Optional[List[str]], typer.Option("--stop", help="Stop when this text appears (repeatable).")] = None,
) -> None:
    settings = section(merge=merge, top_k=top_k, draft=draft, gate=gate, trace=trace, stop=stop or None)
    execute("committee", common, settings)
