"""Start-up time of the console script: `ensemble --version` and `--help` against bare Python.

Each command runs in a fresh interpreter, interleaved over rounds; medians are reported, with the
ratio to `python -c pass` (the floor) and to importing the heavy modules the CLI no longer imports at
start-up (the openai SDK, llama_cpp, numpy, scipy), which is what `--help` cost when it did.
Target: `ensemble --help` under 0.5 s here (it took about 0.9 s when the SDK was imported eagerly).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _bench import Size, Targets, parse_args, print_table

COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "ensemble --version": [sys.executable, "-m", "ensemble_cli", "--version"],
    "ensemble --help": [sys.executable, "-m", "ensemble_cli", "--help"],
    "ensemble committee --help": [sys.executable, "-m", "ensemble_cli", "committee", "--help"],
    "import openai, numpy (eager imports, before)": [sys.executable, "-c", "import ensemble_cli.cli, openai, numpy"],
}
SIZES = {"rounds": Size(7, 1, "interleaved rounds (medians reported)")}


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    args = parse_args(__doc__, SIZES)
    targets = Targets(args.quick)
    walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():
            walls[name].append(timed(command))
    medians = {name: statistics.median(values) for name, values in walls.items()}
    floor = medians["python -c pass (floor)"]
    help_s = medians["ensemble --help"]
    rows = [[name, f"{wall:.3f}", f"{wall / floor:.1f}x", f"+{wall - floor:.3f}"] for name, wall in medians.items()]
    print_table(f"start-up, median of {args.rounds} interleaved rounds", ["command", "wall s", "x floor", "above floor"],
                rows)
    print(f"\nensemble --help: {help_s:.3f} s; target < 0.5 s: {targets.timing(help_s < 0.5)}")
    return targets.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
