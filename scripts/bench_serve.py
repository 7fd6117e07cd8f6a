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
from _bench import print_table, verdict
from fake_server import FakeOpenAIServer, ReplyModel

LATENCY = 0.02
SEQUENTIAL = 60
CONCURRENT = 200
BOUND = 8
TARGET_ADDED_MS = 5.0


def config(url: str) -> dict:
    return {"strategy": "vote", "provider": "vllm", "base_url": url, "model": "echo", "temperature": 0.5,
            "max_retries": 0, "max_concurrency": BOUND, "members": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            "vote": {"extract": "text"}}


def ask(i: int, stream: bool = False) -> dict:
    return {"model": "vote", "messages": [{"role": "user", "content": f"question {i}"}], "stream": stream}


async def in_process(data: dict) -> list[float]:
    from ensemble_cli.config import RunConfig
    from ensemble_cli.inputs import PromptItem
    from ensemble_cli.providers.base import Message
    from ensemble_cli.providers.registry import ProviderRegistry
    from ensemble_cli.session import Session

    run = RunConfig.model_validate(data)
    registry = ProviderRegistry(run)
    times = []
    try:
        for i in range(SEQUENTIAL):
            session = Session(run, registry=registry)
            started = time.perf_counter()
            prepared = session.prepare("vote")
            outcome = await session.run(prepared, [PromptItem(f"q{i}", (Message("user", f"question {i}"),))])
            times.append(time.perf_counter() - started)
            assert outcome.ok == 1
    finally:
        await registry.aclose()
    return times


async def over_http(url: str) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i in range(SEQUENTIAL):
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


async def load(url: str) -> tuple[list[tuple[int, str]], float]:
    limits = httpx.Limits(max_connections=CONCURRENT + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(read_stream(client, i) if i % 2 else read_whole(client, i)
                                         for i in range(CONCURRENT)))
        return list(results), time.perf_counter() - started


def start_server(directory: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "ensemble_cli", "serve", "--ensembles", str(directory),
                                "--port", str(port), "--queue", str(CONCURRENT * 2)], stderr=subprocess.PIPE)
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

    upstream = FakeOpenAIServer({"echo": ReplyModel(lambda ctx: f"Answer to {ctx.user}.")}, latency=LATENCY)
    with upstream, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "vote.yaml").write_text(yaml.safe_dump(config(upstream.base_url)), encoding="utf-8")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = start_server(directory, port)
        try:
            asyncio.run(over_http(url))  # warm-up: connections, imports
            local = asyncio.run(in_process(config(upstream.base_url)))
            served = asyncio.run(over_http(url))
            upstream.reset_counters()
            results, wall = asyncio.run(load(url))
            in_flight = upstream.max_in_flight
            calls = upstream.calls
        finally:
            process.terminate()
            process.wait(timeout=30)

    p50_local, p50_served = statistics.median(local), statistics.median(served)
    p95 = lambda xs: sorted(xs)[int(0.95 * len(xs)) - 1]  # noqa: E731
    added_ms = (p50_served - p50_local) * 1000
    print_table(f"Added latency: vote, 3 members, fake upstream {LATENCY * 1000:.0f} ms, {SEQUENTIAL} requests in a row",
                ["path", "p50 ms", "p95 ms", "ratio", "target", ""],
                [["in-process Session", f"{p50_local * 1000:.2f}", f"{p95(local) * 1000:.2f}", "1.00x", "", ""],
                 ["ensemble serve (HTTP)", f"{p50_served * 1000:.2f}", f"{p95(served) * 1000:.2f}",
                  f"{p50_served / p50_local:.2f}x", "", ""],
                 ["added by the server", f"{added_ms:.2f}", "", "", f"<= {TARGET_ADDED_MS:.0f} ms",
                  verdict(added_ms <= TARGET_ADDED_MS)]])

    ok = [text for status, text in results if status == 200]
    expected = {f"Answer to question {i}." for i in range(CONCURRENT)}
    lost = len(expected - set(ok))
    duplicated = len(ok) - len(set(ok))
    streamed_ok = sum(1 for i, (status, _) in enumerate(results) if i % 2 and status == 200)
    print_table(f"Load: {CONCURRENT} concurrent requests (half streamed), upstream bound {BOUND}",
                ["figure", "value", "target", ""],
                [["answered 200", f"{len(ok)} ({streamed_ok} streamed)", str(CONCURRENT), verdict(len(ok) == CONCURRENT)],
                 ["lost", str(lost), "0", verdict(lost == 0)],
                 ["duplicated", str(duplicated), "0", verdict(duplicated == 0)],
                 ["upstream calls", str(calls), str(CONCURRENT * 3), verdict(calls == CONCURRENT * 3)],
                 ["upstream max in flight", str(in_flight), f"<= {BOUND}", verdict(in_flight <= BOUND)],
                 ["wall s", f"{wall:.2f}", f">= {CONCURRENT * 3 * LATENCY / BOUND:.2f} (bound-limited)", ""]])
    passed = added_ms <= TARGET_ADDED_MS and lost == 0 and duplicated == 0 and in_flight <= BOUND and len(ok) == CONCURRENT
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
