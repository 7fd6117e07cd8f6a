"""`ensemble cache stats | clear | prune`: what the call cache holds, and emptying it, wholly or by last use."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterator, Optional

import typer

if TYPE_CHECKING:
    from ..cache import CallCache

HELP = "Look after the call cache: what it holds (stats), empty it (clear), or drop entries unused for a while (prune)."

cache_app = typer.Typer(help=HELP)

CacheDir = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Directory of the call cache (default $ENSEMBLE_CACHE_DIR, $XDG_CACHE_HOME/ensemble or "
                        "~/.cache/ensemble).", show_default=False)]

AGE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw])\s*$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def age_seconds(text: str) -> float:
    """An age such as ``90m``, ``12h``, ``30d`` or ``2w`` (also ``s``), in seconds."""
    found = AGE.match(text)
    if found is None:
        raise typer.BadParameter(f"'{text}' is not an age; give a number and a unit, as in 90m, 12h, 30d or 2w",
                                 param_hint="'--older-than'")
    return float(found["number"]) * UNIT_S[found["unit"]]


def confirm(question: str) -> bool:
    """Ask on stderr, read the answer from stdin (a terminal); only y or yes agrees. Unlike click's confirm,
    nothing reaches stdout; end of input is an abort, as Ctrl-D in a shell is."""
    import sys

    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        raise typer.Abort()
    return answer.strip().lower() in ("y", "yes")


def _cache(cache_dir: Path | None) -> CallCache:
    from ..cache import CallCache, default_dir
    from ..errors import ConfigError

    directory = cache_dir.expanduser() if cache_dir is not None else default_dir()
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: not a directory; give --cache-dir the directory that holds the cache "
                          "(calls.sqlite3)")
    return CallCache(directory)


@contextmanager
def _opened(cache_dir: Path | None) -> Iterator[CallCache]:
    """The cache of ``--cache-dir`` (or the default), closed after; a file it cannot use is one error line."""
    import sqlite3

    from ..errors import EnsembleError

    cache = _cache(cache_dir)
    try:
        yield cache
    except (sqlite3.Error, OSError) as exc:
        raise EnsembleError(f"{cache.path}: cannot use the call cache ({exc}); check the file, or give another "
                            "--cache-dir") from None
    finally:
        cache.close()


@cache_app.command("stats")
def stats(
    cache_dir: CacheDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")] = False,
) -> None:
    """Entries, file size, hits recorded, oldest and newest entry, and entries per provider and model."""
    import dataclasses
    import json

    from ..sinks.cache_views import as_json as stats_json, stats_view
    from ..sinks.console import stdout_console

    with _opened(cache_dir) as cache:
        figures = cache.stats()
    if as_json:
        print(json.dumps(stats_json(dataclasses.asdict(figures))))
    else:
        stdout_console().print(stats_view(figures))


@cache_app.command("clear")
def clear(
    cache_dir: CacheDir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Clear without asking (needed when stdin is not a terminal).")] = False,
) -> None:
    """Remove every entry of the call cache; asks first, unless --yes."""
    import sys

    from ..errors import ConfigError, ExitStatus
    from ..formatting import count
    from .boundary import error

    with _opened(cache_dir) as cache:
        entries = cache.stats().entries
        if entries and not yes:
            if not sys.stdin.isatty():
                raise ConfigError(f"cache clear: would remove {count(entries, 'entry', 'entries')} of {cache.path} "
                                  "and stdin is not a terminal to ask; pass --yes to clear without asking")
            if not confirm(f"Remove all {count(entries, 'entry', 'entries')} of the call cache {cache.path}?"):
                error("nothing removed")
                raise typer.Exit(int(ExitStatus.ERROR))
        removed = cache.remove()
    print(f"removed {count(removed, 'entry', 'entries')} from {cache.path}")


@cache_app.command("prune")
def prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Remove entries last used longer ago than this: a number and a unit, as in 90m, 12h, 30d or 2w.", show_default=False)],
    cache_dir: CacheDir = None,
) -> None:
    """Remove the entries not used (stored or served) for a while; says how many went and how many are left."""
    import time

    from ..formatting import count

    cutoff = time.time() - age_seconds(older_than)
    with _opened(cache_dir) as cache:
        removed = cache.remove(unused_since=cutoff)
        left = cache.stats().entries
    print(f"removed {count(removed, 'entry', 'entries')} last used more than {older_than.strip()} ago from "
          f"{cache.path}; {count(left, 'entry', 'entries')} left")
