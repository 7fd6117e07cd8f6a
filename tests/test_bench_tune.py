"""`ensemble bench tune`: settings replayed from a bench's records (adaptive stops, cascades, fitted
weights), chosen on tuning items, reported on held-out ones, written as a run config; zero calls."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import yaml
from fake_server import ReplyModel
from typer.testing import CliRunner

from ensemble_cli.bench import replay
from ensemble_cli.bench.tune import split
from ensemble_cli.cli import app


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def number(ctx) -> int:
    return int(ctx.user.split("#")[1].split()[0])


def small(ctx):
    """Right on easy items (not a multiple of 3); on hard ones right for 2 seeds in 5."""
    n = number(ctx)
    if n % 3 or zlib.crc32(f"{n}:{ctx.seed}".encode()) % 5 < 2:
        return f"The answer is {2 * n}."
    return f"The answer is {2 * n + 1}."


def large(ctx):
    return f"The answer is {2 * number(ctx)}."


ITEMS = 24
DATA = "".join(json.dumps({"id": f"q{i}", "prompt": f"Question #{i} : double it", "answer": str(2 * i)}) + "\n"
               for i in range(1, ITEMS + 1))


def bench_config(server) -> str:
    """ollama makes one call per sample, each with its own seed: the world's replies are seeded, not ordered."""
    return f"""provider: ollama
base_url: {server.base_url}
model: small
max_retries: 0
seed: 1
cache: false
prices:
  "ollama/small": {{input: 0.1, output: 0.4}}
  "ollama/large": {{input: 3.0, output: 15.0}}
arms:
  - name: small-sc
    strategy: vote
    temperature: 0.7
    vote: {{samples: 8}}
  - name: large-sc
    strategy: vote
    model: large
    temperature: 0.7
    vote: {{samples: 4}}
  - name: pair
    strategy: vote
    temperature: 0.7
    members: [{{name: s, model: small}}, {{name: l, model: large}}]
    vote: {{samples: 3}}
"""


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    from fake_server import FakeOpenAIServer

    root = tmp_path_factory.mktemp("tune")
    (root / "data.jsonl").write_text(DATA)
    with FakeOpenAIServer({"small": ReplyModel(small), "large": ReplyModel(large)}) as server:
        (root / "bench.yaml").write_text(bench_config(server))
        ran = invoke("bench", "--dataset", root / "data.jsonl", "-c", root / "bench.yaml", "-o", root / "run", "-q")
        assert ran.exit_code == 0, ran.stderr
        yield root, server


def test_the_split_is_seeded_disjoint_and_whole():
    ids = [f"q{i}" for i in range(10)]
    tune, held = split(ids, 0.3, seed=4)
    assert (tune, held) == split(ids, 0.3, seed=4) and sorted(tune + held) == sorted(ids)
    assert len(held) == 3 and not set(tune) & set(held)
    assert split(ids, 0.3, seed=5) != (tune, held)
    assert split(ids, 0.0, seed=4) == (sorted(ids), [])


def test_tune_chooses_the_cheapest_setting_that_keeps_the_accuracy_with_no_call(bench_run):
    root, server = bench_run
    calls = server.calls
    tuned = invoke("bench", "tune", root / "run", "--holdout", "0.25", "--seed", "3", "-o", root / "tuned.yaml")
    assert tuned.exit_code == 0, tuned.stderr
    assert server.calls == calls  # replayed from the records
    result = json.loads((root / "run" / "tune.json").read_text())
    settings = {s["name"]: s for s in result["settings"]}
    assert {"arm", "adaptive", "tiers", "weights"} <= {s["kind"] for s in result["settings"]}
    reference = settings[result["reference"]]
    assert reference["accuracy"] == max(s["accuracy"] for s in settings.values() if s["kind"] == "arm")
    chosen = settings[result["chosen"]["name"]]
    keeping = [s for s in settings.values() if s["accuracy"] >= reference["accuracy"]]
    assert chosen["accuracy"] >= reference["accuracy"] and chosen["keeps_accuracy"]
    assert chosen["cost_per_item_usd"] == min(s["cost_per_item_usd"] for s in keeping)
    assert chosen["cost_per_item_usd"] < reference["cost_per_item_usd"]  # this world has cheaper ways to be right
    assert len(result["held_out_items"]) == 6 and not set(result["held_out_items"]) & set(result["tune_items"])
    held = {entry["name"]: entry for entry in result["held_out"]}
    assert set(held) >= {"single", "small-sc", "large-sc", "pair", chosen["name"]}
    assert all(entry["items"] == 6 for entry in held.values())
    assert "vs_reference" in held[chosen["name"]] and "vs_reference" not in held[result["reference"]]
    assert "(chosen" in tuned.stderr and "held out" in tuned.stderr and "replayed from the records, 0 calls" in tuned.stderr
    assert (root / "run" / "tune.md").read_text().count("|") > 20 and (root / "run" / "tune.png").stat().st_size > 1000


