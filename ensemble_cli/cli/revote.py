"""`ensemble revote`: recount vote records with another method, or stop them again adaptively, from the
replies they hold; no call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..inputs import json_lines, read_file
from ..records import RecordWriter
from ..strategies.vote_recount import METHODS, restop_record, revote_record

HELP = ("Recount vote records (JSONL) with another method, or stop them again as an adaptive vote would have, "
        "from the replies they hold: zero calls.")


def revote(
    records: Annotated[Path, typer.Argument(help="JSONL file of vote records.")],
    method: Annotated[Optional[str], typer.Option("--method", help=f"{', '.join(METHODS)} (borda and irv need records that hold rankings).")] = None,
    stop_confidence: Annotated[Optional[float], typer.Option("--stop-confidence", help="Stop each one-round vote where an adaptive vote would have (the Beta rule at this posterior); usage and cost are scaled by the replies kept.")] = None,
    min_samples: Annotated[int, typer.Option("--min-samples", min=1, help="With --stop-confidence: replies before the first check.")] = 2,
    step: Annotated[int, typer.Option("--step", min=1, help="With --stop-confidence: replies per step after the first.")] = 1,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the new records to FILE (default: stdout).")] = None,
) -> None:
    if stop_confidence is not None and not 0.5 < stop_confidence < 1.0:
        raise typer.BadParameter(f"{stop_confidence} is not between 0.5 and 1 (both excluded)",
                                 param_hint="'--stop-confidence'")
    if method is None and stop_confidence is None:
        raise InputError("revote: give --method METHOD to recount, --stop-confidence P to stop again adaptively, or both")
    text = read_file(records, "records file", "a JSONL file of vote records")
    fresh = []
    for where, _, record in json_lines(text, str(records)):
        if not isinstance(record, dict):
            raise InputError(f"{where}: not a record (a JSON object)")
        if stop_confidence is not None:
            record = restop_record(record, stop_confidence, min_samples, step, where)
        fresh.append(record if method is None else revote_record(record, method, where))
    if not fresh:
        raise InputError(f"{records}: holds no records; give the JSONL file a vote run wrote with -o")
    with RecordWriter(output or "-") as writer:
        for record in fresh:
            writer.write(record)
