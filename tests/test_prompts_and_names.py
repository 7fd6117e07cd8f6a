"""An empty prompt is refused before any call, in every front end; so are two members of one name."""

from __future__ import annotations

import json

import httpx
import llm
import pytest
from fake_server import ScriptedModel
from serve_helpers import serve
from typer.testing import CliRunner

from ensemble_cli import vote
from ensemble_cli.cli import app
from ensemble_cli.config import load_config
from ensemble_cli.errors import ConfigError, InputError
from ensemble_cli.inputs import PromptItem
from ensemble_cli.members import resolve
from ensemble_cli.calls import Message

runner = CliRunner()


def remote(server) -> list[str]:
    return ["--provider", "vllm", "--model", "a", "--base-url", server.base_url, "--max-retries", "0"]


@pytest.fixture
def upstream(fake_server):
    return fake_server({"a": ScriptedModel("The answer is 4")})


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_an_empty_prompt_flag_is_refused(upstream, prompt):
    result = runner.invoke(app, ["vote", "-p", prompt, *remote(upstream)])
    assert result.exit_code == 2 and result.stderr.strip() == "ensemble: error: --prompt is empty; give it a question"
    assert upstream.calls == 0


@pytest.mark.parametrize(("line", "reason"), [
    ({"prompt": ""}, "the prompt is empty"),
    ({"prompt": "  "}, "the prompt is empty"),
    ({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " "}]},
     "the last user message is empty"),
    ({"messages": [{"role": "system", "content": "Be brief."}]}, "no user message"),
])
def test_an_empty_prompt_in_an_input_file_names_its_line(upstream, tmp_path, line, reason):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"id": "ok", "prompt": "hi"}) + "\n" + json.dumps(line) + "\n")
    result = runner.invoke(app, ["vote", "-i", str(inputs), *remote(upstream)])
    assert result.exit_code == 2 and result.stderr.strip() == f"ensemble: error: {inputs}:2: {reason}; give each line a question"
    assert upstream.calls == 0


def test_an_empty_prompt_from_the_library_is_refused():
    with pytest.raises(InputError, match="prompt is empty"):
        vote("")
    with pytest.raises(InputError, match="'x': the last user message is empty"):
        PromptItem("x", (Message("user", "a question"), Message("assistant", "an answer"), Message("user", "")))


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": [{"type": "text", "text": "  "}]}],
    [{"role": "system", "content": "Be brief."}],
])
def test_an_empty_request_to_the_server_is_a_400(upstream, tmp_path, messages):
    config = {"strategy": "vote", **{k.lstrip("-").replace("-", "_"): v for k, v in zip(remote(upstream)[::2], remote(upstream)[1::2])}}
    with serve(tmp_path / "ensembles", {"v": config}) as url:
        response = httpx.post(f"{url}/v1/chat/completions", json={"model": "v", "messages": messages}, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    assert upstream.calls == 0


def test_an_empty_prompt_to_the_llm_plugin_is_refused():
    with pytest.raises(llm.ModelError, match="the prompt is empty"):
        llm.get_model("ensemble-vote").prompt("  ").text()


@pytest.mark.parametrize(("run", "strategy", "both"), [
    ({"members": [{"name": "a"}, {"name": "a"}]}, "vote", ("members[0]", "members[1]", "'a'")),
    ({"members": [{"name": "a"}], "vote": {"judge": {"name": "a"}}}, "vote", ("members[0]", "vote.judge", "'a'")),
    ({"members": [{"name": "a"}, {"name": "b"}], "moa": {"aggregator": {"name": "b"}}}, "moa",
     ("members[1]", "moa.aggregator", "'b'")),
    ({"members": [{"name": "x"}, {"name": "x"}]}, "committee", ("members[0]", "members[1]", "'x'")),
])
def test_two_members_of_one_name_are_refused_naming_both(run, strategy, both):
    with pytest.raises(ConfigError) as info:
        resolve(load_config(None, run), strategy)
    assert all(part in str(info.value) for part in both), str(info.value)


def test_a_member_named_like_a_copy_is_refused():
    with pytest.raises(ConfigError, match=r"members\[1\] 'a#1' has the name of copy 1 of members\[0\] 'a' \(n: 2\)"):
        resolve(load_config(None, {"n": 2, "members": [{"name": "a"}, {"name": "a#1"}]}), "vote")
    assert len(resolve(load_config(None, {"members": [{"name": "a"}, {"name": "a#1"}]}), "vote").members) == 2


def test_default_names_never_collide_with_given_ones():
    roster = resolve(load_config(None, {"members": [{"name": "m2"}, {}, {"name": "aggregator"}]}), "moa")
    names = [m.name for m in roster.members] + [roster.roles["aggregator"].name]
    assert len(set(names)) == len(names) and names[0] == "m2" and names[-1] == "aggregator-2"


def test_duplicate_names_on_the_command_line_exit_2_before_any_call(upstream, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("members:\n  - {name: a}\n  - {name: a, system: terse}\n")
    result = runner.invoke(app, ["vote", "-c", str(config), "-p", "hi", *remote(upstream)])
    assert result.exit_code == 2 and "members[0] and members[1] are both named 'a'" in result.stderr
    assert upstream.calls == 0
