"""Adaptive voting: the Beta stop rule, round-robin draws with fixed seeds, and the offline replay of a
fixed-budget vote (``restop_record``) that must stop where the live adaptive vote stopped."""

from __future__ import annotations

import json
import random

import pytest
from fake_server import ReplyModel
from scripted import ScriptedProvider
from typer.testing import CliRunner

import ensemble_cli
from ensemble_cli.cli import app
from ensemble_cli.errors import ConfigError, InputError
from ensemble_cli.providers.base import Capabilities
from ensemble_cli.strategies.vote_recount import restop_record, revote_record
from ensemble_cli.strategies.vote_stopping import posterior, schedule

ONE_AT_A_TIME = Capabilities(max_top_logprobs=5, prefix_continuation=True, honours_n=False)


def answering(choose):
    """A scripted reply per seed: ``choose(seed)`` is the number the reply ends with."""
    return lambda request: f"Working it out. The answer is {choose(request.seed)}."


def test_the_posterior_is_the_beta_rule_of_adaptive_consistency():
    assert posterior(2, 0) == pytest.approx(0.875)  # 1 - 0.5 ** 3
    assert posterior(4, 0) == pytest.approx(1 - 0.5 ** 5)
    assert posterior(3, 3) == pytest.approx(0.5)
    assert posterior(6, 1) > 0.95 > posterior(5, 1)


def test_the_schedule_draws_min_samples_then_steps_to_the_cap():
    assert list(schedule(16, 2, 2)) == [2, 4, 6, 8, 10, 12, 14, 16]
    assert list(schedule(5, 2, 2)) == [2, 4, 5]
    assert list(schedule(3, 4, 1)) == [3]


def test_unanimous_samples_settle_early_and_make_only_those_calls():
    provider = ScriptedProvider(default=answering(lambda seed: 42), capabilities=ONE_AT_A_TIME)
    result = ensemble_cli.vote("q?", provider, samples=16, extract="number", adaptive=True, temperature=0.7, seed=3)
    stopping = result.details["stopping"]
    assert result.output == "42"
    assert stopping["reason"] == "settled" and stopping["drawn"] == 4 and stopping["cap"] == 16
    assert [s["samples"] for s in stopping["steps"]] == [2, 3, 4]
    assert stopping["posterior"] == pytest.approx(1 - 0.5 ** 5, abs=1e-6) and stopping["posterior"] >= 0.95
    assert len(provider.requests) == 4 and result.usage["calls"] == 4
    assert result.details["samples_drawn"] == 4 and len(result.details["rounds"][0]["replies"]) == 4


def test_a_split_runs_to_the_cap():
    provider = ScriptedProvider(default=answering(lambda seed: 1 + seed % 2), capabilities=ONE_AT_A_TIME)
    result = ensemble_cli.vote("q?", provider, samples=8, extract="number", adaptive=True, temperature=0.7, seed=0)
    stopping = result.details["stopping"]
    assert stopping["reason"] == "cap" and stopping["drawn"] == 8 and len(provider.requests) == 8
    assert stopping["posterior"] < 0.95


def test_a_step_of_a_provider_that_honours_n_is_one_call_per_member():
    provider = ScriptedProvider(default=answering(lambda seed: 7))
    result = ensemble_cli.vote("q?", provider, samples=16, extract="number", adaptive=True, step=2, temperature=0.7,
                               seed=3)
    assert result.details["stopping"]["drawn"] == 4
    assert [request.n for request in provider.requests] == [2, 2]
    assert provider.requests[1].seed == provider.requests[0].seed + 2  # choice j has the seed of sample j


def seeds_by_slot(result):
    return {(r["member"], r["sample"]): r["seed"] for r in result.details["rounds"][0]["replies"]}


def test_members_take_turns_and_each_sample_keeps_its_fixed_budget_seed():
    def run(adaptive):
        provider = ScriptedProvider(default=answering(lambda seed: 5), capabilities=ONE_AT_A_TIME)
        return ensemble_cli.vote("q?", provider, samples=4, n=3, extract="number", adaptive=adaptive,
                                 temperature=0.7, seed=11)

    adaptive, fixed = run(True), run(False)
    replies = adaptive.details["rounds"][0]["replies"]
    assert [(r["member"], r["sample"]) for r in replies] == [("m#1", 0), ("m#2", 0), ("m#3", 0), ("m#1", 1)]
    fixed_seeds = seeds_by_slot(fixed)
    assert all(fixed_seeds[slot] == seed for slot, seed in seeds_by_slot(adaptive).items())


