"""The bench's stderr display: one progress bar per arm on a terminal, one line per arm otherwise."""

from __future__ import annotations

from typing import Any, Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import render
from ..events import Event, Note, PromptFailed, PromptFinished, RunStarted
from ..formatting import count as counted


class BenchProgress:
    """Use as a context manager around the runs; ``for_arm`` gives each arm's sink."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.mode = "quiet" if quiet else ("live" if console.is_terminal else "plain")
        self.progress: Progress | None = None
        self.failures = 0

    def __enter__(self) -> "BenchProgress":
        if self.mode == "live":
            self.progress = Progress(TextColumn("[bold]{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=self.console)
            self.progress.__enter__()
        return self

    def __exit__(self, *_: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)

    def say(self, message: str) -> None:
        if self.mode != "quiet":
            self.console.print(message, highlight=False, markup=False)

    def for_arm(self, name: str, total: int, done: int) -> Callable[[Event], None]:
        task = None if self.progress is None else self.progress.add_task(name, total=total + done, completed=done)
        count = [done]
        if done:
            self.say(f"{name}: resume: {counted(done, 'item')} already recorded")

        def sink(event: Event) -> None:
            if isinstance(event, RunStarted):
                for note in event.notes:
                    self.say(f"note {name}: {render(note)}")
            elif isinstance(event, Note):
                self.say(f"note {name}: {event.prompt_id}: {render(event.message)}")
            elif isinstance(event, (PromptFinished, PromptFailed)):
                count[0] += 1
                if isinstance(event, PromptFailed):
                    if not event.record.get("details"):  # no answer because calls failed, not because none was found
                        self.failures += 1
                    if self.mode != "quiet":
                        self.console.print(f"ensemble: {name}: {event.prompt_id} failed: {render(event.error)}",
                                           style="red", highlight=False, markup=False)
                if self.progress is not None and task is not None:
                    self.progress.update(task, advance=1)
                elif self.mode == "plain" and count[0] == total + done:
                    self.say(f"{name}: {count[0]}/{total + done} items done")

        return sink
