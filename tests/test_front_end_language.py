"""Client mistakes are client errors, and every message speaks the language of the front end that shows it:
the CLI names flags, the server request fields, the llm plugin its -o options, the library its keywords."""

from __future__ import annotations

import httpx
import llm
import pytest
from fake_server import AnyStrategy, Fault, ReplyModel
from serve_helpers import serve
from typer.testing import CliRunner

import ensemble_cli
from conftest import remote_flags
from ensemble_cli.cli import app
from ensemble_cli.errors import AuthError, ContextLengthError, NoAnswerError
from ensemble_cli.llm_plugin import options_for

runner = CliRunner()
TOO_LONG = {"error": {"message": "This model's maximum context length is 8192 tokens; your messages resulted in "
                                 "9000 tokens.", "code": "context_length_exceeded", "type": "invalid_request_error"}}


def words(ctx) -> str:
    return "I would rather not say."


@pytest.fixture
def upstream(fake_server):
    return fake_server({"a": ReplyModel(words)})


def ensembles(url: str) -> dict[str, dict]:
    base = {"provider": "vllm", "model": "a", "base_url": url, "max_retries": 0}
    return {"vote": {**base, "strategy": "vote", "vote": {"extract": "number"}},
            "moa": {**base, "strategy": "moa", "n": 2, "moa": {"layers": 1}}}


def post(url: str, model: str, **extra) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "What is 2 + 2?"}], **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


@pytest.mark.parametrize("model", ["vote", "moa"])
def test_a_prompt_longer_than_the_context_is_a_400(upstream, tmp_path, model):
    upstream.faults.extend([Fault("status", 400, body=TOO_LONG)] * 2)
    with serve(tmp_path / "ensembles", ensembles(upstream.base_url)) as url:
        response = post(url, model)
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "context_length_exceeded", response.json()
    assert error["param"] == "messages" and "max_tokens" in error["message"]
    assert "--max-tokens" not in error["message"]


def test_no_extractable_answer_is_a_422_naming_the_request_key(upstream, tmp_path):
    with serve(tmp_path / "ensembles", ensembles(upstream.base_url)) as url:
        response = post(url, "vote")
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "no_answer"
    assert "ensemble.extract" in error["message"] and "--extract" not in error["message"]
    assert response.json()["ensemble"]["gathered"]["rounds"][0]["replies"]


def test_the_cli_says_the_same_things_as_flags(upstream):
    result = runner.invoke(app, ["vote", "-p", "What is 2 + 2?", "--provider", "vllm", "--model", "a",
                                 "--base-url", upstream.base_url, "--extract", "number", "--max-retries", "0"])
    assert result.exit_code == 1 and "try another --extract" in result.stderr
    upstream.faults.append(Fault("status", 400, body=TOO_LONG))
    result = runner.invoke(app, ["vote", "-p", "What is 2 + 2?", "--provider", "vllm", "--model", "a",
                                 "--base-url", upstream.base_url, "--max-retries", "0", "--no-cache"])
    assert result.exit_code == 2 and "lower --max-tokens" in result.stderr


def test_the_library_names_its_keywords_not_flags(upstream):
    with pytest.raises(NoAnswerError) as no_answer:
        ensemble_cli.vote("What is 2 + 2?", "vllm", model="a", base_url=upstream.base_url, extract="number",
                          max_retries=0)
    assert "try another vote.extract" in str(no_answer.value) and "--" not in str(no_answer.value)
    with pytest.raises(AuthError) as missing:
        ensemble_cli.vote("What is 2 + 2?", "deepseek")
    assert "api_key_env" in str(missing.value) and "--api-key-env" not in str(missing.value)
    upstream.faults.append(Fault("status", 400, body=TOO_LONG))
    with pytest.raises(ContextLengthError, match="lower max_tokens"):
        ensemble_cli.vote("What is 2 + 2?", "vllm", model="a", base_url=upstream.base_url, max_retries=0, cache=False)


def test_the_llm_plugin_names_its_options_and_points_to_no_readme():
    options = options_for("vote")
    for name, field in options.model_fields.items():
        assert field.description and "README" not in field.description, name
    with pytest.raises(ValueError) as bad:  # llm checks -o values when the prompt is made
        llm.get_model("ensemble-vote").prompt("What is 2 + 2?", rounds=0)
    assert "-o rounds: " in str(bad.value) and "vote.rounds" not in str(bad.value)


def test_timeout_error_names_the_flag(fake_server):
    server = fake_server({"a": AnyStrategy()})
    server.faults.append(Fault("hang", seconds=2.0))
    result = runner.invoke(app, ["moa", "-p", "q", "--layers", "1", *remote_flags(server.base_url), "--timeout", "0.3"])
    assert result.exit_code == 4, result.stderr
    assert "--timeout" in result.stderr and "timeout or max_retries" not in result.stderr.replace("(--timeout)", "")
