"""The in-memory sink: every record of a run kept in a list (library calls that return results)."""

from __future__ import annotations

from typing import Any

from ..events import Event, PromptFailed, PromptFinished


class Collector:
    """Keeps every record in memory (library calls that return results)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, (PromptFinished, PromptFailed)) and event.record:
            self.records.append(event.record)
