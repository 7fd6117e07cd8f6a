"""CoT-decoding speed on the embedded model: k branches decoded together versus one greedy path.

Every branch runs the full --max-tokens (no early stop), like the single greedy path, so the lengths
match. Target: k=10 branches in at most 0.5 x k times the single path's wall time. Rounds interleave
both runs so that machine noise hits them alike; medians are reported.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time

from _bench import Size, Targets, parse_args, print_table

from ensemble_cli.calls import Message, Request
from ensemble_cli.providers.local import LocalProvider
from ensemble_cli.strategies.cot_paths import Path, decode_paths, first_tokens
from ensemble_cli.usage import Tally

QUESTION = "Q: I have 3 apples and buy 5 more. How many apples do I have?\nA:"
SIZES = {
    "k": Size(10, 3, "branches decoded together"),
    "max_tokens": Size(64, 8, "tokens per path"),
    "rounds": Size(3, 1, "interleaved rounds (medians reported)"),
}


async def branches(provider: LocalProvider, k: int, length: int) -> tuple[float, int]:
    """Prompt once, fork k ways, decode every branch ``length`` tokens (end tokens do not stop a branch)."""
    request = Request((Message("user", QUESTION),), max_tokens=length + 8)
    started = time.perf_counter()
    decoder = provider.decoder([request] * k, k + 2, Tally())
    first = (await decoder.positions([0], 1))[0][0]
    candidates = [(text, math.exp(lp)) for text, lp in first.top]
    paths = [Path(t, p) for t, p in first_tokens(candidates, k, k, 0.9)]
    await decode_paths(decoder, first, paths, length, stop_at_end=False)
    wall = time.perf_counter() - started
    await decoder.aclose()
    return wall, sum(len(p.steps) for p in paths)


def main() -> int:
    args = parse_args(__doc__, SIZES)
    targets = Targets(args.quick)
    provider = LocalProvider(None)
    asyncio.run(branches(provider, 1, 4))
    single, many, tokens = [], [], 0
    for _ in range(args.rounds):
        wall, _ = asyncio.run(branches(provider, 1, args.max_tokens))
        single.append(wall)
        wall, tokens = asyncio.run(branches(provider, args.k, args.max_tokens))
        many.append(wall)
    targets.check(tokens == args.k * args.max_tokens,
                  f"{tokens} tokens decoded, not {args.k} branches x {args.max_tokens}")
    one, k_wall = statistics.median(single), statistics.median(many)
    ratio = k_wall / one
    rows = [
        ["greedy single path", f"{one:.3f}", "1.0", "", ""],
        [f"k={args.k} branches ({tokens} tokens)", f"{k_wall:.3f}", f"{ratio:.1f}", f"<= {0.5 * args.k:.1f}",
         targets.timing(ratio <= 0.5 * args.k)],
    ]
    print_table(f"cot-decode on embedded SmolLM2, {args.max_tokens} tokens per path, median of {args.rounds}",
                ["run", "wall s", "x single", "target", ""], rows)
    print(f"\nsequential estimate (k separate greedy paths): {args.k * one:.3f} s; "
          f"batched: {k_wall:.3f} s ({args.k * one / k_wall:.1f}x faster)")
    return targets.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
