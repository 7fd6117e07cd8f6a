"""Members written as one word, ``[NAME=]PROVIDER/MODEL[*COUNT]``: the parser, YAML lists, ``--member`` on every
strategy command, role members (``--judge``, ``--aggregator``, ``--fallback``) and the one-line errors."""

from __future__ import annotations

import json

import pytest
from fake_server import ReplyModel
from typer.testing import CliRunner

from ensemble_cli import catalog
from ensemble_cli.cli import app
from ensemble_cli.config import RunConfig, load_config
from ensemble_cli.errors import ConfigError
from ensemble_cli.member_specs import SpecError, parse


@pytest.mark.parametrize("spec, members", [
    ("openai/gpt-4o-mini", [("gpt-4o-mini", "openai", "gpt-4o-mini")]),
    ("deepseek/deepseek-v4-flash", [("deepseek-v4-flash", "deepseek", "deepseek-v4-flash")]),
    ("together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
     [("Llama-3.3-70B-Instruct-Turbo", "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")]),
    ("ollama/llama3:8b", [("llama3:8b", "ollama", "llama3:8b")]),
    ("llm/claude-3.5-haiku", [("claude-3.5-haiku", "llm", "claude-3.5-haiku")]),
    ("local/models/tiny.gguf", [("tiny", "local", "models/tiny.gguf")]),
    ("local", [("local", "local", None)]),
    ("fast=ollama/llama3:8b*2", [("fast#1", "ollama", "llama3:8b"), ("fast#2", "ollama", "llama3:8b")]),
])
def test_the_provider_comes_first_and_the_model_keeps_its_slashes_and_colons(spec, members):
    assert [(m["name"], m["provider"], m.get("model")) for m in parse(spec)] == members


@pytest.mark.parametrize("spec, message", [
    ("gpt-4o", "unknown provider 'gpt-4o'"),
    ("nosuch/model", "unknown provider 'nosuch'"),
    ("openai/gpt-4o*0", "give 1 to 1000 copies"),
    ("bad name=openai/gpt-4o", "letters, digits"),
    ("=openai/x", "is not a member"),
])
def test_a_spec_that_does_not_parse_shows_the_syntax_or_names_the_part(spec, message):
    with pytest.raises(SpecError, match=message):
        parse(spec)


@pytest.mark.parametrize("spec, count", [
    ("local/smollm2*x", r"\*x is not a whole number"),
    ("local/smollm2*-1", r"\*-1 is not a whole number"),
    ("local/smollm2*2x", r"\*2x is not a whole number"),
    ("local*x", r"\*x is not a whole number"),
    ("local/smollm2*", "the count after '\\*' is missing"),
])
def test_a_count_that_is_not_a_whole_number_is_an_error_about_the_count(spec, count):
    with pytest.raises(SpecError, match=count) as raised:
        parse(spec)
    assert "[NAME=]PROVIDER/MODEL[*COUNT]" in str(raised.value)


