"""The one place where exceptions become exit codes and one clear, redacted line each on stderr.

Typed errors carry their exit status (``EnsembleError.exit_status``); Ctrl-C and SIGTERM end the run
with records kept; anything unexpected is one ``internal error`` line. ``--traceback`` (or
``ENSEMBLE_TRACEBACK=1``) prints the traceback instead, with every secret masked.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

import click
import typer

from ..errors import EnsembleError, ExitStatus
from ..secrets import redact
from ..sinks.console import stderr_console

TRACEBACK_ENV = "ENSEMBLE_TRACEBACK"
TERMINATED = 143
"""Exit status after SIGTERM (128 + 15), as shells report it; Ctrl-C gives 130."""
BROKEN_PIPE = 141
"""Exit status when the reader of stdout or stderr closed it early (128 + SIGPIPE), as shells report it."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop like Ctrl-C. A ``KeyboardInterrupt``, so that no ``except Exception`` on the
    way (a provider turning failures into errors) takes it for a failed call, and asyncio stops at once."""


def wants_traceback() -> bool:
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def say(message: str, style: str = "red") -> None:
    console = stderr_console()
    for line in redact(message).splitlines() or [message]:
        console.print(f"ensemble: {line}", style=style, markup=False, highlight=False, soft_wrap=True)


def _silence_stdout() -> None:
    """Point stdout and stderr at /dev/null, so that flushing them at exit raises no second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _show_traceback(exc: BaseException) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    sys.stderr.flush()


@contextmanager
def error_boundary() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    except (typer.Exit, click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
        raise
    except EnsembleError as exc:
        if wants_traceback():
            _show_traceback(exc)
        else:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                say(f"error: {line}")
        raise typer.Exit(int(exc.exit_status)) from None
    except BrokenPipeError:
        # the reader of our output went away (`| head`): stop quietly, as a shell pipeline expects
        _silence_stdout()
        raise typer.Exit(BROKEN_PIPE) from None
    except (KeyboardInterrupt, Terminated) as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        say(f"{what}; records already written are kept; rerun with --resume to continue", style="")
        raise typer.Exit(TERMINATED if isinstance(exc, Terminated) else int(ExitStatus.INTERRUPTED)) from None
    except Exception as exc:  # the last branch: nothing escapes as a bare traceback
        if wants_traceback():
            _show_traceback(exc)
        else:
            say(f"internal error: {type(exc).__name__}: {exc}; rerun as `ensemble --traceback ...` "
                f"(or with {TRACEBACK_ENV}=1) and report it")
        raise typer.Exit(int(ExitStatus.ERROR)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
