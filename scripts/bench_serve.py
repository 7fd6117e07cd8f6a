"""`ensemble serve` under load, against a fake upstream with fixed latency.

1. Added latency: the same vote ensemble (3 members) run N times one after another, in-process through a
   ``Session`` and through the server (a real ``ensemble serve`` subprocess, over HTTP); the server's
   added latency is the difference of the medians (target p50 <= 5 ms).
2. Load: 200 concurrent requests (half streamed), each with its own question: none lost, none duplicated
   (each answer quotes its own question), and the upstream concurrency bound (``max_concurrency``) held,
   as counted by the fake server's ``max_in_flight``.

Run: .venv/bin/python scripts/bench_serve.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench  # noqa: F401  (puts tests/ and the repository on sys.path)
import httpx
import yaml
from _bench import Size, Targets, parse_args, print_table
from fake_server import FakeOpenAIServer, ReplyModel

BOUND = 8
TARGET_ADDED_MS = 5.0
SIZES = {
    "latency": Size(0.02, 0.005, "seconds the fake upstream waits per call"),
    "sequential": Size(60, 5, "requests in a row, in-process and over HTTP"),
    "concurrent": Size(200, 20, "concurrent requests of the load test (half streamed)"),
}


def config(url: str) -> dict:
    return {"strategy": "vote", "provider": "vllm", "base_url": url, "model": "echo", "temperature": 0.5,
            "max_retries": 0, "max_concurrency": BOUND, "members": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            "vote": {"extract": "text"}}


def ask(i: int, stream: bool = False) -> dict:
    return {"model": "vote", "messages": [{"role": "user", "content": f"question {i}"}], "stream": stream}


async def in_process(data: dict, count: int) -> list[float]:
    from ensemble_cli.config import RunConfig
    from ensemble_cli.inputs import PromptItem
    from ensemble_cli.calls import Message
    from ensemble_cli.providers.registry import ProviderRegistry
    from ensemble_cli.session import Session

    run = RunConfig.model_validate(data)
    registry = ProviderRegistry(run)
    times = []
    try:
        for i in range(count):
            session = Session(run, registry=registry)
            started = time.perf_counter()
            prepared = session.prepare("vote")
            outcome = await session.run(prepared, [PromptItem(f"q{i}", (Message("user", f"question {i}"),))])
            times.append(time.perf_counter() - started)
            assert outcome.ok == 1
    finally:
        await registry.aclose()
    return times


async def over_http(url: str, count: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i in range(count):
            started = time.perf_counter()
            r = await client.post("/v1/chat/completions", json=ask(i))
            times.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text
    return times


async def read_stream(client: httpx.AsyncClient, i: int) -> tuple[int, str]:
    text = []
    async with client.stream("POST", "/v1/chat/completions", json=ask(i, stream=True)) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                payload = json.loads(line[6:])
                if payload.get("error"):
                    return 502, ""
                for choice in payload["choices"]:
                    text.append(choice["delta"].get("content") or "")
    return r.status_code, "".join(text)


async def read_whole(client: httpx.AsyncClient, i: int) -> tuple[int, str]:
    r = await client.post("/v1/chat/completions", json=ask(i))
    return r.status_code, r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else ""


async def load(url: str, count: int) -> tuple[list[tuple[int, str]], float]:
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(read_stream(client, i) if i % 2 else read_whole(client, i)
                                         for i in range(count)))
        return list(results), time.perf_counter() - started


def start_server(directory: Path, port: int, queue: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "ensemble_cli", "serve", "--ensembles", str(directory),
                                "--port", str(port), "--queue", str(queue)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start: {process.stderr.read().decode()[-800:] if process.stderr else ''}")


def main() -> int:
    from serve_helpers import free_port

    args = parse_args(__doc__, SIZES)
    targets = Targets(args.quick, strict_timings=True)
    upstream = FakeOpenAIServer({"echo": ReplyModel(lambda ctx: f"Answer to {ctx.user}.")}, latency=args.latency)
    with upstream, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "vote.yaml").write_text(yaml.safe_dump(config(upstream.base_url)), encoding="utf-8")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = start_server(directory, port, args.concurrent * 2)
        try:
            asyncio.run(over_http(url, args.sequential))  # warm-up: connections, imports
            local = asyncio.run(in_process(config(upstream.base_url), args.sequential))
            served = asyncio.run(over_http(url, args.sequential))
            upstream.reset_counters()
            results, wall = asyncio.run(load(url, args.concurrent))
            in_flight = upstream.max_in_flight
            calls = upstream.calls
        finally:
            process.terminate()
            process.wait(timeout=30)
    latency_table(args, local, served, targets)
    load_table(args, results, wall, calls, in_flight, targets)
    return targets.exit_status()


def latency_table(args: argparse.Namespace, local: list[float], served: list[float], targets: Targets) -> None:
    p50_local, p50_served = statistics.median(local), statistics.median(served)
    added_ms = (p50_served - p50_local) * 1000
    print_table(f"Added latency: vote, 3 members, fake upstream {args.latency * 1000:.0f} ms, "
                f"{args.sequential} requests in a row",
                ["path", "p50 ms", "p95 ms", "ratio", "target", ""],
                [["in-process Session", f"{p50_local * 1000:.2f}", f"{p95(local) * 1000:.2f}", "1.00x", "", ""],
                 ["ensemble serve (HTTP)", f"{p50_served * 1000:.2f}", f"{p95(served) * 1000:.2f}",
                  f"{p50_served / p50_local:.2f}x", "", ""],
                 ["added by the server", f"{added_ms:.2f}", "", "", f"<= {TARGET_ADDED_MS:.0f} ms",
                  targets.timing(added_ms <= TARGET_ADDED_MS)]])


def p95(values: list[float]) -> float:
    return sorted(values)[max(int(0.95 * len(values)) - 1, 0)]


def load_table(args: argparse.Namespace, results: list[tuple[int, str]], wall: float, calls: int, in_flight: int,
               targets: Targets) -> None:
    """Every request answered once with its own answer, and the upstream bound held."""
    count = args.concurrent
    ok = [text for status, text in results if status == 200]
    expected = {f"Answer to question {i}." for i in range(count)}
    lost = len(expected - set(ok))
    duplicated = len(ok) - len(set(ok))
    streamed_ok = sum(1 for i, (status, _) in enumerate(results) if i % 2 and status == 200)
    check = targets.check
    print_table(f"Load: {count} concurrent requests (half streamed), upstream bound {BOUND}",
                ["figure", "value", "target", ""],
                [["answered 200", f"{len(ok)} ({streamed_ok} streamed)", str(count),
                  check(len(ok) == count, f"{len(ok)} of {count} requests answered 200")],
                 ["lost", str(lost), "0", check(lost == 0, f"{lost} answers lost")],
                 ["duplicated", str(duplicated), "0", check(duplicated == 0, f"{duplicated} answers duplicated")],
                 ["upstream calls", str(calls), str(count * 3),
                  check(calls == count * 3, f"{calls} upstream calls, not {count * 3}")],
                 ["upstream max in flight", str(in_flight), f"<= {BOUND}",
                  check(in_flight <= BOUND, f"{in_flight} upstream calls in flight, above the bound {BOUND}")],
                 ["wall s", f"{wall:.2f}", f">= {count * 3 * args.latency / BOUND:.2f} (bound-limited)", ""]])


if __name__ == "__main__":
    raise SystemExit(main())
