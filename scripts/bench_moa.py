"""MoA wall time against a fake server with fixed latency: concurrent layers versus a sequential baseline.

Four proposers, three layers, one streamed aggregation. Target: wall time at most 1.2 x (L + 1) x latency.
The baseline is the same run with one call in flight at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _bench import concurrency_table, fake_members

from ensemble_cli.config import MoaSettings
from ensemble_cli.inputs import from_prompt
from ensemble_cli.strategies.moa import MixtureOfAgents


async def timed(members, layers: int) -> float:
    """The second of two runs: the first opens connections and builds clients, once per process.
    The last member aggregates; the others propose."""
    moa = MixtureOfAgents(members[:-1], members[-1], MoaSettings(layers=layers))
    await moa.run(from_prompt("warm up"))
    started = time.perf_counter()
    await moa.run(from_prompt("How do plants grow?"))
    return time.perf_counter() - started


def main() -> None:
    from fake_server import FakeOpenAIServer, ReplyModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--proposers", type=int, default=4)
    parser.add_argument("--layers", type=int, default=3)
    args = parser.parse_args()
    models = {"p": ReplyModel(lambda ctx: "Plants grow from light, water and nutrients.")}
    walls = {}
    with FakeOpenAIServer(models, latency=args.latency) as server:
        for label, bound in (("sequential baseline", 1), ("moa (concurrent layers)", 64)):
            _, members = fake_members(server, ["p"] * (args.proposers + 1), bound)
            walls[label] = asyncio.run(timed(members, args.layers))
    concurrency_table(f"moa: {args.proposers} proposers, {args.layers} layers + aggregator, "
                      f"{args.latency * 1000:.0f} ms latency", args.latency, args.layers + 1, walls)


if __name__ == "__main__":
    main()
