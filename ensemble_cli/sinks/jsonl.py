"""The JSONL sink: every finished or failed prompt's record, appended to the output file as it comes."""

from __future__ import annotations

from typing import Any

from ..events import Event, PromptFailed, PromptFinished
from ..records import RecordWriter


class RecordSink:
    """Writes each record through a ``RecordWriter``; use as a context manager around the run."""

    def __init__(self, target: str | None) -> None:
        self.writer = RecordWriter(target)

    def __enter__(self) -> "RecordSink":
        self.writer.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.writer.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        if isinstance(event, (PromptFinished, PromptFailed)) and event.record:
            self.writer.write(self.shape(event.record))

    def shape(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as written (subclasses add fields, e.g. the bench's gold answer and score)."""
        return record
