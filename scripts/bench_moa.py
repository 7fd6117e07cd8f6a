"""MoA wall time against a fake server with fixed latency: concurrent layers versus a sequential baseline.

Four proposers, three layers, one streamed aggregation. Target: wall time at most 1.2 x (L + 1) x latency.
The baseline is the same run with one call in flight at a time.
"""

from __future__ import annotations

import asyncio
import time

from _bench import Size, Targets, concurrency_table, fake_members, parse_args

from ensemble_cli.strategies.moa import MoaSettings
from ensemble_cli.inputs import from_prompt
from ensemble_cli.strategies.moa import MixtureOfAgents

ANSWER = "Plants grow from light, water and nutrients."
SIZES = {
    "latency": Size(0.1, 0.01, "seconds the fake server waits per call"),
    "proposers": Size(4, 2, "proposers per layer"),
    "layers": Size(3, 1, "layers of proposers before the aggregator"),
}


async def timed(members, layers: int, targets: Targets) -> float:
    """The second of two runs: the first opens connections and builds clients, once per process.
    The last member aggregates; the others propose."""
    moa = MixtureOfAgents(members[:-1], members[-1], MoaSettings(layers=layers))
    await moa.run(from_prompt("warm up"))
    started = time.perf_counter()
    result = await moa.run(from_prompt("How do plants grow?"))
    wall = time.perf_counter() - started
    targets.check(len(result.details.layers) == layers, f"moa ran {len(result.details.layers)} of {layers} layers")
    targets.check(result.output.strip() == ANSWER, f"moa answered {result.output!r}")
    return wall


def main() -> int:
    from fake_server import FakeOpenAIServer, ReplyModel

    args = parse_args(__doc__, SIZES)
    targets = Targets(args.quick)
    models = {"p": ReplyModel(lambda ctx: ANSWER)}
    walls = {}
    with FakeOpenAIServer(models, latency=args.latency) as server:
        for label, bound in (("sequential baseline", 1), ("moa (concurrent layers)", 64)):
            _, members = fake_members(server, ["p"] * (args.proposers + 1), bound)
            walls[label] = asyncio.run(timed(members, args.layers, targets))
    concurrency_table(f"moa: {args.proposers} proposers, {args.layers} layers + aggregator, "
                      f"{args.latency * 1000:.0f} ms latency", args.latency, args.layers + 1, walls, targets)
    return targets.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
