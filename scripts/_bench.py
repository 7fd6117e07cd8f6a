"""Helpers shared by the benchmark scripts: their flags (``--quick`` and the sizes it shrinks), the PASS/FAIL
targets and the exit status they give, a plain table printer, and the import path of the fake server.

Every script parses its flags with :func:`parse_args`. ``--quick`` swaps each size's default for a small one
(few prompts, few tokens, one round), so that the script finishes in seconds and prints the same tables;
``tests/test_scripts.py`` runs every script that way. A size given on the command line still wins.

A script records each target it prints with :class:`Targets`: a *check* is a result (calls a cache should
have saved, answers lost, rounds that did not run) and fails the run in either mode; a *timing* is a speed
target and never fails a quick run, where the sizes are too small for timings to mean anything.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
# the interpreters a script starts (`ensemble serve`, start-up timings) import the same code as the script
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)

QUICK_HELP = ("small sizes (few prompts, few tokens, one round) so that the script finishes in seconds; "
              "the tables print as usual, and timings never fail the run")
QUICK_NOTE = "quick mode: small sizes; timings are printed but never fail the run"

Value = int | float | list[int]


@dataclass(frozen=True)
class Size:
    """A flag of a script with its default in full mode and its default with ``--quick``."""

    full: Value
    quick: Value
    help: str


def parse_args(doc: str | None, sizes: Mapping[str, Size],
               extra: Callable[[argparse.ArgumentParser], None] | None = None,
               argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The script's flags: ``--quick``, one ``--NAME`` per size (``NAME`` with dashes) and those ``extra`` adds.
    A size not given takes its quick or full default; ``args.quick`` tells which mode runs."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    for name, size in sizes.items():
        many = isinstance(size.full, list)
        kind = type(size.full[0] if isinstance(size.full, list) else size.full)
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, nargs="+" if many else None,
                            default=None, help=f"{size.help} (default {size.full}; with --quick {size.quick})")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    for name, size in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, size.quick if args.quick else size.full)
    if args.quick:
        print(QUICK_NOTE, file=sys.stderr)
    return args


@dataclass
class Targets:
    """The verdicts a script prints, and the exit status they add up to.

    ``strict_timings``: a timing FAIL also fails a full run (bench_serve's added latency); never a quick one.
    """

    quick: bool
    strict_timings: bool = False
    wrong: list[str] = field(default_factory=list)
    slow: int = 0

    def check(self, ok: bool, what: str) -> str:
        """A result: FAIL fails the run in either mode; ``what`` names it on stderr."""
        if not ok:
            self.wrong.append(what)
        return verdict(ok)

    def timing(self, ok: bool) -> str:
        """A speed target: printed PASS or FAIL; a FAIL fails only a full run with ``strict_timings``."""
        self.slow += not ok
        return verdict(ok)

    def exit_status(self) -> int:
        """0, or 1 after naming on stderr each wrong result (and, where they count, the failed timings)."""
        for what in self.wrong:
            print(f"wrong result: {what}", file=sys.stderr)
        failed_timings = self.slow and self.strict_timings and not self.quick
        if failed_timings:
            print(f"{self.slow} timing target(s) missed", file=sys.stderr)
        return 1 if self.wrong or failed_timings else 0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


def fake_members(server, names: list[str], max_concurrency: int, provider: str = "vllm"):
    """Members on a fake server, in a fresh registry whose endpoint allows ``max_concurrency`` calls."""
    from ensemble_cli.config import MemberConfig, RunConfig
    from ensemble_cli.providers.registry import ProviderRegistry
    from ensemble_cli.strategies.base import Member

    registry = ProviderRegistry(RunConfig(max_concurrency=max_concurrency, max_retries=0))
    members = [
        Member(f"{name}-{i}", registry.provider_for(MemberConfig(name=f"{name}-{i}", provider=provider, model=name,
                                                                 base_url=server.base_url)))
        for i, name in enumerate(names)
    ]
    return registry, members


def concurrency_table(title: str, latency: float, steps: int, walls: dict[str, float], targets: Targets) -> None:
    """Wall time against the target of 1.2 x steps x latency, and the sequential baseline's ratio."""
    target = 1.2 * steps * latency
    sequential = walls["sequential baseline"]
    rows = [[name, f"{wall:.3f}", f"{sequential / wall:.1f}x", f"<= {target:.3f}",
             targets.timing(wall <= target) if name != "sequential baseline" else ""]
            for name, wall in walls.items()]
    print_table(title, ["run", "wall s", "speed-up", "target", ""], rows)
