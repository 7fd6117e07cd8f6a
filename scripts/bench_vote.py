"""Vote wall time against a fake server with fixed latency: concurrent rounds versus a sequential baseline.

Five members, two debate rounds (one member changes its answer after seeing the others). Target: wall
time at most 1.2 x rounds x latency. The baseline is the same vote with one call in flight at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _bench import concurrency_table, fake_members

from ensemble_cli.config import VoteSettings
from ensemble_cli.inputs import from_prompt
from ensemble_cli.strategies.vote import Vote


async def timed(members, rounds: int) -> float:
    """The second of two runs: the first opens connections and builds clients, once per process."""
    vote = Vote(members, VoteSettings(extract="number", rounds=rounds))
    await vote.run(from_prompt("warm up"))
    started = time.perf_counter()
    result = await vote.run(from_prompt("What is six times seven?"))
    wall = time.perf_counter() - started
    assert len(result.details.rounds) == rounds, "the benchmark needs every round to run"
    return wall


def main() -> None:
    from fake_server import FakeOpenAIServer, ReplyModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--members", type=int, default=5)
    args = parser.parse_args()
    models = {
        "steady": ReplyModel(lambda ctx: "The answer is 42."),
        "persuadable": ReplyModel(lambda ctx: "The answer is 42." if "Other agents" in ctx.user else "The answer is 7."),
    }
    names = ["persuadable"] + ["steady"] * (args.members - 1)
    walls = {}
    with FakeOpenAIServer(models, latency=args.latency) as server:
        for label, bound in (("sequential baseline", 1), ("vote (concurrent)", 64)):
            registry, members = fake_members(server, names, bound)
            walls[label] = asyncio.run(timed(members, 2))
    concurrency_table(f"vote: {args.members} members, 2 rounds, {args.latency * 1000:.0f} ms latency",
                      args.latency, 2, walls)


if __name__ == "__main__":
    main()
