"""The Rich display on stderr: a live view for one prompt, a progress bar for batches, a results table.

It subscribes to strategy events and never computes results. With ``--quiet`` it shows nothing;
when stderr is not a terminal it prints plain lines instead of live views.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..errors import Namer, config_key, render
from ..events import (
    Event, Note, PromptFailed, PromptFinished, PromptStarted, ReplyReceived, RoundFinished,
    RunStarted, StreamDelta, TokenChosen, VoteTally,
)
from ..formatting import count, usd
from .views import detail_view, names, totals_line

SNIPPET = 80
REPLY_LINES = 10
"""Replies of a round shown one line each (plain output); past them, progress is one line a second."""
PROGRESS_EVERY_S = 1.0
REPLIES_SHOWN = 12
"""Replies the live view keeps (the last ones)."""


def agreement_style(agreement: float) -> str:
    if agreement >= 0.999:
        return "bold green"
    if agreement >= 0.75:
        return "green"
    if agreement >= 0.5:
        return "yellow"
    return "bold red"


def snippet(text: Any, width: int = SNIPPET) -> str:
    flat = " ".join(str(text if text is not None else "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class LiveState:
    """What the single-prompt live view shows: the growing answer, replies, notes."""

    def __init__(self) -> None:
        self.answer = Text()
        self.dissent: tuple[str, ...] = ()
        self.replies: list[ReplyReceived] = []
        self.tally: VoteTally | None = None

    def renderable(self) -> RenderableType:
        parts: list[RenderableType] = []
        if self.replies:
            table = Table(title="replies", expand=False, show_edge=False)
            table.add_column(self.replies[-1].stage, justify="right")
            table.add_column("member")
            table.add_column("answer")
            table.add_column("reply")
            for reply in self.replies:
                answer = "-" if reply.answer is None else reply.answer
                table.add_row(str(reply.round), reply.member, snippet(answer, 24), snippet(reply.text, 60))
            parts.append(table)
        if self.tally is not None and self.tally.rows:
            votes = Table(title=f"votes, round {self.tally.round}", expand=False, show_edge=False)
            for column in ("answer", "votes", "members"):
                votes.add_column(column)
            for answer, count, members in self.tally.rows:
                style = "bold green" if answer == self.tally.leader else ""
                votes.add_row(snippet(answer, 30), str(count), names(list(members)), style=style)
            parts.append(votes)
        if self.answer:
            parts.append(Panel(self.answer, title="answer", border_style="cyan", expand=False))
        if self.dissent:
            parts.append(Text("disagree: " + ", ".join(self.dissent), style="dim"))
        return Group(*parts) if parts else Text("waiting for the first reply…", style="dim")


class Display:
    """Subscribes to events; use as a context manager around the run."""

    def __init__(self, console: Console, total: int, quiet: bool = False, show_all: bool = False,
                 namer: Namer = config_key) -> None:
        self.console = console
        self.namer = namer
        """How settings named in notes and errors are shown (the CLI: as its flags)."""
        self.total = total
        self.show_all = show_all
        self.mode = "quiet" if quiet else ("live" if console.is_terminal else "plain")
        self.state = LiveState()
        self.records: list[dict[str, Any]] = []
        """Every prompt's record, in the order the prompts ended: ok, failed and stopped by the budget."""
        self.failures: list[tuple[str, str]] = []
        self.stopped: set[str] = set()
        self.clock = time.monotonic
        self._round_replies: dict[int, int] = {}
        self._unshown: dict[int, tuple[str, int]] = {}
        self._last_progress = float("-inf")
        self._live: Live | None = None
        self._progress: Progress | None = None
        self._task: Any = None
        self._done = 0

    def __enter__(self) -> "Display":
        if self.mode == "live" and self.total == 1:
            self._live = Live(self.state.renderable(), console=self.console, refresh_per_second=12, transient=True)
            self._live.__enter__()
        elif self.mode == "live":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("prompts", total=self.total, rate="")
        return self

    def __exit__(self, *_: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        handler: Callable[[Any], None] | None = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None and (self.mode != "quiet" or isinstance(event, PromptFailed)):
            handler(event)
        elif isinstance(event, PromptFinished):
            self.records.append(event.record)
            self._done += 1

    def _on_RunStarted(self, event: RunStarted) -> None:
        for note in event.notes:
            self.console.print(f"[yellow]note[/] {render(note, self.namer)}", highlight=False)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.state.renderable())

    def _on_PromptStarted(self, event: PromptStarted) -> None:
        if self.mode == "plain" and self.total == 1:
            self.console.print(f"running {event.prompt_id}: {snippet(event.prompt)}", highlight=False)

    def _on_TokenChosen(self, event: TokenChosen) -> None:
        if self._live is not None and event.text:
            self.state.answer.append(event.text, style=agreement_style(event.agreement))
            self.state.dissent = event.dissenters
            self._refresh()

    def _on_StreamDelta(self, event: StreamDelta) -> None:
        if self._live is not None:
            self.state.answer.append(event.text)
            self._refresh()

    def _on_ReplyReceived(self, event: ReplyReceived) -> None:
        self.state.replies.append(event)
        self.state.replies = self.state.replies[-REPLIES_SHOWN:]
        if self._live is not None:
            self._refresh()
        elif self.mode == "plain" and self.total == 1:
            self._plain_reply(event)

    def _plain_reply(self, event: ReplyReceived) -> None:
        """One line per reply for the first few of a round, then one line of progress a second at most."""
        counted = self._round_replies.get(event.round, 0) + 1
        self._round_replies[event.round] = counted
        if counted <= REPLY_LINES:
            answer = "" if event.answer is None else f" -> {snippet(event.answer, 30)}"
            self.console.print(f"  {event.stage} {event.round} {event.member}{answer}", highlight=False)
            return
        now = self.clock()
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.console.print(f"  {event.stage} {event.round}: {count(counted, 'reply', 'replies')} so far",
                               highlight=False)
        self._unshown[event.round] = (event.stage, counted)

    def _on_VoteTally(self, event: VoteTally) -> None:
        self.state.tally = event
        self._refresh()

    def _on_RoundFinished(self, event: RoundFinished) -> None:
        unshown = self._unshown.pop(event.round, None)
        if unshown is not None and self.mode == "plain":
            stage, counted = unshown
            self.console.print(f"  {stage} {event.round}: {count(counted, 'reply', 'replies')}", highlight=False)

    def _on_Note(self, event: Note) -> None:
        where = f"{event.prompt_id}: " if event.prompt_id else ""
        self.console.print(f"[yellow]note[/] {where}{render(event.message, self.namer)}", highlight=False)

    def _advance(self) -> None:
        self._done += 1
        if self._progress is not None:
            elapsed = self._progress.tasks[0].elapsed or 0.0
            rate = f"{self._done / elapsed:.2f}/s" if elapsed > 0 else ""
            self._progress.update(self._task, advance=1, rate=rate)

    def _on_PromptFinished(self, event: PromptFinished) -> None:
        self.records.append(event.record)
        self._advance()
        if self.mode == "plain" and self.total > 1:
            self.console.print(f"[{self._done}/{self.total}] {event.prompt_id} ok: {snippet(event.record.get('output'))}",
                               highlight=False, markup=False)

    def _on_PromptFailed(self, event: PromptFailed) -> None:
        """Shown under ``--quiet`` too: a failure is an error, not progress. A prompt the budget stopped is
        not a failure of its own: the end of the run says once that the budget stopped it."""
        self._advance()
        if event.record:
            self.records.append(event.record)
        if event.stopped:
            self.stopped.add(event.prompt_id)
            return
        message = render(event.error, self.namer)
        self.failures.append((event.prompt_id, message))
        self.console.print(f"ensemble: error: [{self._done}/{self.total}] {event.prompt_id} failed: {message}",
                           highlight=False, markup=False, style="red")

    def summary(self) -> None:
        """The results at the end: the answer and strategy view for one prompt, a table for batches."""
        if self.mode == "quiet":
            return
        if not self.records:
            return
        if self.total == 1:
            view = detail_view(self.records[0], show_all=self.show_all)
            if view is not None:
                self.console.print(view)
        else:
            self.console.print(results_table(self.records, self.stopped))
        totals = totals_line(self.records)  # a cascade: how many prompts stopped at each tier
        if totals is not None:
            self.console.print(totals, highlight=False, markup=False)
        self.console.print(usage_line(self.records), highlight=False, markup=False)