def test_a_seeded_adaptive_vote_is_reproducible():
    def run(seed):
        rng_answers = {s: random.Random(s).choice([3, 3, 3, 4]) for s in range(2000)}
        provider = ScriptedProvider(default=answering(rng_answers.__getitem__), capabilities=ONE_AT_A_TIME)
        return ensemble_cli.vote("q?", provider, samples=12, extract="number", adaptive=True, temperature=0.7,
                                 seed=seed).details

    assert run(5) == run(5)


def test_weighted_counts_are_scaled_to_the_number_of_votes():
    """Heavy weights say who counts more, not that there is more evidence: the posterior stays the counts'."""
    provider = ScriptedProvider(default=answering(lambda seed: 9), capabilities=ONE_AT_A_TIME)
    members = [{"name": "a", "weight": 5.0}, {"name": "b", "weight": 5.0}]
    result = ensemble_cli.vote("q?", provider, samples=8, members=members, method="weighted", extract="number",
                               adaptive=True, temperature=0.7, seed=1)
    assert result.details["stopping"]["drawn"] == 4


@pytest.mark.parametrize("settings", [{"method": "borda"}, {"method": "irv"}, {"method": "usc"},
                                      {"extract": "judge"}])
def test_methods_that_need_a_call_per_count_are_refused_before_any_call(settings):
    provider = ScriptedProvider(default=answering(lambda seed: 1))
    judge = {"judge": {"name": "j"}} if settings.get("method") == "usc" or settings.get("extract") == "judge" else {}
    with pytest.raises(ConfigError, match="vote.adaptive"):
        ensemble_cli.vote("q?", provider, samples=4, adaptive=True, **{"extract": "number", **settings, **judge})
    assert provider.requests == []


def test_each_debate_round_samples_adaptively():
    provider = ScriptedProvider(default=answering(lambda seed: 1 + (seed or 0) % 2), capabilities=ONE_AT_A_TIME)
    result = ensemble_cli.vote("q?", provider, samples=3, n=2, rounds=2, extract="number", adaptive=True,
                               temperature=0.7, seed=0)
    rounds = result.details["rounds"]
    assert len(rounds) == 2 and all("stopping" in r for r in rounds)
    assert result.details["samples_drawn"] == sum(r["stopping"]["drawn"] for r in rounds)


def test_a_member_that_fails_is_not_asked_again_in_that_round():
    def reply(request):
        if request.seed is not None and (request.seed - 1000) % 1000 >= 8:  # member b's samples
            raise ensemble_cli.errors.ProviderError("b is down")
        return "The answer is 6."

    provider = ScriptedProvider(default=reply, capabilities=ONE_AT_A_TIME)
    members = [{"name": "a"}, {"name": "b"}]
    result = ensemble_cli.vote("q?", provider, samples=8, members=members, extract="number", adaptive=True,
                               temperature=0.7, seed=0, quorum=0.5)
    asked_b = [r for r in provider.requests if (r.seed - 1000) % 1000 >= 8]
    assert len(asked_b) == 1
    assert result.details["failed"] == [{"member": "b", "round": 1, "error": "b is down"}]
    assert {r["member"] for r in result.details["rounds"][0]["replies"]} == {"a"}


def test_one_call_votes_ask_for_log_probabilities_and_measure_the_answer_span():
    provider = ScriptedProvider(default=lambda r: "The answer is 12.", confidence=0.8)
    result = ensemble_cli.vote("q?", provider, samples=1, extract="number", temperature=0.7)
    assert provider.requests[0].top_logprobs >= 1
    spec = ensemble_cli.catalog.spec("vote")
    assert spec.confidence(result.details) == pytest.approx(0.8)


def test_the_vote_confidence_is_the_winning_share_of_every_reply_or_the_posterior():
    spec = ensemble_cli.catalog.spec("vote")
    provider = ScriptedProvider(default=answering(lambda seed: 1 + (seed % 4 == 0)), capabilities=ONE_AT_A_TIME)
    fixed = ensemble_cli.vote("q?", provider, samples=4, extract="number", temperature=0.7, seed=0)
    winner = fixed.details["winner"]
    share = sum(r["answer"] == winner for r in fixed.details["rounds"][0]["replies"]) / 4
    assert spec.confidence(fixed.details) == pytest.approx(share)
    adaptive = ensemble_cli.vote("q?", ScriptedProvider(default=answering(lambda s: 2), capabilities=ONE_AT_A_TIME),
                                 samples=8, extract="number", adaptive=True, temperature=0.7, seed=0)
    assert spec.confidence(adaptive.details) == adaptive.details["stopping"]["posterior"]


