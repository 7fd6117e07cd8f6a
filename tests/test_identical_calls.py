"""Calls identical by construction are made once and counted with their multiplicity, in every strategy;
a call is reproducible (cached, shared) only where its backend applies what makes it so; a huge batch of
distinct calls prints a line of progress a second, not a line a call; identical copies are reported once on
stderr, and vote's judge is listed among the members called."""

from __future__ import annotations

import json

import pytest
from fake_server import ReplyModel
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.events import ReplyReceived, RoundFinished, RunStarted
from ensemble_cli.sinks.console import stderr_console
from ensemble_cli.sinks.display import REPLY_LINES, Display

runner = CliRunner()


@pytest.fixture
def upstream(fake_server):
    return fake_server({"a": ReplyModel(lambda ctx: f"The answer is {4 + (ctx.seed or 0) % 3}.")})


def remote(server, provider: str = "vllm") -> list[str]:
    return ["--provider", provider, "--model", "a", "--base-url", server.base_url, "--max-retries", "0"]


def run(*args: str, env: dict | None = None):
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_a_thousand_greedy_copies_are_one_call(upstream):
    record, stderr = run("vote", "-p", "What is 2 + 2?", "--n", "1000", "--extract", "number", "-o", "-",
                         "--no-cache", *remote(upstream))
    assert upstream.calls == 1 and record["usage"]["calls"] == 1
    replies = record["details"]["rounds"][0]["replies"]
    assert len(replies) == 1000 and record["details"]["table"][0]["votes"] == 1000
    assert replies[0].get("copy_of") is None and {r["copy_of"] for r in replies[1:]} == {0}
    assert "the 1000 calls of 'm' at temperature 0 are the same call, made once and counted 1000 times" in stderr
    assert len([line for line in stderr.splitlines() if line.startswith("  round 1 m#")]) == REPLY_LINES
    assert len(max(stderr.splitlines(), key=len)) < 400  # 1000 member names are not listed in a table cell


def test_seeded_greedy_copies_are_the_same_call_too(upstream):
    record, _ = run("vote", "-p", "What is 2 + 2?", "--n", "4", "--seed", "7", "--extract", "number", "-o", "-",
                    "--no-cache", *remote(upstream))
    assert upstream.calls == 1 and record["usage"]["calls"] == 1  # a greedy call's seed changes nothing


def test_sampled_copies_are_distinct_calls(upstream):
    record, stderr = run("vote", "-p", "What is 2 + 2?", "--n", "40", "--temperature", "0.7", "--seed", "1",
                         "--extract", "number", "-o", "-", "--no-cache", *remote(upstream))
    assert upstream.calls == 40 and record["usage"]["calls"] == 40
    assert "same call" not in stderr
    reply_lines = [line for line in stderr.splitlines() if line.startswith("  round 1 ")]
    assert len(reply_lines) == REPLY_LINES


def test_identical_moa_proposers_are_one_call_per_layer(upstream):
    record, stderr = run("moa", "-p", "Name a colour.", "--n", "3", "--proposer-temperature", "0", "--layers", "2",
                         "-o", "-", "--no-cache", *remote(upstream))
    assert upstream.calls == 3 and record["usage"]["calls"] == 3  # one per layer, then the aggregator
    answers = record["details"]["layers"][0]["answers"]
    assert [a.get("copy_of") for a in answers] == [None, "m#1", "m#1"]
    assert "moa proposers: the 3 calls of 'm' at temperature 0 are the same call" in stderr


@pytest.mark.parametrize(("provider", "cached"), [("vllm", 3), ("openai", 0)])
def test_a_seeded_sample_is_cached_only_where_the_backend_honours_seeds(upstream, tmp_path, provider, cached):
    args = ["vote", "-p", "What is 2 + 2?", "--n", "3", "--temperature", "0.7", "--seed", "5", "-o", "-",
            "--cache-dir", str(tmp_path / "cache"), "--api-key-env", "K", *remote(upstream, provider)]
    env = {"K": "sk-test-key-for-the-fake-0000"}
    run(*args, env=env)
    record, _ = run(*args, env=env)
    assert record["usage"]["cached_calls"] == cached