def results_table(records: list[dict[str, Any]], stopped: set[str]) -> Table:
    """One row per prompt, whatever became of it (``stopped``: the ids the budget stopped mid-way); a
    failed prompt shows its error instead of an output."""
    table = Table(title="results")
    for column in ("id", "status", "output", "calls", "cost", "wall s"):
        table.add_column(column)
    for record in records:
        usage = record.get("usage", {})
        shown = record.get("output") if record.get("status") == "ok" else "; ".join(record.get("errors") or [])
        status = "stopped" if str(record["id"]) in stopped else str(record.get("status"))
        table.add_row(str(record["id"]), status, snippet(shown, 60), str(usage.get("calls", "")),
                      usd(usage.get("cost_usd")), f"{usage.get('wall_s', 0):.2f}")
    return table


def usage_line(records: list[dict[str, Any]]) -> str:
    """One line of what the records' calls cost: calls, cache hits, tokens, dollars, local CPU seconds."""
    usages = [record.get("usage", {}) for record in records]
    calls = sum(u.get("calls", 0) for u in usages)
    cached = sum(u.get("cached_calls", 0) for u in usages)
    tokens = sum(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for u in usages)
    costs = [u.get("cost_usd") for u in usages]
    unpriced = sorted({key for u in usages for key, m in u.get("by_model", {}).items() if m.get("cost_usd") is None})
    if unpriced:
        cost = f"cost unknown (no price for {', '.join(unpriced)}; add it under prices: in the config)"
    else:
        cost = f"cost {usd(sum(c or 0 for c in costs))}"
    parts = [count(calls, "call") + (f", {cached} from the cache" if cached else ""), count(tokens, "token"), cost]
    cpu = sum(u.get("cpu_s", 0.0) for u in usages)
    if cpu:
        parts.append(f"{cpu:.2f} CPU s in-process")
    return "usage: " + ", ".join(parts)
