"""The command-line parser's exception types, wherever this Typer keeps them.

Typer 0.29 and later carry their own copy of click (``typer._click``) and raise its exceptions; earlier
versions raise click's own. The error boundary catches whichever this Typer raises.
"""

from __future__ import annotations

from typer import Abort as TyperAbort
from typer import Exit as TyperExit

try:
    from typer._click.exceptions import (  # type: ignore[import-not-found,unused-ignore]
        ClickException, NoArgsIsHelpError, NoSuchOption, UsageError,
    )
except ImportError:  # a Typer that uses click itself
    from click.exceptions import (  # type: ignore[assignment,no-redef,unused-ignore]
        ClickException, NoArgsIsHelpError, NoSuchOption, UsageError,
    )

try:
    from click.exceptions import Abort as ClickAbort, Exit as ClickExit
    Exit: tuple[type[BaseException], ...] = (TyperExit, ClickExit)
    Abort: tuple[type[BaseException], ...] = (TyperAbort, ClickAbort)
except ImportError:
    Exit, Abort = (TyperExit,), (TyperAbort,)

__all__ = ["Abort", "ClickException", "Exit", "NoArgsIsHelpError", "NoSuchOption", "UsageError"]
