"""`--dry-run`: every strategy command and `bench` check the run, make no call, and print what it would call
and cost at worst (the prompt counted by the model's tokenizer where one is at hand), what the cache holds
and whether the budget would stop it."""

from __future__ import annotations

import json

import pytest
from fake_server import ReplyModel
from typer.testing import CliRunner

from ensemble_cli import catalog
from ensemble_cli.cli import app


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def remote(server, *more):
    return ["--provider", "ollama", "--base-url", server.base_url, "--max-retries", "0", *more]


@pytest.fixture
def server(fake_server):
    return fake_server({"a": ReplyModel(lambda ctx: "The answer is 4."), "b": ReplyModel(lambda ctx: "It is 4.")})


def plan_of(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


PRICES = 'prices:\n  "ollama/a": {input: 1.0, output: 2.0}\n  "ollama/b": {input: 3.0, output: 4.0}\n'


def test_a_vote_dry_run_counts_every_sample_prices_it_and_calls_nothing(server, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(PRICES + "members: [ollama/a, ollama/b]\n")
    plan = plan_of(invoke("vote", "-c", config, *remote(server), "-p", "2 + 2?", "--samples", "3", "--rounds", "2",
                          "--max-tokens", "10", "--seed", "1", "-t", "0.7", "--dry-run", "-o", "-"))
    assert server.calls == 0
    assert plan["calls"] == 3 * 2 * 2 and plan["calls_per_prompt"] == 12  # ollama ignores n: a call per sample
    assert plan["completion_tokens"] == 12 * 10
    by_member = {}
    for line in plan["lines"]:
        by_member.setdefault(line["member"], []).append(line)
    a_prompt = sum(line["prompt_tokens"] for line in by_member["a"])
    a_completion = sum(line["completion_tokens"] for line in by_member["a"])
    b_prompt = sum(line["prompt_tokens"] for line in by_member["b"])
    b_completion = sum(line["completion_tokens"] for line in by_member["b"])
    expected = (a_prompt * 1.0 + a_completion * 2.0 + b_prompt * 3.0 + b_completion * 4.0) / 1e6
    assert plan["cost_usd"] == pytest.approx(expected)
    assert plan["known_calls"] == 6 and plan["cached_calls"] == 0  # round 1 is known before any reply
    assert not plan["prompt_tokens_counted"]  # a remote tokenizer is not at hand: estimated


def test_the_cache_count_is_what_a_real_run_left(server, tmp_path):
    args = ["vote", *remote(server, "--model", "a"), "-p", "2 + 2?", "--samples", "2", "-t", "0.7", "--seed", "3",
            "--cache-dir", tmp_path / "cache"]
    assert invoke(*args, "-q").exit_code == 0
    made = server.calls
    plan = plan_of(invoke(*args, "--dry-run", "-o", "-"))
    assert plan["cached_calls"] == plan["known_calls"] == 2 and server.calls == made


def test_an_unpriced_model_is_unknown_never_free(server):
    result = invoke("vote", *remote(server, "--model", "a"), "-p", "2 + 2?", "--dry-run")
    assert result.exit_code == 0 and server.calls == 0
    assert "cost: unknown at worst (a member's model has no price)" in result.stdout
    assert plan_of(invoke("vote", *remote(server, "--model", "a"), "-p", "2 + 2?", "--dry-run", "-o", "-"))[
        "cost_usd"] is None


def test_the_plan_says_whether_the_budget_would_stop_the_run(server, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(PRICES)
    base = ["vote", "-c", config, *remote(server, "--model", "a"), "-p", "2 + 2?", "--samples", "4", "--dry-run"]
    tight = invoke(*base, "--budget", "0.000001")
    assert tight.exit_code == 0 and "the worst case passes it" in tight.stdout
    roomy = invoke(*base, "--budget", "10")
    assert roomy.exit_code == 0 and "the worst case fits" in roomy.stdout


def test_moa_counts_layers_and_the_aggregator(server):
    plan = plan_of(invoke("moa", *remote(server, "--model", "a"), "-n", "3", "--layers", "2", "-p", "Name a colour.",
                          "--dry-run", "-o", "-"))
    assert plan["calls"] == 3 * 2 + 1
    assert {line["what"] for line in plan["lines"]} == {"layer 1", "layer 2", "aggregator"}


def test_remote_decoding_strategies_are_bounded_by_their_branches_and_tokens(fake_server):
    from fake_server import ScriptedModel

    server = fake_server({"t": ScriptedModel("The answer is 4.")})
    flags = ["--provider", "vllm", "--model", "t", "--base-url", server.base_url, "--max-retries", "0"]
    cot = plan_of(invoke("cot-decode", *flags, "-p", "2 + 2?", "--k", "3", "--max-tokens", "8", "--dry-run",
                         "-o", "-"))
    assert cot["calls"] == 1 + 3 + 3
    committee = plan_of(invoke("committee", *flags, "-n", "2", "-t", "0.5", "-p", "hi", "--max-tokens", "6",
                               "--dry-run", "-o", "-"))
    assert committee["calls"] == 2 * 6
    assert server.calls == 0


@pytest.mark.parametrize("strategy", [s.name for s in catalog.specs()])
def test_every_strategy_command_has_a_dry_run(strategy):
    result = invoke(strategy, "--help", env={"COLUMNS": "200"})
    assert "--dry-run" in result.output


def test_a_dry_run_fails_as_the_real_run_would(server, tmp_path):
    no_key = invoke("vote", "--member", "openai/gpt-4o-mini", "-p", "hi", "--dry-run", env={"OPENAI_API_KEY": ""})
    assert no_key.exit_code == 3 and "OPENAI_API_KEY" in no_key.stderr
    bad = invoke("vote", *remote(server, "--model", "a"), "-p", "hi", "--samples", "0", "--dry-run")
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_bench_dry_run_plans_every_arm_and_calls_nothing(server, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"{i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(3)))
    bench = tmp_path / "bench.yaml"
    bench.write_text(f"provider: ollama\nbase_url: {server.base_url}\nmodel: a\nmax_retries: 0\n{PRICES}arms:\n"
                     "  - {name: sc, strategy: vote, temperature: 0.7, vote: {samples: 3}}\n"
                     "  - {name: sc-w, strategy: vote, temperature: 0.7, vote: {samples: 3, method: weighted}}\n")
    result = invoke("bench", "--dataset", data, "-c", bench, "--dry-run", "-o", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert server.calls == 0 and not (tmp_path / "run").exists()
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│")}
    assert set(rows) == {"single", "sc", "sc-w"}
    assert "recounts sc: no call" in rows["sc-w"] and "│ 9 " in rows["sc"] and "│ 3 " in rows["single"]
    assert "12 calls at most" in result.stdout
    plan = plan_of(invoke("bench", "--dataset", data, "-c", bench, "--dry-run", "-o", "-"))
    arms = {arm["arm"]: arm for arm in plan["arms"]}
    assert set(arms) == {"single", "sc", "sc-w"} and plan["calls"] == 12 and server.calls == 0
    assert arms["sc"]["calls"] == 9 and arms["sc-w"]["recount_of"] == "sc"
    assert plan["cost_usd"] == pytest.approx(sum(arm.get("cost_usd") or 0 for arm in plan["arms"]))


@pytest.mark.embedded
def test_the_embedded_model_counts_its_prompt_with_its_own_tokenizer():
    plan = plan_of(invoke("vote", "-p", "What is 2 + 2?", "--samples", "4", "-t", "0.7", "--dry-run", "-o", "-"))
    assert plan["prompt_tokens_counted"] and plan["cost_usd"] == 0.0 and plan["calls"] == 1
    assert plan["completion_tokens"] == 4 * 256


def test_a_cascade_plans_every_tier_at_worst(server):
    plan = plan_of(invoke("cascade", *remote(server, "--model", "a"), "-p", "2 + 2?", "--extract", "number",
                          "--tier", "{strategy: vote, vote: {samples: 2}}",
                          "--tier", "{strategy: vote, model: b, vote: {samples: 3}}", "-t", "0.7", "--seed", "1",
                          "--dry-run", "-o", "-"))
    assert plan["calls"] == 2 + 3 and server.calls == 0
    assert {line["what"] for line in plan["lines"]} == {"tier 1: round 1 samples", "tier 2: round 1 samples"}


@pytest.mark.parametrize("samples", ["1", "3"])
def test_identical_greedy_copies_are_planned_as_the_one_call_a_run_makes(server, samples):
    args = ["vote", *remote(server, "--model", "a"), "-p", "2 + 2?", "--member", "x=ollama/a*3", "--samples", samples,
            "--max-tokens", "10", "--no-cache"]
    plan = plan_of(invoke(*args, "--dry-run", "-o", "-"))
    assert server.calls == 0
    real = invoke(*args, "-o", "-")
    assert real.exit_code == 0, real.output
    assert plan["calls"] == server.calls == 1
    assert plan["completion_tokens"] == 10


def test_the_plans_notes_name_flags_and_reach_stderr_in_table_form(server):
    args = ["vote", *remote(server, "--model", "a"), "-p", "2 + 2?", "--member", "x=ollama/a*2", "--dry-run"]
    table = invoke(*args)
    assert table.exit_code == 0, table.output
    assert "note" in table.stderr and "--temperature" in table.stderr and "dry run" in table.stdout
    plan = plan_of(invoke(*args, "-o", "-"))
    assert plan["notes"] and all("\u27e6" not in note for note in plan["notes"])
    assert any("--temperature" in note for note in plan["notes"])
    assert "note" not in invoke(*args, "-q").stderr
