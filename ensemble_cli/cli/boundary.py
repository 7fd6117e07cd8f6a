"""The one place where exceptions become exit codes and one clear, redacted line each on stderr.

``guarded`` runs a whole command line (parsing included) and returns its exit status: typed errors carry
theirs (``EnsembleError.exit_status``); a flag the parser refuses is one line naming the flag and the fix
(exit 2), never a box; Ctrl-C and SIGTERM end the run with records kept; a reader that went away is 141;
anything unexpected is one ``internal error`` line. ``--traceback`` (or ``ENSEMBLE_TRACEBACK=1``) prints
the traceback instead, with every secret masked.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import traceback
from types import FrameType
from typing import Callable

from ..errors import EnsembleError, ExitStatus
from ..secrets import redact
from ..sinks.console import say, stderr_lost
from .naming import flag_for
from .parsing import Abort, ClickException, Exit, NoArgsIsHelpError, NoSuchOption, UsageError

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


def error(message: str) -> None:
    """An ``ensemble: error: ...`` line (or lines), with settings named as the CLI's flags."""
    say(f"error: {message}", namer=flag_for)


def _silence_stdout() -> None:
    """Point stdout and stderr at /dev/null, so that flushing them at exit raises no second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(devnull)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _show_traceback(exc: BaseException) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    sys.stderr.flush()


def _help_hint(ctx: object) -> str:
    path = getattr(ctx, "command_path", None)
    return f" (see `{path} --help`)" if path else ""


INVALID = re.compile(r"^Invalid value for (?P<param>.+?): (?P<message>.*)$", re.S)
MISSING = re.compile(r"^Missing (?P<kind>argument|option|parameter) '(?P<name>[^']+)'\.?$")


def usage_message(exc: ClickException) -> str:
    """A parser error as one line: the flag, what is wrong with it, the fix or the parser's "did you mean"."""
    hint = _help_hint(getattr(exc, "ctx", None))
    option = getattr(exc, "option_name", None)
    if isinstance(exc, NoSuchOption):
        possibilities = sorted(exc.possibilities or [])
        guess = f"; did you mean {' or '.join(possibilities)}?" if possibilities else ""
        return f"{exc.option_name}: no such option{guess}{hint}"
    if option is not None:  # a flag used wrongly: given without its value, most often
        said = " ".join(exc.format_message().split())
        if "requires an argument" in said or "requires" in said and "arguments" in said:
            return f"{option}: give it a value{hint}"
        return f"{option}: {said[:1].lower()}{said[1:].rstrip('.')}{hint}"
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if message.startswith("Missing command") and ctx is not None:  # a group of subcommands, none named
        names = ", ".join(getattr(ctx.command, "commands", {}))
        return f"{ctx.command_path}: name a subcommand: {names}{hint}"
    missing = MISSING.match(message)
    if missing:
        name = missing["name"].upper() if missing["kind"] == "argument" else missing["name"]
        return f"{name}: required{hint}"
    invalid = INVALID.match(message)
    if invalid:
        said = invalid["message"].rstrip(".")
        name = invalid["param"].split(" / ")[0].strip("'")  # "'--temperature' / '-t'": the long name
        return f"{name}: {said[:1].lower()}{said[1:]}{hint}"
    return message + hint


def guarded(run: Callable[[], object]) -> int:
    """Run ``run`` (a whole command line) and return the exit status the README's table gives."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        run()
        status = 0
    except Exit as exc:
        status = int(getattr(exc, "exit_code", 0))
    except NoArgsIsHelpError as exc:
        shown = exc.ctx.get_help()  # Typer's Rich help prints itself and returns nothing
        if shown:
            print(shown)
        status = int(ExitStatus.USAGE)
    except ClickException as exc:
        error(usage_message(exc))
        status = int(ExitStatus.USAGE) if isinstance(exc, UsageError) else exc.exit_code
    except Abort:
        say("aborted", style="")
        status = int(ExitStatus.INTERRUPTED)
    except EnsembleError as exc:
        if wants_traceback():
            _show_traceback(exc)
        else:
            for line in exc.text(flag_for).splitlines() or [type(exc).__name__]:
                error(line)
        status = int(exc.exit_status)
    except BrokenPipeError:
        # the reader of our output went away (`| head`): stop quietly, as a shell pipeline expects
        _silence_stdout()
        return BROKEN_PIPE
    except (KeyboardInterrupt, Terminated) as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        say(f"{what}; records already written are kept; rerun with --resume to continue", style="")
        status = TERMINATED if isinstance(exc, Terminated) else int(ExitStatus.INTERRUPTED)
    except Exception as exc:  # the last branch: nothing escapes as a bare traceback
        if wants_traceback():
            _show_traceback(exc)
        else:
            say(f"internal error: {type(exc).__name__}: {exc}; rerun as `ensemble --traceback ...` "
                f"(or with {TRACEBACK_ENV}=1) and report it")
        status = int(ExitStatus.ERROR)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return BROKEN_PIPE if stderr_lost() else status
