"""Adaptive compute: does stopping early, or asking a cheap model first, keep the accuracy at less cost?

A fake OpenAI-compatible server simulates a seeded world of questions of known difficulty (most easy,
some medium, a few hard; a fifth of them with a tempting distractor that wrong replies favour) and two
models: ``strong`` (priced $3 / $15 per million tokens) and ``weak`` (a twentieth of that, and less
often right). Each reply is drawn from the question, the model and the call's seed alone, so every run is
reproducible and the arms below see the same world. In one run:

- fixed self-consistency (16 samples of ``strong``) against an adaptive vote capped at 16 (the Beta
  rule at 0.95, 2 samples first, then the default step of 1; a step of 2 for comparison, which halves the
  round trips): accuracy, samples per item, their ratio. Target: adaptive within 1 point of fixed, at
  most 40% of its samples.
- a cascade (a 5-sample vote of ``weak``, accepted at a winning share of 0.8, else an 8-sample vote of
  ``strong``) against that 8-sample ``strong`` vote alone: accuracy, dollars per item, their ratio.
  Target: the cascade within 1.5 points of the strong model alone, at most 50% of its dollars.
- on the embedded model (SmolLM2-135M), adaptive voting against the fixed-budget vote on the shipped
  ``arith`` set: the share of identical answers and the samples per item, whatever the numbers are.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

from _bench import Size, Targets, parse_args, print_table

SIZES = {
    "items": Size(400, 16, "questions in the simulated world"),
    "arith": Size(12, 1, "items of the shipped arith set on the embedded model (0 skips it)"),
    "embedded_tokens": Size(48, 24, "max_tokens of the embedded model's replies"),
    "embedded_samples": Size(8, 4, "the embedded vote's samples (the adaptive vote's cap)"),
}
PRICES = {"ollama/strong": {"input": 3.0, "output": 15.0}, "ollama/weak": {"input": 0.15, "output": 0.75}}
RIGHT = {"strong": {"easy": 0.92, "medium": 0.7, "hard": 0.45}, "weak": {"easy": 0.8, "medium": 0.45, "hard": 0.2}}
MIX = (("easy", 0.7), ("medium", 0.2), ("hard", 0.1))


def question(number: int, world_seed: int = 0) -> dict[str, Any]:
    """Question ``number`` of the world: its difficulty, its answer and whether a distractor tempts."""
    rng = random.Random(f"{world_seed}:{number}")
    draw, difficulty = rng.random(), "hard"
    for name, share in MIX:
        if draw < share:
            difficulty = name
            break
        draw -= share
    return {"difficulty": difficulty, "answer": 10 + number, "distractor": rng.random() < 0.2}


def reply_for(model: str):
    """The fake model: right with its probability for the question's difficulty, else a wrong answer (the
    distractor, where there is one, two times in three)."""
    def reply(ctx) -> str:
        number = int(ctx.user.split("#")[1].split()[0])
        q = question(number)
        rng = random.Random(zlib.crc32(f"{model}:{number}:{ctx.seed}".encode()))
        if rng.random() < RIGHT[model][q["difficulty"]]:
            return f"Let me think. The answer is {q['answer']}."
        wrong = q["answer"] + 1 if q["distractor"] and rng.random() < 2 / 3 else q["answer"] + rng.randint(2, 9)
        return f"Let me think. The answer is {wrong}."

    return reply


def run(config: dict[str, Any], strategy: str, prompts) -> list[dict[str, Any]]:
    from ensemble_cli.config import RunConfig
    from ensemble_cli.session import Session
    from ensemble_cli.sinks.collect import Collector

    collector = Collector()
    Session(RunConfig.model_validate(config)).run_sync(strategy, prompts, [collector])
    return sorted(collector.records, key=lambda r: (len(r["id"]), r["id"]))


def accuracy(records: list[dict[str, Any]]) -> float:
    return sum(1 for r in records if r.get("output") == str(question(int(r["id"]))["answer"])) / len(records)


def samples_per_item(records: list[dict[str, Any]]) -> float:
    return sum(len(r["details"]["rounds"][0]["replies"]) for r in records) / len(records)


def dollars_per_item(records: list[dict[str, Any]]) -> float:
    return sum(float(r["usage"]["cost_usd"]) for r in records) / len(records)


def simulated(args, targets: Targets) -> None:
    from fake_server import FakeOpenAIServer, ReplyModel

    from ensemble_cli.inputs import PromptItem
    from ensemble_cli.calls import user_prompt

    prompts = [PromptItem(str(n), user_prompt(f"Question #{n} : what is its answer?")) for n in range(args.items)]
    with FakeOpenAIServer({"strong": ReplyModel(reply_for("strong")), "weak": ReplyModel(reply_for("weak"))}) as server:
        base = {"provider": "ollama", "base_url": server.base_url, "model": "strong", "max_retries": 0, "seed": 1,
                "cache": False, "temperature": 0.7, "parallel_prompts": 16, "max_tokens": 32, "prices": PRICES}

        def vote(**settings: Any) -> dict[str, Any]:
            return {**base, "vote": {"extract": "number", **settings}}

        fixed = run(vote(samples=16), "vote", prompts)
        rows, fixed_acc, fixed_samples = [], accuracy(fixed), samples_per_item(fixed)
        rows.append(["fixed self-consistency, 16 samples", f"{100 * fixed_acc:.1f}%", f"{fixed_samples:.2f}",
                     "1.00x", "baseline"])
        for step in (1, 2):  # the default step, with the target; then 2, which halves the round trips
            adaptive = run(vote(samples=16, adaptive=True, step=step), "vote", prompts)
            acc, drawn = accuracy(adaptive), samples_per_item(adaptive)
            ratio = drawn / fixed_samples
            verdict = (f"{targets.timing(acc >= fixed_acc - 0.01 and ratio <= 0.40)} (within 1 point, <= 0.40x)"
                       if step == 1 else "for comparison")
            rows.append([f"adaptive, cap 16, step {step}" + (" (default)" if step == 1 else ""), f"{100 * acc:.1f}%",
                         f"{drawn:.2f}", f"{ratio:.2f}x", verdict])
        print_table(f"adaptive voting: {args.items} simulated questions, model 'strong'",
                    ["run", "accuracy", "samples/item", "samples vs fixed", "target"], rows)
        cascade_rows(base, prompts, targets, args)


def cascade_rows(base: dict[str, Any], prompts, targets: Targets, args) -> None:
    from ensemble_cli.formatting import usd

    large_alone = {**base, "vote": {"extract": "number", "samples": 8}}
    small = {"strategy": "vote", "model": "weak", "vote": {"extract": "number", "samples": 5}}
    large = {"strategy": "vote", "model": "strong", "vote": {"extract": "number", "samples": 8}}
    alone = run(large_alone, "vote", prompts)
    chained = run({**base, "cascade": {"tiers": [small, large], "accept": 0.8, "extract": "number"}}, "cascade", prompts)
    alone_acc, alone_usd = accuracy(alone), dollars_per_item(alone)
    acc, usd_per = accuracy(chained), dollars_per_item(chained)
    ratio = usd_per / alone_usd
    first = sum(1 for r in chained if r["details"]["answered_by"] == 1) / len(chained)
    verdict = targets.timing(acc >= alone_acc - 0.015 and ratio <= 0.5)
    print_table(f"cascade: {args.items} simulated questions, weak (5 samples) then strong (8 samples)",
                ["run", "accuracy", "$/item", "$ vs strong alone", "answered by tier 1", "target"],
                [["strong alone, 8 samples", f"{100 * alone_acc:.1f}%", usd(alone_usd), "1.00x", "", "baseline"],
                 ["cascade, accept 0.8", f"{100 * acc:.1f}%", usd(usd_per), f"{ratio:.2f}x", f"{100 * first:.0f}%",
                  f"{verdict} (within 1.5 points, <= 0.50x)"]])


def winner(record: dict[str, Any]) -> Any:
    """The answer a vote chose (its output is the winning reply in its own words, which may differ)."""
    return (record.get("details") or {}).get("winner")


def embedded(args) -> None:
    from ensemble_cli.bench.datasets import load_dataset
    from ensemble_cli.providers.llama_engine import embedded_model_path

    try:
        embedded_model_path()
    except Exception as exc:  # the embedded model is optional: say why the rows are missing
        print(f"\nembedded model: skipped ({exc})")
        return
    items = load_dataset("arith").items[: args.arith]
    prompts = [item.prompt_item() for item in items]
    base = {"provider": "local", "seed": 7, "temperature": 0.7, "max_tokens": args.embedded_tokens, "cache": False}
    cap = args.embedded_samples
    fixed = run({**base, "vote": {"extract": "number", "samples": cap}}, "vote", prompts)
    adaptive = run({**base, "vote": {"extract": "number", "samples": cap, "adaptive": True}}, "vote", prompts)
    by_id = {r["id"]: r for r in fixed}
    same = sum(1 for r in adaptive if winner(r) == winner(by_id[r["id"]])) / len(adaptive)
    golds = {item.id: item.answer for item in items}

    def right(records):
        return sum(1 for r in records if str(r.get("output")) == golds[r["id"]])

    print_table(f"embedded SmolLM2-135M, arith set ({len(items)} items), cap {cap}",
                ["run", "samples/item", "right", "answers identical to fixed"],
                [[f"fixed, {cap} samples", f"{samples_per_item(fixed):.2f}", f"{right(fixed)}/{len(items)}", ""],
                 ["adaptive (0.95, 2 then 1 at a time)", f"{samples_per_item(adaptive):.2f}", f"{right(adaptive)}/{len(items)}",
                  f"{100 * same:.0f}%"]])


def main() -> int:
    args = parse_args(__doc__, SIZES)
    targets = Targets(args.quick, strict_timings=True)  # a missed saving fails a full run, never a quick one
    simulated(args, targets)
    if args.arith:
        embedded(args)
    return targets.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
