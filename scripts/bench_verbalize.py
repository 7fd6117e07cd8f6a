"""Diversity of Verbalized Sampling against direct sampling on the embedded model.

For each open-ended prompt: M draws from the verbalized distribution (multi variant) and M plain samples
at the same temperature; unique responses, distinct-1/2 and mean pairwise word-level Jaccard similarity
(lower is more diverse), then the averages and their ratio (verbalized / direct).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from _bench import Size, parse_args, print_table

from ensemble_cli.strategies.verbalize import VerbalizeSettings
from ensemble_cli.errors import StrategyError
from ensemble_cli.inputs import from_prompt
from ensemble_cli.providers.local import LocalProvider
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.verbalize import Verbalize

PROMPTS = [
    "Write a one-line joke about coffee.",
    "Name a city worth visiting.",
    "Give a name for a pet turtle.",
    "Write the first line of a story.",
]
METRICS = ("unique", "distinct_1", "distinct_2", "mean_pairwise_jaccard")
SIZES = {
    "draws": Size(6, 2, "draws per method and prompt"),
    "prompts": Size(len(PROMPTS), 1, "prompts"),
    "k": Size(5, 2, "responses asked for per verbalized turn"),
    "total": Size(8, 2, "responses asked for in all (further turns ask for the rest)"),
    "max_tokens": Size(200, 96, "tokens per reply"),
}


async def one(member: Member, prompt: str, args: argparse.Namespace) -> dict | None:
    settings = VerbalizeSettings(k=args.k, variant="multi", total=args.total, sample=args.draws, compare="direct")
    try:
        result = await Verbalize([member], settings, args.seed, max_tokens=args.max_tokens).run(from_prompt(prompt))
    except StrategyError as exc:
        print(f"skipped {prompt!r}: {exc}")
        return None
    return result.details.compare


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temperature", type=float, default=0.9, help="sampling temperature of both methods")
    parser.add_argument("--seed", type=int, default=1, help="seed of the verbalized run")
    parser.add_argument("--model", default=None, help="a GGUF path instead of the embedded SmolLM2")


def main() -> None:
    args = parse_args(__doc__, SIZES, flags)
    member = Member(args.model or "smollm2", LocalProvider(args.model), temperature=args.temperature)
    rows, totals = [], {"verbalized": {m: [] for m in METRICS}, "direct": {m: [] for m in METRICS}}
    for prompt in PROMPTS[:args.prompts]:
        compare = asyncio.run(one(member, prompt, args))
        if compare is None:
            continue
        for side in ("verbalized", "direct"):
            rows.append([prompt[:34], side] + [compare[side][m] for m in METRICS])
            for m in METRICS:
                totals[side][m].append(compare[side][m])
    print_table(f"Verbalized Sampling vs direct sampling, {member.name}, {args.draws} draws, T={args.temperature}",
                ["prompt", "method", *METRICS], rows)
    means = {side: {m: statistics.mean(v) if v else 0.0 for m, v in values.items()} for side, values in totals.items()}
    summary = [[side] + [f"{means[side][m]:.3f}" for m in METRICS] for side in ("verbalized", "direct")]
    summary.append(["ratio verbalized/direct"] + [
        f"{means['verbalized'][m] / means['direct'][m]:.2f}" if means["direct"][m] else "-" for m in METRICS])
    print_table("Averages (Jaccard: lower = more diverse)", ["", *METRICS], summary)


if __name__ == "__main__":
    main()
