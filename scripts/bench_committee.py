"""Committee speed: embedded-model tokens/s against single greedy decoding, and remote calls per token.

Prints two tables and the ratios against the issue's targets:
- embedded SmolLM2: greedy single-member decode, committee N=1, N=20 identical, N=5 distinct members;
- fake OpenAI-compatible server with fixed latency: the naive per-token loop (each winning token
  appended as a new assistant message), the stepwise committee, and ``--draft 8``.
Run: ``.venv/bin/python scripts/bench_committee.py`` (or ``make bench``).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from _bench import Size, Targets, parse_args, print_table

from ensemble_cli.config import MemberConfig, RunConfig
from ensemble_cli.strategies.committee import CommitteeSettings
from ensemble_cli.inputs import from_prompt
from ensemble_cli.calls import Message, Request
from ensemble_cli.providers.local import LocalProvider
from ensemble_cli.providers.registry import ProviderRegistry
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.committee import Committee

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works, in detail.",
    "Describe a walk through a forest in autumn.",
]
SYSTEMS = [
    "You are a helpful assistant.", "You are a poet.", "You are a scientist.",
    "You are a sailor.", "You are a teacher.",
]
SCRIPT = "The committee agrees on every word of this fairly long answer so drafting can accept many tokens per call"
SIZES = {
    "max_tokens": Size(96, 8, "tokens per embedded reply"),
    "prompts": Size(len(PROMPTS), 1, "prompts per embedded run"),
    "rounds": Size(3, 1, "interleaved rounds of the embedded runs (medians reported)"),
    "latency": Size(0.02, 0.002, "seconds the fake server waits per call"),
    "members": Size(5, 5, "agreeing members on the fake server"),
    "remote_tokens": Size(20, 20, "tokens per fake-server reply"),
}


async def greedy_rate(provider: LocalProvider, prompts: list[str], max_tokens: int) -> float:
    tokens, seconds = 0, 0.0
    for prompt in prompts:
        provider._cache = None  # a cold start per prompt, like the committee's fresh contexts
        started = time.perf_counter()
        (c,) = await provider.complete(Request((Message("user", prompt),), max_tokens=max_tokens))
        seconds += time.perf_counter() - started
        tokens += c.usage.completion_tokens
    return tokens / seconds


async def committee_rate(members: list[Member], prompts: list[str], max_tokens: int) -> float:
    committee = Committee(members, CommitteeSettings(), max_tokens)
    tokens, seconds = 0, 0.0
    for prompt in prompts:
        started = time.perf_counter()
        result = await committee.run(from_prompt(prompt))
        seconds += time.perf_counter() - started
        tokens += result.details.summary.tokens
    return tokens / seconds


async def embedded(prompts: list[str], max_tokens: int, rounds: int, targets: Targets) -> None:
    """Each round measures every run once, interleaved, so machine noise hits all alike; medians reported."""
    provider = LocalProvider(None)
    await provider.complete(Request((Message("user", "warm up"),), max_tokens=4))
    runs = {
        "single-member greedy": None,
        "committee N=1": [Member("m", provider)],
        "committee N=20 identical": [Member(f"m{i}", provider) for i in range(20)],
        "committee N=5 distinct": [Member(f"s{i}", provider, system=s) for i, s in enumerate(SYSTEMS)],
    }
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, members in runs.items():
            rate = await (greedy_rate(provider, prompts, max_tokens) if members is None
                          else committee_rate(members, prompts, max_tokens))
            rates[name].append(rate)
    median = {name: statistics.median(values) for name, values in rates.items()}
    single = median["single-member greedy"]
    floors = {"committee N=20 identical": 0.5, "committee N=5 distinct": 0.25}
    rows = []
    for name, rate in median.items():
        ratio = rate / single
        target = floors.get(name)
        rows.append([name, f"{rate:.1f}", f"{ratio:.2f}", f">= {target:.2f}" if target else "",
                     targets.timing(ratio >= target) if target else ""])
    print_table(f"Embedded SmolLM2-135M, {max_tokens} tokens max, {len(prompts)} prompts, median of {rounds} rounds",
                ["run", "tokens/s", "vs greedy", "target", ""], rows)


async def naive_loop(members: list[Member], item, max_tokens: int) -> tuple[str, int, int]:
    """The broken baseline: each winning token appended as a new assistant message, every member asked."""
    text, calls, produced = "", 0, 0
    for _ in range(max_tokens):
        messages = item.messages + ((Message("assistant", text),) if text else ())
        request = Request(messages, max_tokens=1, top_logprobs=5)
        replies = await asyncio.gather(*(m.provider.complete(request) for m in members))
        calls += len(members)
        tokens = [r[0].tokens[0].text for r in replies if r[0].tokens]
        produced += 1
        if not tokens:
            break
        text += max(set(tokens), key=tokens.count)
    return text, calls, produced


async def remote(latency: float, n_members: int, max_tokens: int, targets: Targets) -> None:
    from fake_server import FakeOpenAIServer, ScriptedModel

    models = {f"agree{i}": ScriptedModel(SCRIPT, confidence=0.8 + 0.02 * i) for i in range(n_members)}
    with FakeOpenAIServer(models, latency=latency) as server:
        registry = ProviderRegistry(RunConfig(max_concurrency=16, max_retries=0))
        members = [
            Member(name, registry.provider_for(MemberConfig(name=name, provider="vllm", model=name, base_url=server.base_url)))
            for name in models
        ]
        item = from_prompt("Say the agreed sentence.")
        rows = []
        started = time.perf_counter()
        text, calls, produced = await naive_loop(members, item, max_tokens)
        naive_wall = time.perf_counter() - started
        naive_cpt = calls / max(produced, 1)
        rows.append(["naive per-token loop", f"{naive_cpt:.2f}", f"{naive_wall:.2f}", repr(text[:30])])
        results = {}
        for label, draft in (("committee (stepwise)", 0), ("committee --draft 8", 8)):
            committee = Committee(members, CommitteeSettings(draft=draft), max_tokens)
            started = time.perf_counter()
            result = await committee.run(item)
            wall = time.perf_counter() - started
            summary = result.details.summary
            results[draft] = summary.calls_per_token
            rows.append([label, f"{summary.calls_per_token:.2f}", f"{wall:.2f}", repr(result.output[:30])])
            targets.check(bool(result.output) and SCRIPT.startswith(result.output),
                          f"{label} wrote {result.output!r}, not the members' agreed text")
        await registry.aclose()
    ratio = naive_cpt / results[8]
    rows.append(["naive / draft 8 (target >= 3x)", f"{ratio:.1f}x", "", targets.timing(ratio >= 3)])
    print_table(f"Fake server, {latency * 1000:.0f} ms latency, {n_members} agreeing members",
                ["run", "calls/token", "wall s", "output"], rows)


def main() -> int:
    args = parse_args(__doc__, SIZES, lambda parser: parser.add_argument(
        "--skip-embedded", action="store_true", help="only the fake-server table"))
    targets = Targets(args.quick)
    if not args.skip_embedded:
        asyncio.run(embedded(PROMPTS[:args.prompts], args.max_tokens, args.rounds, targets))
    asyncio.run(remote(args.latency, args.members, args.remote_tokens, targets))
    return targets.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
