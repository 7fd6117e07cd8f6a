"""`ensemble revote`: recount vote records with another method from the replies they hold; no call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..records import RecordWriter
from ..revote import METHODS, revote_record
from .boundary import error_boundary

HELP = "Recount vote records (JSONL) with another method from the replies they hold: zero calls."


def revote(
    records: Annotated[Path, typer.Argument(help="JSONL file of vote records.")],
    method: Annotated[str, typer.Option("--method", help=f"{', '.join(METHODS)} (borda and irv need records that hold rankings).")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the new records to FILE (default: stdout).")] = None,
) -> None:
    with error_boundary():
        try:
            lines = records.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise InputError(f"{records}: records file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{records}: cannot read ({exc})") from None
        fresh = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{records}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"{where}: not a record (a JSON object)")
            fresh.append(revote_record(record, method, where))
        with RecordWriter(output or "-") as writer:
            for record in fresh:
                writer.write(record)
