"""`ensemble show`: records read back (JSONL files, or stdin) as a table of prompts and a summary, the
failures, one prompt in the views its live run ends with, or JSON."""

from __future__ import annotations

import json
import os
from typing import Annotated, Optional

import typer

HELP = ("Look at records (what -o FILE of a strategy command wrote): a table of the prompts and a summary of "
        "calls, tokens, dollars and latency; --id for one prompt in its strategy's views, --failed for the "
        "failures, --json for machine output.")


def _width() -> int | None:
    """``$COLUMNS`` when stdout is not a terminal and it is set (a terminal's own width otherwise)."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def show(
    records: Annotated[list[str], typer.Argument(help="JSONL files of records (-o FILE of any strategy command); - reads stdin.", show_default=False)],
    prompt_id: Annotated[Optional[str], typer.Option("--id", help="Show the prompt of this id as its run showed it at its end (its strategy's views).")] = None,
    failed_only: Annotated[bool, typer.Option("--failed", help="List only the failed prompts, with their errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (prompts and summary); with --id, the record itself.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="With --id: the whole distribution (verbalize), as the run's --all shows it.")] = False,
) -> None:
    from ..errors import ConfigError, InputError
    from ..records import RECORDS_EXPECTED, Located, read_records
    from ..sinks.console import say, stdout_console
    from ..sinks.record_views import (
        failed, failures_view, prompt_row, prompts_table, record_view, summarise, summary_view,
    )

    if prompt_id is not None and not prompt_id.strip():
        raise ConfigError("--id is empty; give the id of a prompt (`ensemble show FILE` lists them)")
    requests: list[Located] = []  # a server log's refused and cancelled requests: counted, not shown one by one
    located = read_records(records, lambda message: say(f"warning: {message}", style="yellow"), requests)
    named = ", ".join("stdin" if source == "-" else source for source in records)
    if not located and (prompt_id is not None or not requests):
        raise InputError(f"{named}: holds no records; give {RECORDS_EXPECTED}")
    console = stdout_console(_width())
    if prompt_id is not None:
        chosen = [entry for entry in located if str(entry.record.get("id")) == prompt_id]
        if not chosen:
            raise InputError(f"--id {prompt_id}: no record of that id in {named}; `ensemble show {named}` lists them")
        if len({entry.where.rpartition(":")[0] for entry in chosen}) > 1:
            say(f"note: --id {prompt_id} is in several files ({', '.join(entry.where for entry in chosen)}); "
                "each record is shown, in that order", style="yellow")
        for number, entry in enumerate(chosen):  # an id run again (a resumed failure) is in the file twice
            if as_json:
                print(json.dumps(entry.record, ensure_ascii=False))
            else:
                if number:
                    console.print()
                console.print(record_view(entry, show_all=show_all))
        return
    shown = failed(located) if failed_only else located
    summary = summarise([entry.record for entry in located], [entry.record for entry in requests])
    if as_json:
        print(json.dumps({"prompts": [prompt_row(entry) for entry in shown], "summary": summary}, ensure_ascii=False))
    elif failed_only:
        console.print(failures_view(shown))
    else:
        console.print(prompts_table(shown))
        console.print(summary_view(summary))
