"""Plain outputs on stdout when no ``-o`` is given, one shape per kind of input, whatever its size:

- ``--prompt``: the output alone (verbalize with several draws: one draw per line);
- ``--input``: one ``id<TAB>output`` line per prompt (one per draw, each with its id), in completion
  order, the output on one line, so that a batch's outputs can be told apart whatever order they finish in.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from ..events import Event, PromptFinished
from ..secrets import redact


class OutputPrinter:
    def __init__(self, stream: IO[str] | None = None, batch: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.batch = batch

    def __call__(self, event: Event) -> None:
        if isinstance(event, PromptFinished):
            self.write(event.prompt_id, event.record.get("output"))

    def write(self, prompt_id: str, output: Any) -> None:
        lines = output if isinstance(output, list) else [output]
        if self.batch:
            text = "".join(f"{prompt_id}\t{_one_line(line)}\n" for line in lines)
        else:
            text = "".join(f"{line}\n" for line in lines)
        self.stream.write(redact(text))
        self.stream.flush()


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())
