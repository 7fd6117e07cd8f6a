"""The consoles the tool writes to people through: stderr for progress, warnings and errors, stdout for tables.

Never hard-wrapped when not a terminal. A reader that goes away is handled here, once, for every command:
- stderr gone (``ensemble ... 2>&1 | head -1``): the run goes on writing its records; nothing more is shown
  (stderr is pointed at /dev/null) and the command exits 141 at its end (``stderr_lost``);
- stdout gone: ``BrokenPipeError`` is raised at once, and the error boundary stops the command with 141.
Rich's own answer to a broken pipe (``SystemExit(1)``, which would stop a batch silently) never runs.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

from ..errors import Namer, render
from ..secrets import redact

PLAIN_WIDTH = 1000
"""Width of stderr when it is not a terminal: lines are not wrapped (a log reader or grep gets whole lines)."""

_lost = {"stderr": False}


class ToolConsole(Console):
    """A Rich console whose broken pipe is the tool's to handle, not Rich's ``SystemExit(1)``."""

    def on_broken_pipe(self) -> None:
        if self.stderr:
            silence_stderr()
            self.quiet = True
            return
        raise BrokenPipeError("the reader of stdout went away")


def install() -> None:
    """Every Rich console of the process (Typer's help and error output too) handles a broken pipe as ours
    do; called once by the console script."""
    Console.on_broken_pipe = ToolConsole.on_broken_pipe  # type: ignore[method-assign,assignment]


def silence_stderr() -> None:
    """Point stderr at /dev/null (its reader is gone) and remember it, so that the run can go on."""
    _lost["stderr"] = True
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stderr.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's capture)
        pass
    finally:
        os.close(devnull)


def stderr_lost() -> bool:
    """Whether stderr's reader went away during this process."""
    return _lost["stderr"]


def stderr_console() -> ToolConsole:
    console = ToolConsole(stderr=True, soft_wrap=True)
    if not console.is_terminal:
        console = ToolConsole(stderr=True, soft_wrap=True, width=PLAIN_WIDTH)
    return console


def stdout_console(width: int | None = None) -> ToolConsole:
    """Tables on stdout (``ensemble providers``): whole lines, no colour, when stdout is not a terminal."""
    if sys.stdout.isatty():
        return ToolConsole()
    return ToolConsole(width=width or PLAIN_WIDTH, no_color=True, soft_wrap=True)


def say(message: str, style: str = "red", namer: Namer | None = None) -> None:
    """One or more ``ensemble: ...`` lines on stderr, redacted, settings named as ``namer`` names them."""
    console = stderr_console()
    text = render(message, namer) if namer is not None else render(message)
    for line in redact(text).splitlines() or [text]:
        console.print(f"ensemble: {line}", style=style, markup=False, highlight=False, soft_wrap=True)
