"""Writes the small benchmark sets shipped in ``ensemble_cli/data/bench/`` (seeded, so reruns are identical).

- ``arith.jsonl``: arithmetic word problems of 1 to 3 steps; each gold answer is computed here from the
  numbers in the text and checked again by evaluating the problem's own expression.
- ``mc.jsonl``: multiple-choice questions whose answers are computed (sums, comparisons, unit
  conversions, alphabetical and calendar order); the gold letter is checked to point at the computed value
  and the other choices are checked to differ from it.

Run:  python scripts/make_bench_sets.py   (then `git diff ensemble_cli/data/bench` shows nothing new);
      python scripts/make_bench_sets.py --check   (writes nothing; fails if a shipped set is not reproduced)
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from _bench import Targets, parse_args

OUT = Path(__file__).resolve().parent.parent / "ensemble_cli" / "data" / "bench"
SEED = 13
ARITH_ITEMS = 40
MC_ITEMS = 40
NAMES = ["Tom", "Mia", "Sam", "Ana", "Leo", "Zoe", "Ben", "Ivy"]
THINGS = ["apples", "stickers", "marbles", "pencils", "cards", "shells"]
LETTERS = "ABCD"


def one_step(rng: random.Random) -> tuple[str, str]:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    kind = rng.choice(["add", "sub", "mul"])
    if kind == "add":
        a, b = rng.randint(3, 40), rng.randint(2, 30)
        return f"{name} has {a} {thing}. {name} gets {b} more. How many {thing} does {name} have now?", f"{a} + {b}"
    if kind == "sub":
        a = rng.randint(15, 60)
        b = rng.randint(2, a - 3)
        return f"{name} has {a} {thing} and gives away {b}. How many {thing} are left?", f"{a} - {b}"
    a, b = rng.randint(2, 9), rng.randint(2, 12)
    return f"There are {a} bags with {b} {thing} in each bag. How many {thing} are there in all?", f"{a} * {b}"


def two_steps(rng: random.Random) -> tuple[str, str]:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    if rng.random() < 0.5:
        a, b, c = rng.randint(2, 20), rng.randint(2, 6), rng.randint(2, 10)
        return (f"{name} has {a} {thing}. {name} buys {b} packs with {c} {thing} in each pack. "
                f"How many {thing} does {name} have now?", f"{a} + {b} * {c}")
    a = rng.randint(20, 60)
    b, c = rng.randint(2, a - 5), rng.randint(2, 25)
    return (f"{name} has {a} {thing}, gives {b} to a friend and then finds {c} more. "
            f"How many {thing} does {name} have now?", f"{a} - {b} + {c}")


def three_steps(rng: random.Random) -> tuple[str, str]:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    a, b, d = rng.randint(2, 6), rng.randint(3, 12), rng.randint(2, 5)
    c = (a * b) % d or d  # so that (a * b - c) / d is whole and c is at least 1
    return (f"{name} buys {a} boxes with {b} {thing} in each box, loses {c} of them, and shares the rest "
            f"equally among {d} friends. How many {thing} does each friend get?", f"({a} * {b} - {c}) // {d}")


def arith(rng: random.Random) -> list[dict]:
    rows = []
    makers = [one_step, two_steps, three_steps]
    for index in range(ARITH_ITEMS):
        steps = index % 3 + 1
        text, expression = makers[steps - 1](rng)
        value = eval(expression, {"__builtins__": {}})  # our own expression, built above from integers
        assert isinstance(value, int) and value > 0, (text, expression, value)
        assert "//" not in expression or eval(expression.replace("//", "/"), {"__builtins__": {}}) == value
        assert all(re.search(rf"\b{n}\b", text) for n in _numbers(expression)), (text, expression)
        rows.append({"id": f"arith-{index + 1:03d}", "prompt": text + " Answer with a number.",
                     "answer": str(value), "steps": steps, "expression": expression})
    return rows


def _numbers(expression: str) -> list[str]:
    return re.findall(r"\d+", expression)


def _distinct_numbers(rng: random.Random, right: int, spread: int) -> list[int]:
    wrong: set[int] = set()
    while len(wrong) < 3:
        candidate = right + rng.choice([-1, 1]) * rng.randint(1, spread)
        if candidate != right and candidate >= 0:
            wrong.add(candidate)
    return [right, *sorted(wrong)]


def mc_question(rng: random.Random, kind: str) -> tuple[str, list[str], str]:
    """(question, four choices, the right choice's text)."""
    if kind == "sum":
        a, b = rng.randint(5, 60), rng.randint(5, 60)
        options = _distinct_numbers(rng, a + b, 12)
        return f"What is {a} + {b}?", [str(o) for o in options], str(a + b)
    if kind == "largest":
        options = rng.sample(range(10, 99), 4)
        return "Which of these numbers is the largest?", [str(o) for o in options], str(max(options))
    if kind == "minutes":
        hours = rng.randint(2, 9)
        options = _distinct_numbers(rng, hours * 60, 90)
        return f"How many minutes are there in {hours} hours?", [str(o) for o in options], str(hours * 60)
    if kind == "alphabet":
        words = rng.sample(["river", "apple", "candle", "garden", "monkey", "pencil", "tiger", "yellow",
                            "banana", "orange", "window", "kettle", "ladder", "silver"], 4)
        return "Which word comes first in alphabetical order?", words, min(words)
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    start = rng.randrange(7)
    right = days[(start + 1) % 7]
    others = rng.sample([d for d in days if d not in (right, days[start])], 3)
    return f"Which day comes right after {days[start]}?", [right, *others], right


def mc(rng: random.Random) -> list[dict]:
    kinds = ["sum", "largest", "minutes", "alphabet", "weekday"]
    rows = []
    for index in range(MC_ITEMS):
        question, options, right = mc_question(rng, kinds[index % len(kinds)])
        rng.shuffle(options)
        assert len(set(options)) == 4 and options.count(right) == 1, (question, options)
        letter = LETTERS[options.index(right)]
        rows.append({"id": f"mc-{index + 1:03d}", "prompt": question, "choices": options, "answer": letter})
    return rows


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(jsonl(rows), encoding="utf-8")
    print(f"wrote {len(rows)} items to {path}")


def check(path: Path, rows: list[dict], targets: Targets) -> None:
    """Compare the generated set with the file, writing nothing."""
    same = path.is_file() and path.read_text(encoding="utf-8") == jsonl(rows)
    verdict = targets.check(same, f"{path} is not what this script generates")
    print(f"{len(rows)} items, {path}: {'reproduced' if same else 'differs'} {verdict}")


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="write nothing; fail if a shipped set differs")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the folder to write or check (default {OUT})")


def main() -> int:
    args = parse_args(__doc__, {}, flags)  # the sets are small: --quick changes nothing here
    targets = Targets(args.quick)
    sets = {"arith.jsonl": arith(random.Random(SEED)), "mc.jsonl": mc(random.Random(SEED + 1))}
    for name, rows in sets.items():
        if args.check:
            check(args.out / name, rows, targets)
        else:
            write(args.out / name, rows)
    return targets.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
