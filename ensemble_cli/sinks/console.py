"""The stderr console for progress, warnings and errors: never hard-wrapped when stderr is not a terminal."""

from __future__ import annotations

from rich.console import Console

PLAIN_WIDTH = 1000
"""Width of stderr when it is not a terminal: lines are not wrapped (a log reader or grep gets whole lines)."""


def stderr_console() -> Console:
    console = Console(stderr=True, soft_wrap=True)
    if not console.is_terminal:
        console = Console(stderr=True, soft_wrap=True, width=PLAIN_WIDTH)
    return console
