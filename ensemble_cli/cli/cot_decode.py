"""`ensemble cot-decode`: reasoning paths without prompting, chosen by answer confidence."""

from typing import Annotated, Optional

import typer

from .common import execute
from .options import CommonOptions, section, with_common_options

HELP = "CoT-decoding: branch on the top-k first tokens, decode each greedily, pick the most confident answer."


@with_common_options
def cot_decode(
    common: CommonOptions,
    k: Annotated[Optional[str], typer.Option("--k", help="Branches: a number, or 'auto' (fewest first tokens covering 90%, up to --k-max).")] = None,
    k_max: Annotated[Optional[int], typer.Option(min=1, help="Most branches with --k auto.")] = None,
    extract: Annotated[Optional[str], typer.Option(help="number, choice, boxed, line, text, json:FIELD or regex:PATTERN.")] = None,
    aggregate: Annotated[Optional[bool], typer.Option("--aggregate/--no-aggregate", help="Sum confidences of paths with the same answer.")] = None,
    template: Annotated[Optional[str], typer.Option(help="Question-answer template with {question}.")] = None,
    raw: Annotated[Optional[bool], typer.Option("--raw/--no-raw", help="Send the template as a raw prompt (no chat template), as for base models.")] = None,
    answer_prompt: Annotated[Optional[str], typer.Option(help="Appended to a path with no answer, then continued once ('' for none).")] = None,
) -> None:
    settings = section(k=k, k_max=k_max, extract=extract, aggregate=aggregate, template=template, raw=raw)
    if answer_prompt is not None:
        settings["answer_prompt"] = answer_prompt or None
    execute("cot-decode", common, settings)
