"""`ensemble revote`: recount vote records with another method from the replies they hold; no call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..inputs import json_lines, read_file
from ..records import RecordWriter
from ..strategies.vote_recount import METHODS, revote_record

HELP = "Recount vote records (JSONL) with another method from the replies they hold: zero calls."


def revote(
    records: Annotated[Path, typer.Argument(help="JSONL file of vote records.")],
    method: Annotated[str, typer.Option("--method", help=f"{', '.join(METHODS)} (borda and irv need records that hold rankings).")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the new records to FILE (default: stdout).")] = None,
) -> None:
    text = read_file(records, "records file", "a JSONL file of vote records")
    fresh = []
    for where, _, record in json_lines(text, str(records)):
        if not isinstance(record, dict):
            raise InputError(f"{where}: not a record (a JSON object)")
        fresh.append(revote_record(record, method, where))
    if not fresh:
        raise InputError(f"{records}: holds no records; give the JSONL file a vote run wrote with -o")
    with RecordWriter(output or "-") as writer:
        for record in fresh:
            writer.write(record)
