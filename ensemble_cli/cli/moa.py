"""`ensemble moa`: layered Mixture-of-Agents with a streaming aggregator."""

from typing import Annotated, Optional

import typer

from .common import execute
from .options import CommonOptions, section, with_common_options

HELP = "Mixture-of-Agents: layers of proposers refine each other's answers; an aggregator writes the final one."


@with_common_options
def moa(
    common: CommonOptions,
    layers: Annotated[Optional[int], typer.Option(min=1, help="Proposer layers (the aggregator step not counted).")] = None,
    self_moa: Annotated[Optional[int], typer.Option("--self-moa", min=1, help="Self-MoA: the first member sampled N times as the proposers.")] = None,
    shuffle_references: Annotated[Optional[bool], typer.Option("--shuffle-references/--no-shuffle-references", help="Shuffle reference order per call (seeded by --seed).")] = None,
    max_reference_chars: Annotated[Optional[int], typer.Option(min=1, help="Truncate each reference to this many characters.")] = None,
    quorum: Annotated[Optional[float], typer.Option(help="Share of proposers that must answer for a layer to go on.")] = None,
    proposer_temperature: Annotated[Optional[float], typer.Option(help="Temperature of the proposers.")] = None,
    proposer_max_tokens: Annotated[Optional[int], typer.Option(help="Max tokens of each proposer reply.")] = None,
    aggregator_temperature: Annotated[Optional[float], typer.Option(help="Temperature of the aggregator.")] = None,
    aggregator_max_tokens: Annotated[Optional[int], typer.Option(help="Max tokens of the final answer.")] = None,
    aggregator_provider: Annotated[Optional[str], typer.Option(help="Provider of the aggregator (default: the first member's).")] = None,
    aggregator_model: Annotated[Optional[str], typer.Option(help="Model of the aggregator.")] = None,
) -> None:
    aggregator = section(provider=aggregator_provider, model=aggregator_model) or None
    settings = section(layers=layers, self_moa=self_moa, shuffle_references=shuffle_references,
                       max_reference_chars=max_reference_chars, quorum=quorum,
                       proposer_temperature=proposer_temperature, proposer_max_tokens=proposer_max_tokens,
                       aggregator_temperature=aggregator_temperature, aggregator_max_tokens=aggregator_max_tokens,
                       aggregator=aggregator)
    execute("moa", common, settings)
