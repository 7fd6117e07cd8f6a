"""Vote wall time against a fake server with fixed latency: concurrent rounds versus a sequential baseline.

Five members, two debate rounds (one member changes its answer after seeing the others). Target: wall
time at most 1.2 x rounds x latency. The baseline is the same vote with one call in flight at a time.
"""

from __future__ import annotations

import asyncio
import time

from _bench import Size, Targets, concurrency_table, fake_members, parse_args

from ensemble_cli.strategies.vote import VoteSettings
from ensemble_cli.inputs import from_prompt
from ensemble_cli.strategies.vote import Vote

ROUNDS = 2  # the persuadable member changes its answer in the second round
SIZES = {
    "latency": Size(0.1, 0.01, "seconds the fake server waits per call"),
    "members": Size(5, 3, "members, one of them persuadable"),
}


async def timed(members, targets: Targets) -> float:
    """The second of two runs: the first opens connections and builds clients, once per process."""
    vote = Vote(members, VoteSettings(extract="number", rounds=ROUNDS))
    await vote.run(from_prompt("warm up"))
    started = time.perf_counter()
    result = await vote.run(from_prompt("What is six times seven?"))
    wall = time.perf_counter() - started
    targets.check(len(result.details.rounds) == ROUNDS, f"vote ran {len(result.details.rounds)} of {ROUNDS} rounds")
    targets.check(result.output.strip() == "42", f"vote answered {result.output!r}, not 42")
    return wall


def main() -> int:
    from fake_server import FakeOpenAIServer, ReplyModel

    args = parse_args(__doc__, SIZES)
    targets = Targets(args.quick)
    models = {
        "steady": ReplyModel(lambda ctx: "The answer is 42."),
        "persuadable": ReplyModel(lambda ctx: "The answer is 42." if "Other agents" in ctx.user else "The answer is 7."),
    }
    names = ["persuadable"] + ["steady"] * (args.members - 1)
    walls = {}
    with FakeOpenAIServer(models, latency=args.latency) as server:
        for label, bound in (("sequential baseline", 1), ("vote (concurrent)", 64)):
            _, members = fake_members(server, names, bound)
            walls[label] = asyncio.run(timed(members, targets))
    concurrency_table(f"vote: {args.members} members, {ROUNDS} rounds, {args.latency * 1000:.0f} ms latency",
                      args.latency, ROUNDS, walls, targets)
    return targets.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