def test_an_unseeded_sample_is_never_replayed(upstream, tmp_path):
    args = ["vote", "-p", "What is 2 + 2?", "--n", "3", "--temperature", "0.7", "-o", "-",
            "--cache-dir", str(tmp_path / "cache"), *remote(upstream)]
    run(*args)
    record, _ = run(*args)
    assert record["usage"]["cached_calls"] == 0 and upstream.calls == 6


def test_plain_progress_is_a_line_a_second_past_the_first_replies():
    display = Display(stderr_console(), 1)
    display.mode = "plain"
    printed: list[str] = []
    display.console.print = lambda text, **_: printed.append(str(text))  # type: ignore[method-assign]
    now = [0.0]
    display.clock = lambda: now[0]
    display(RunStarted("", 1))
    for index in range(500):
        now[0] = index * 0.01  # 500 replies in 5 s
        display(ReplyReceived("p", f"m#{index}", 1, "text", "4"))
    display(RoundFinished("p", 1))
    assert len(printed) == REPLY_LINES + 5 + 1  # ten replies, a progress line a second, the round's count
    assert printed[-1] == "  round 1: 500 replies"


@pytest.mark.embedded
def test_a_thousand_greedy_copies_on_the_embedded_model_are_one_decode():
    record, _ = run("vote", "-p", "What is 7 + 5? Reply with the number only.", "--n", "1000", "--extract", "number",
                    "--max-tokens", "8", "-o", "-", "--no-cache")
    assert record["usage"]["calls"] == 1 and len(record["details"]["rounds"][0]["replies"]) == 1000


@pytest.mark.parametrize(("provider", "model", "greedy", "seeded"), [
    ("openai", "gpt-4o-mini", True, False),  # OpenAI's seed is best effort
    ("openai", "o3-mini", False, False),  # a reasoning model takes no temperature
    ("deepseek", "deepseek-v4-flash", True, False),  # DeepSeek takes no seed
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", True, False),
    ("vllm", "toy", True, True), ("ollama", "toy", True, True), ("llamacpp", "toy", True, True),
    ("openai-compatible", "toy", True, False),
])
def test_each_backend_says_what_makes_its_calls_reproducible(registry_for, provider, model, greedy, seeded):
    from ensemble_cli.config import MemberConfig
    from ensemble_cli.calls import Message, Request

    registry = registry_for(environ={"OPENAI_API_KEY": "sk-x-000000", "DEEPSEEK_API_KEY": "sk-x-000000",
                                     "TOGETHER_API_KEY": "sk-x-000000"})
    built = registry.provider_for(MemberConfig(name="m", provider=provider, model=model,
                                               base_url="http://127.0.0.1:9/v1"))
    ask = Request((Message("user", "hi"),))
    assert built.reproducible(ask.but(temperature=0.0)) is greedy
    assert built.reproducible(ask.but(temperature=0.8, seed=3)) is seeded
    assert built.reproducible(ask.but(temperature=0.8)) is False
    other = registry.provider_for(MemberConfig(name="other", provider=provider, model=model,
                                               base_url="http://127.0.0.1:9/v1"))
    assert other.identity() == built.identity()  # two members on one endpoint and model make the same calls


@pytest.mark.embedded
def test_the_embedded_model_is_reproducible_greedy_or_seeded(local_provider):
    from ensemble_cli.calls import Message, Request

    ask = Request((Message("user", "hi"),))
    assert local_provider.reproducible(ask) and local_provider.reproducible(ask.but(temperature=0.9, seed=1))
    assert not local_provider.reproducible(ask.but(temperature=0.9))


@pytest.mark.embedded
def test_vote_copies_at_temperature_0_are_reported_and_judge_is_listed(tmp_path):
    config = tmp_path / "vote.yaml"
    config.write_text("n: 3\nmax_tokens: 6\nvote:\n  method: usc\n  judge: {name: referee, temperature: 0.1}\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["vote", "--config", str(config), "-p", "What is 2 + 2?", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("at temperature 0 are the same call, made once") == 1
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["usage"]["calls"] == 2  # the three greedy copies once, then the judge
    roles = {(m["name"], m["role"], m["temperature"]) for m in record["members"]}
    assert ("referee", "judge", 0.1) in roles
    assert {("m#1", "member", 0.0), ("m#2", "member", 0.0), ("m#3", "member", 0.0)} <= roles