def test_an_adaptive_replay_costs_what_its_draws_cost(bench_run):
    root, _ = bench_run
    result = json.loads((root / "run" / "tune.json").read_text())
    settings = {s["name"]: s for s in result["settings"]}
    large, early = settings["large-sc"], settings["large-sc@adaptive:0.85"]
    assert early["accuracy"] == large["accuracy"] == 1.0
    assert early["cost_per_item_usd"] == pytest.approx(large["cost_per_item_usd"] / 2)  # stops at 2 of 4


def test_the_cascade_replay_escalates_below_accept_and_pays_both_tiers():
    def record(correct, confidence_replies, cost):
        replies = [{"member": "m", "sample": i, "answer": a} for i, a in enumerate(confidence_replies)]
        return {"strategy": "vote", "status": "ok", "score": {"correct": correct},
                "usage": {"cost_usd": cost, "prompt_tokens": 1, "completion_tokens": 1},
                "details": {"winner": "1", "rounds": [{"replies": replies}]}}

    first = {"a": record(True, ["1", "1", "1", "1"], 0.01), "b": record(False, ["1", "1", "2", "3"], 0.01)}
    then = {"a": record(True, ["1"] * 2, 1.0), "b": record(True, ["1"] * 2, 1.0)}
    setting = replay.cascade("cheap", first, "big", then, accept=0.75)
    assert setting.outcomes["a"] == replay.Outcome(True, 0.01, 2.0, tier=1)
    assert setting.outcomes["b"] == replay.Outcome(True, pytest.approx(1.01), 4.0, tier=2)


def test_fitted_weights_follow_each_members_accuracy_and_keep_a_floor(bench_run):
    root, _ = bench_run
    from ensemble_cli.bench.runner import read_records

    records = read_records(root / "run" / "records" / "pair.jsonl")
    weights = replay.fitted_weights(records, "number", list(records))
    assert weights["l"] > weights["s"] >= replay.MIN_WEIGHT


def test_the_tuned_config_runs_as_it_is(bench_run, tmp_path):
    root, server = bench_run
    config = yaml.safe_load((root / "tuned.yaml").read_text())
    strategy = config["strategy"]
    (tmp_path / "q.jsonl").write_text(json.dumps({"id": "q3", "prompt": "Question #3 : double it"}) + "\n")
    ran = invoke(strategy, "-c", root / "tuned.yaml", "-i", tmp_path / "q.jsonl", "-o", tmp_path / "out.jsonl", "-q")
    assert ran.exit_code == 0, ran.stderr
    record = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok" and record["output"] == "6"


def test_bench_report_says_what_an_adaptive_arm_saved(tmp_path, fake_server):
    server = fake_server({"large": ReplyModel(large)})
    (tmp_path / "data.jsonl").write_text(DATA)
    (tmp_path / "bench.yaml").write_text(f"""provider: ollama
base_url: {server.base_url}
model: large
max_retries: 0
seed: 1
cache: false
arms:
  - name: adaptive
    strategy: vote
    temperature: 0.7
    vote: {{samples: 8, adaptive: true}}
""")
    ran = invoke("bench", "--dataset", tmp_path / "data.jsonl", "-c", tmp_path / "bench.yaml", "-o", tmp_path / "run",
                 "--limit", "3")
    assert ran.exit_code == 0, ran.stderr
    arm = next(a for a in json.loads((tmp_path / "run" / "summary.json").read_text())["arms"] if a["name"] == "adaptive")
    totals = arm["totals"]
    assert totals["samples_per_item"] == 4 and totals["sample_cap_per_item"] == 8 and totals["sample_saving"] == 0.5
    assert "adaptive: 4.0 samples per prompt of a cap of 8 (50% saved)" in (tmp_path / "run" / "report.md").read_text()
    assert "50% saved" in ran.stderr


def test_tune_refuses_what_it_cannot_read(tmp_path, bench_run):
    root, _ = bench_run
    missing = invoke("bench", "tune", tmp_path)
    assert missing.exit_code == 2 and "not a bench run directory" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    unknown = invoke("bench", "tune", root / "run", "--target", "nosuch", "-o", tmp_path / "t.yaml")
    assert unknown.exit_code == 2 and "--target: no arm 'nosuch'" in unknown.stderr and "large-sc" in unknown.stderr


def test_an_older_run_without_arm_configs_is_tuned_but_not_written(tmp_path, bench_run):
    root, _ = bench_run
    import shutil

    copy = Path(shutil.copytree(root / "run", tmp_path / "old"))
    meta = json.loads((copy / "run.json").read_text())
    for arm in meta["arms"]:
        arm.pop("config", None)
    (copy / "run.json").write_text(json.dumps(meta))
    refused = invoke("bench", "tune", copy, "-o", tmp_path / "t.yaml")
    assert refused.exit_code == 2 and "run the bench again" in refused.stderr
