"""The one-call Python API: every strategy with a provider passed in, no CLI."""

from __future__ import annotations

import pytest
from fake_server import ReplyModel, ScriptedModel
from scripted import ScriptedProvider

import ensemble_cli
from ensemble_cli.config import MemberConfig
from ensemble_cli.errors import ConfigError, ProviderError


@pytest.mark.embedded
def test_committee_with_the_embedded_model():
    one = ensemble_cli.committee("Name a colour.", max_tokens=8)
    three = ensemble_cli.committee("Name a colour.", "local", n=3, max_tokens=8)
    assert one.output == three.output and three.details["groups"][0]["multiplicity"] == 3
    assert [m["name"] for m in three.members] == ["m#1", "m#2", "m#3"]


def test_results_carry_the_record_and_errors_raise():
    provider = ScriptedProvider("It is 4.", "4", "four? 4")
    result = ensemble_cli.vote("2+2?", provider, n=3, temperature=0.5, extract="number")
    assert result.output == "4" and result.record["status"] == "ok" and result.usage["calls"] == 3
    assert [r.messages[-1].content for r in provider.requests] == ["2+2?"] * 3
    with pytest.raises(ProviderError, match="down"):
        ensemble_cli.vote("2+2?", ScriptedProvider(ProviderError("down")), extract="number")
    with pytest.raises(ConfigError, match="samples"):
        ensemble_cli.vote("2+2?", ScriptedProvider(), samples=0)


def test_every_strategy_from_python(fake_server, registry_for):
    server = fake_server({
        "s": ScriptedModel("The answer is 42"),
        "r": ReplyModel(lambda ctx: "<response><text>Blue</text><probability>1</probability></response>"
                        if "different response" in ctx.user else "The answer is 42."),
    })
    registry = registry_for(max_retries=0)
    scripted = registry.provider_for(MemberConfig(name="s", provider="vllm", model="s", base_url=server.base_url))
    replies = registry.provider_for(MemberConfig(name="r", provider="vllm", model="r", base_url=server.base_url))
    assert ensemble_cli.vote("q?", replies, n=3, extract="number").output == "42"
    assert ensemble_cli.moa("q?", replies, n=2, layers=1).output == "The answer is 42."
    assert ensemble_cli.cot_decode("q?", scripted, k=2, answer_prompt=None).output == "42"
    assert ensemble_cli.verbalize("q?", replies, seed=1).output == "Blue"
    events = []
    ensemble_cli.committee("q?", scripted, emit=events.append, max_tokens=3)
    assert [e.text for e in events if type(e).__name__ == "TokenChosen"] == ["The", " answer", " is"]


@pytest.mark.embedded
def test_provider_by_name(fake_server, local_provider):
    server = fake_server({"s": ScriptedModel("Hello there")})
    remote = ensemble_cli.provider("vllm", "s", base_url=server.base_url, max_retries=0)
    assert remote.capabilities.prefix_continuation and remote.name == "vllm"
    assert ensemble_cli.committee("hi", remote, n=2).output == "Hello there"
    assert ensemble_cli.provider().engine is local_provider.engine
