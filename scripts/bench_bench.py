"""How fast `ensemble bench` runs its arms, and how many calls re-runs and method sweeps make.

Against the fake server with a fixed latency per call:
1. 200 items x 4 arms (single, vote, vote-weighted, moa-lite): wall time against the critical path, the larger
   of the deepest chain of dependent calls of one item x latency and the calls divided by the endpoint's
   concurrency bound x latency, and against the CPU floor (the same run with no latency: the client, the
   fake server and JSON share this process). Target: wall <= 1.5 x the larger of the two.
2. A second identical run into a new directory, sharing the first run's call cache: the calls it makes.
   Target 0 (every request is reproducible: temperature 0, or sampled with a seed).
3. A vote-method sweep (majority, weighted, confidence on the same samples), each run with a fresh, empty
   call cache so that only revote can save calls: the calls beyond those of one method. Target 0: the
   other methods are recounted from the stored replies.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from _bench import Size, Targets, parse_args, print_table

from fake_server import FakeOpenAIServer, ReplyModel

from ensemble_cli.bench.arms import load_plan
from ensemble_cli.bench.datasets import BenchItem, Dataset
from ensemble_cli.bench.runner import read_records, run_bench
from ensemble_cli.calls import Message

SIZES = {
    "items": Size(200, 10, "dataset items"),
    "latency": Size(0.05, 0.01, "seconds the fake server waits per call"),
    "concurrency": Size(64, 64, "calls in flight at most (the endpoint's bound, and prompts in parallel)"),
}

ARMS = """
  - name: vote
    strategy: vote
    temperature: 0.7
    vote: {samples: 3}
  - name: vote-weighted
    strategy: vote
    temperature: 0.7
    vote: {samples: 3, method: weighted}
  - name: moa-lite
    strategy: moa
    n: 2
    moa: {layers: 1}
"""

SWEEP = """
  - name: vote-majority
    strategy: vote
    temperature: 0.7
    vote: {samples: 3}
  - name: vote-weighted
    strategy: vote
    temperature: 0.7
    vote: {samples: 3, method: weighted}
  - name: vote-confidence
    strategy: vote
    temperature: 0.7
    vote: {samples: 3, method: confidence}
"""


def dataset(size: int) -> Dataset:
    items = [BenchItem(f"q{i}", (Message("user", f"What is {i} + 1?"),), str(i + 1)) for i in range(size)]
    return Dataset("toy", items, "jsonl")


def ignore_progress(name: str, total: int, done: int):
    return lambda event: None


def run(server: FakeOpenAIServer, arms: str, folder: Path, name: str, cache: str, args: argparse.Namespace,
        targets: Targets) -> tuple[float, int]:
    """One bench run into ``folder/name`` with the call cache in ``folder/cache``; its wall time and calls."""
    config = folder / f"{name}.yaml"
    config.write_text(f"provider: vllm\nmodel: toy\nbase_url: {server.base_url}\nmax_retries: 0\nseed: 1\n"
                      f"max_concurrency: {args.concurrency}\nparallel_prompts: {args.concurrency}\nmax_tokens: 16\n"
                      f"cache_dir: {folder / 'caches' / cache}\narms:{arms}")
    plan = load_plan(config, "number")
    data = dataset(args.items)
    before = server.calls
    started = time.perf_counter()
    asyncio.run(run_bench(plan, data, data.items, folder / name, False, ignore_progress))
    wall = time.perf_counter() - started
    failed = sum(1 for path in (folder / name / "records").glob("*.jsonl")
                 for record in read_records(path).values() if record.get("status") != "ok")
    if failed:
        print(f"warning: {name}: {failed} record(s) failed")
    targets.check(not failed, f"{name}: {failed} record(s) failed")
    return wall, server.calls - before


def main() -> int:
    args = parse_args(__doc__, SIZES)
    targets = Targets(args.quick)
    ThreadingHTTPServer.request_queue_size = 256  # the default backlog of 5 refuses connections at 64 in flight
    model = ReplyModel(lambda ctx: f"The answer is {ctx.call_index % 7}.")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with FakeOpenAIServer({"toy": model}) as instant:
            floor, _ = run(instant, ARMS, folder, "no-latency", "floor", args, targets)
        with FakeOpenAIServer({"toy": model}, latency=args.latency) as server:
            measure(server, folder, floor, args, targets)
    return targets.exit_status()


def measure(server: FakeOpenAIServer, folder: Path, floor: float, args: argparse.Namespace, targets: Targets) -> None:
    latency, concurrency = args.latency, args.concurrency
    wall, calls = run(server, ARMS, folder, "first", "shared", args, targets)
    depth = 2  # moa-lite: the proposers, then the aggregator
    path = max(depth * latency, calls * latency / concurrency)
    bound = max(path, floor)
    print_table(f"bench: {args.items} items x 4 arms, {latency * 1000:.0f} ms per call, at most {concurrency} calls "
                "in flight", ["run", "calls", "wall s", "critical path s", "CPU floor s", "wall / max(path, floor)",
                              "target", ""],
                [["first run", calls, f"{wall:.2f}", f"{path:.2f}", f"{floor:.2f}", f"{wall / bound:.2f}x",
                  "<= 1.5x", targets.timing(wall <= 1.5 * bound)]])
    print("critical path: the larger of the deepest chain of dependent calls x latency and calls x latency / "
          "concurrency bound;\nCPU floor: the same run against the server with no latency (client, server and "
          "JSON in one process).")
    _, again = run(server, ARMS, folder, "second", "shared", args, targets)
    cached = targets.check(again == 0, f"a re-run made {again} calls; the call cache should serve them all")
    print_table("a second identical run (new run directory, the same call cache)", ["calls", "target", ""],
                [[again, 0, cached]])
    _, one = run(server, SWEEP.split("  - name: vote-weighted")[0], folder, "one-method", "fresh-one", args, targets)
    _, sweep = run(server, SWEEP, folder, "sweep", "fresh-sweep", args, targets)
    extra = sweep - one
    print_table("vote-method sweep: majority, weighted, confidence on the same samples (empty caches)",
                ["calls, one method", "calls, three methods", "extra calls", "target", ""],
                [[one, sweep, extra, 0, targets.check(extra == 0, f"the method sweep made {extra} extra calls")]])


if __name__ == "__main__":
    raise SystemExit(main())