def world(seed):
    """Per seed: mostly the right answer, sometimes a distractor."""
    draw = random.Random(seed).random()
    return 10 if draw < 0.7 else 11 if draw < 0.9 else 12


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("members", [1, 2])
def test_replaying_a_fixed_run_stops_where_the_adaptive_run_stopped(seed, members):
    """The offline replay at the adaptive run's settings gives the adaptive run's answer, drawn samples and
    posterior steps: bench tune's promise that a re-stopped record is what an adaptive run would write."""
    def run(adaptive):
        provider = ScriptedProvider(default=answering(world), capabilities=ONE_AT_A_TIME)
        return ensemble_cli.vote("q?", provider, samples=10, n=members, extract="number", adaptive=adaptive,
                                 stop_confidence=0.9, min_samples=2, step=1, temperature=0.7, seed=seed)

    live, fixed = run(True), run(False)
    replayed = restop_record(fixed.record, stop_confidence=0.9, min_samples=2, step=1)
    assert replayed["output"] == live.output
    assert replayed["details"]["stopping"] == live.details["stopping"]
    assert [(r["member"], r["sample"], r["answer"]) for r in replayed["details"]["rounds"][0]["replies"]] == \
        [(r["member"], r["sample"], r["answer"]) for r in live.details["rounds"][0]["replies"]]
    share = replayed["details"]["revote"]["usage_scaled"]
    assert share == pytest.approx(live.details["stopping"]["drawn"] / (10 * members))
    assert replayed["usage"]["completion_tokens"] == round(fixed.usage["completion_tokens"] * share)
    assert replayed["details"]["revote"]["new_calls"] == 0


def test_restop_refuses_what_it_cannot_replay():
    provider = ScriptedProvider(default=answering(world), capabilities=ONE_AT_A_TIME)
    debate = ensemble_cli.vote("q?", provider, samples=2, n=2, rounds=2, consensus=1.0, extract="number",
                               temperature=0.7, seed=1)
    if len(debate.details["rounds"]) == 2:
        with pytest.raises(InputError, match="one-round"):
            restop_record(debate.record, 0.95)
    with pytest.raises(InputError, match="not a vote record"):
        restop_record({"strategy": "moa", "status": "ok", "details": {}}, 0.95)


def test_revote_recounts_an_adaptive_record_with_another_method():
    provider = ScriptedProvider(default=answering(world), capabilities=ONE_AT_A_TIME)
    adaptive = ensemble_cli.vote("q?", provider, samples=8, extract="number", adaptive=True, temperature=0.7, seed=2)
    recounted = revote_record(adaptive.record, "weighted")
    assert recounted["details"]["method"] == "weighted"
    assert len(recounted["details"]["rounds"][0]["replies"]) == adaptive.details["stopping"]["drawn"]


def test_the_cli_offers_the_adaptive_flags_and_revote_restops(tmp_path, fake_server):
    server = fake_server({"m": ReplyModel(lambda ctx: "The answer is 4.")})
    out = tmp_path / "fixed.jsonl"
    args = ["vote", "-p", "What is 2 + 2?", "--provider", "vllm", "--model", "m", "--base-url", server.base_url,
            "--samples", "8", "--extract", "number", "--temperature", "0.7", "--seed", "1", "-o", str(out), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    restopped = CliRunner().invoke(app, ["revote", str(out), "--stop-confidence", "0.95"])
    assert restopped.exit_code == 0, restopped.output
    record = json.loads(restopped.stdout.strip().splitlines()[0])
    assert record["details"]["stopping"]["drawn"] == 4 and record["output"] == "4"
    adaptive = CliRunner().invoke(app, [*args[:-3], "--adaptive", "--stop-confidence", "0.9", "-o", "-"])
    assert adaptive.exit_code == 0, adaptive.output
    assert json.loads(adaptive.stdout.strip().splitlines()[-1])["details"]["stopping"]["reason"] == "settled"
    neither = CliRunner().invoke(app, ["revote", str(out)])
    assert neither.exit_code == 2 and "--stop-confidence" in neither.output


@pytest.mark.embedded
def test_adaptive_vote_on_the_embedded_model_decodes_each_step_in_one_batch(local_provider):
    result = ensemble_cli.vote("What is 3 + 4? Answer with a number.", local_provider, samples=8, extract="number",
                               adaptive=True, temperature=0.7, seed=4, max_tokens=24)
    stopping = result.details["stopping"]
    assert stopping["drawn"] <= 8 and len(stopping["steps"]) >= 1
    assert result.usage["calls"] == len(stopping["steps"])  # one call (one batch) per step
    again = ensemble_cli.vote("What is 3 + 4? Answer with a number.", local_provider, samples=8, extract="number",
                              adaptive=True, temperature=0.7, seed=4, max_tokens=24)
    assert again.details["stopping"] == stopping and again.output == result.output