def test_a_bad_count_on_the_command_line_is_one_line_about_the_count_without_a_got_suffix():
    result = CliRunner().invoke(app, ["vote", "--member", "local/smollm2*x", "-p", "hi"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ensemble: error: --member: 'local/smollm2*x': the count")
    assert "GGUF" not in lines[0] and "(got" not in lines[0]


def test_a_role_member_takes_no_count():
    with pytest.raises(SpecError, match=r"one member here; leave out \*2"):
        parse("openai/gpt-4o*2", copies=False)


def test_yaml_members_may_be_specs_beside_mappings_and_names_stay_distinct(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("members:\n  - openai/gpt-4o-mini\n  - {name: mine, provider: vllm, model: m}\n"
                    "  - openai/gpt-4o-mini\n  - local*2\n")
    config = load_config(path)
    assert [m.name for m in config.members] == ["gpt-4o-mini", "mine", "gpt-4o-mini-2", "local#1", "local#2"]
    assert RunConfig(vote={"judge": "openai/gpt-4o"}).settings_for("vote").judge.model == "gpt-4o"


def test_a_bad_yaml_spec_is_a_config_error_naming_the_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("members: [nosuch/x]\n")
    with pytest.raises(ConfigError, match=r"members.*unknown provider 'nosuch'") as raised:
        load_config(path)
    assert "(got" not in str(raised.value)


def test_member_replaces_the_configs_members_and_every_other_flag_still_applies(tmp_path, fake_server):
    server = fake_server({"a": ReplyModel(lambda ctx: "The answer is 4."), "b": ReplyModel(lambda ctx: "It is 5.")})
    config = tmp_path / "run.yaml"
    config.write_text(f"members: [{{name: old, provider: vllm, model: a, base_url: {server.base_url}}}]\n"
                      f"base_url: {server.base_url}\nmax_retries: 0\n")
    result = CliRunner().invoke(app, ["vote", "-c", str(config), "--member", "vllm/a*2", "--member", "five=vllm/b",
                                      "-p", "2 + 2?", "--extract", "number", "-t", "0.3", "-o", "-", "-q"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    called = {m["name"]: m for m in record["members"]}
    assert set(called) == {"a#1", "a#2", "five"}
    assert all(m["temperature"] == 0.3 for m in called.values())
    assert record["output"] == "4"


@pytest.mark.parametrize("strategy", [s.name for s in catalog.specs()])
def test_every_strategy_command_takes_member(strategy):
    result = CliRunner().invoke(app, [strategy, "--help"], env={"COLUMNS": "200"})
    assert "--member" in result.output


def test_a_bad_member_flag_is_one_line_with_exit_2():
    result = CliRunner().invoke(app, ["vote", "--member", "gpt-4o", "-p", "hi"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ensemble: error: --member")
    assert "unknown provider 'gpt-4o'" in lines[0] and "Traceback" not in result.output
    assert "(got" not in lines[0]


def test_role_members_take_a_spec_and_refuse_a_spec_beside_its_parts(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "The answer is 4."), "j": ReplyModel(lambda ctx: "1")})
    common = ["-p", "2 + 2?", "--base-url", server.base_url, "--provider", "vllm", "--model", "a", "--max-retries", "0",
              "-o", "-", "-q"]
    judged = CliRunner().invoke(app, ["vote", *common, "--samples", "2", "-t", "0.5", "--method", "usc",
                                      "--judge", "arbiter=vllm/j"])
    assert judged.exit_code == 0, judged.output
    record = json.loads(judged.stdout.strip().splitlines()[-1])
    assert {"name": "arbiter", "role": "judge"}.items() <= next(m for m in record["members"]
                                                                 if m["role"] == "judge").items()
    both = CliRunner().invoke(app, ["vote", *common, "--judge", "vllm/a", "--judge-model", "a"])
    assert both.exit_code == 2 and "not both" in both.stderr
    fallback = CliRunner().invoke(app, ["moa", *common, "--layers", "1", "--fallback", "helper=vllm/a"])
    assert fallback.exit_code == 0, fallback.output


@pytest.mark.embedded
def test_a_mixed_vote_on_the_embedded_model_is_priced_before_it_runs_and_spends_no_more(tmp_path):
    args = ["vote", "-p", "What is 7 + 5? Reply with the number only.", "--member", "plain=local/smollm2",
            "--member", "warm=local/smollm2*2", "-t", "0.7", "--seed", "3", "--samples", "2", "--max-tokens", "8",
            "--extract", "number", "--cache-dir", str(tmp_path / "cache")]
    dry = CliRunner().invoke(app, [*args, "--dry-run", "-o", "-"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert [m["name"] for m in plan["members"]] == ["plain", "warm#1", "warm#2"]
    assert plan["cost_usd"] == 0 and plan["prompt_tokens_counted"] and plan["cached_calls"] == 0
    real = CliRunner().invoke(app, [*args, "-o", "-"])
    assert real.exit_code == 0, real.output
    usage = json.loads(real.stdout)["usage"]
    assert usage["calls"] <= plan["calls"] and usage["completion_tokens"] <= plan["completion_tokens"]
    assert usage["prompt_tokens"] <= plan["prompt_tokens"]
    again = json.loads(CliRunner().invoke(app, [*args, "--dry-run", "-o", "-"]).stdout)
    assert again["cached_calls"] == again["known_calls"] > 0  # seeded samples: the run left them in the cache
