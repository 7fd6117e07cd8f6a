"""Plain outputs on stdout when no ``-o`` is given: the answer of one prompt, or ``id<TAB>answer`` lines
for a batch, so that a batch's outputs can be told apart whatever order they finish in."""

from __future__ import annotations

import sys
from typing import IO, Any

from ..events import Event, PromptFinished, RunStarted
from ..secrets import redact


class OutputPrinter:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.batch = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.batch = event.total > 1
        elif isinstance(event, PromptFinished):
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
