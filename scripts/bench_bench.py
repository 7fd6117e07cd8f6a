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

import asyncio
import tempfile
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from _bench import print_table, verdict

from fake_server import FakeOpenAIServer, ReplyModel

from ensemble_cli.bench.arms import load_plan
from ensemble_cli.bench.datasets import BenchItem, Dataset
from ensemble_cli.bench.runner import read_records, run_bench
from ensemble_cli.providers.base import Message

ITEMS = 200
LATENCY = 0.05
CONCURRENCY = 64

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


def dataset() -> Dataset:
    items = [BenchItem(f"q{i}", (Message("user", f"What is {i} + 1?"),), str(i + 1)) for i in range(ITEMS)]
    return Dataset("toy", items, "jsonl")


def ignore_progress(name: str, total: int, done: int):
    return lambda event: None


def run(server: FakeOpenAIServer, arms: str, folder: Path, name: str, cache: str) -> tuple[float, int]:
    """One bench run into ``folder/name`` with the call cache in ``folder/cache``; its wall time and calls."""
    config = folder / f"{name}.yaml"
    config.write_text(f"provider: vllm\nmodel: toy\nbase_url: {server.base_url}\nmax_retries: 0\nseed: 1\n"
                      f"max_concurrency: {CONCURRENCY}\nparallel_prompts: {CONCURRENCY}\nmax_tokens: 16\n"
                      f"cache_dir: {folder / 'caches' / cache}\narms:{arms}")
    plan = load_plan(config, "number")
    data = dataset()
    before = server.calls
    started = time.perf_counter()
    asyncio.run(run_bench(plan, data, data.items, folder / name, False, ignore_progress))
    wall = time.perf_counter() - started
    failed = sum(1 for path in (folder / name / "records").glob("*.jsonl")
                 for record in read_records(path).values() if record.get("status") != "ok")
    if failed:
        print(f"warning: {name}: {failed} record(s) failed")
    return wall, server.calls - before


def main() -> None:
    ThreadingHTTPServer.request_queue_size = 256  # the default backlog of 5 refuses connections at 64 in flight
    model = ReplyModel(lambda ctx: f"The answer is {ctx.call_index % 7}.")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with FakeOpenAIServer({"toy": model}) as instant:
            floor, _ = run(instant, ARMS, folder, "no-latency", "floor")
        with FakeOpenAIServer({"toy": model}, latency=LATENCY) as server:
            measure(server, folder, floor)


def measure(server: FakeOpenAIServer, folder: Path, floor: float) -> None:
    wall, calls = run(server, ARMS, folder, "first", "shared")
    depth = 2  # moa-lite: the proposers, then the aggregator
    path = max(depth * LATENCY, calls * LATENCY / CONCURRENCY)
    bound = max(path, floor)
    print_table(f"bench: {ITEMS} items x 4 arms, {LATENCY * 1000:.0f} ms per call, at most {CONCURRENCY} calls "
                "in flight", ["run", "calls", "wall s", "critical path s", "CPU floor s", "wall / max(path, floor)",
                              "target", ""],
                [["first run", calls, f"{wall:.2f}", f"{path:.2f}", f"{floor:.2f}", f"{wall / bound:.2f}x",
                  "<= 1.5x", verdict(wall <= 1.5 * bound)]])
    print("critical path: the larger of the deepest chain of dependent calls x latency and calls x latency / "
          "concurrency bound;\nCPU floor: the same run against the server with no latency (client, server and "
          "JSON in one process).")
    _, again = run(server, ARMS, folder, "second", "shared")
    print_table("a second identical run (new run directory, the same call cache)", ["calls", "target", ""],
                [[again, 0, verdict(again == 0)]])
    _, one = run(server, SWEEP.split("  - name: vote-weighted")[0], folder, "one-method", "fresh-one")
    _, sweep = run(server, SWEEP, folder, "sweep", "fresh-sweep")
    print_table("vote-method sweep: majority, weighted, confidence on the same samples (empty caches)",
                ["calls, one method", "calls, three methods", "extra calls", "target", ""],
                [[one, sweep, sweep - one, 0, verdict(sweep - one == 0)]])


if __name__ == "__main__":
    main()
