"""`moa` on the fake server (references, layers, quorum, truncation, concurrency) and the embedded model."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from fake_server import ReplyModel
from scripted import ScriptedProvider
from typer.testing import CliRunner

from conftest import REPO, run_strategy
from ensemble_cli.cli import app
from ensemble_cli.config import MemberConfig, load_config
from ensemble_cli.strategies.moa import MoaSettings
from ensemble_cli.errors import StrategyError
from ensemble_cli.inputs import from_prompt
from ensemble_cli.session import Session
from ensemble_cli.sinks.collect import Collector
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.moa import MixtureOfAgents
from ensemble_cli.strategies.moa_prompts import AGGREGATE_INSTRUCTION, REFERENCE_INSTRUCTION

ITEM = from_prompt("How do plants grow?")


def layered(name: str) -> ReplyModel:
    """Replies name the layer they think they are in: the number of references they were given + 1."""
    def reply(ctx) -> str:
        refs = ctx.system.count("\n[") if "References:" in ctx.system else 0
        return f"{name} answer with {refs} refs"
    return ReplyModel(reply)


def members(registry_for, server, names, **run):
    registry = registry_for(max_retries=0, **run)
    return [Member(n, registry.provider_for(MemberConfig(name=n, provider="vllm", model=n, base_url=server.base_url)))
            for n in names]


def run(proposers, aggregator=None, **settings):
    aggregator = aggregator or replace(proposers[0], name="aggregator")
    return run_strategy(MixtureOfAgents(proposers, aggregator, MoaSettings(**settings)), ITEM)


def test_each_layer_gets_the_previous_answers_as_references(fake_server, registry_for):
    server = fake_server({n: layered(n) for n in ("a", "b", "c", "agg")})
    proposers = members(registry_for, server, ["a", "b", "c"])
    (aggregator,) = members(registry_for, server, ["agg"])
    result = run(proposers, aggregator, layers=2)
    first = [r for r in server.requests if r["body"]["model"] != "agg"][:3]
    assert all(r["body"]["messages"][0] == {"role": "user", "content": "How do plants grow?"} for r in first)
    second = [r["body"]["messages"] for r in server.requests[3:6]]
    for messages in second:
        system = messages[0]["content"]
        assert messages[0]["role"] == "system" and system.startswith(REFERENCE_INSTRUCTION)
        assert "[1] a answer with 0 refs" in system and "[3] c answer with 0 refs" in system
        assert messages[1] == {"role": "user", "content": "How do plants grow?"}
    final = server.requests[-1]["body"]
    assert final["model"] == "agg" and final["stream"] is True
    assert final["messages"][0]["content"].startswith(AGGREGATE_INSTRUCTION)
    assert "[2] b answer with 3 refs" in final["messages"][0]["content"]
    assert result.output == "agg answer with 3 refs"
    layers = result.details["layers"]
    assert [a["text"] for a in layers[1]["answers"]] == [f"{n} answer with 3 refs" for n in "abc"]
    assert layers[0]["totals"]["calls"] == 3 and result.tally.calls == 7


def test_layers_run_in_order_and_proposers_concurrently(fake_server, registry_for):
    server = fake_server({n: layered(n) for n in ("a", "b", "c", "d")}, latency=0.25)
    run(members(registry_for, server, ["a", "b", "c", "d"]), layers=3)
    assert server.max_in_flight == 4
    by_layer = [server.requests[i:i + 4] for i in (0, 4, 8)]
    for earlier, later in zip(by_layer, by_layer[1:]):
        assert max(r["end"] for r in earlier) <= min(r["start"] for r in later)
    assert server.requests[-1]["start"] >= max(r["end"] for r in by_layer[2])


def test_failed_proposer_is_dropped_and_recorded(fake_server, registry_for):
    server = fake_server({n: layered(n) for n in ("a", "b", "bad")})
    server.fail_when = lambda body: body["model"] == "bad"
    result = run(members(registry_for, server, ["a", "b", "bad"]), layers=2)
    assert [f["member"] for f in result.details["layers"][0]["failed"]] == ["bad"]
    assert [a["member"] for a in result.details["layers"][1]["answers"]] == ["a", "b"]
    assert "[2] b answer with 0 refs" in server.requests[3]["body"]["messages"][0]["content"]
    assert "[3]" not in server.requests[3]["body"]["messages"][0]["content"]
    with pytest.raises(StrategyError, match="moa layer 1: only 2 of 3 members answered, 3 needed"):
        run(members(registry_for, server, ["a", "b", "bad"]), quorum=1.0)


def test_references_are_truncated_and_the_cut_recorded(fake_server, registry_for):
    server = fake_server({"long": ReplyModel(lambda ctx: "word " * 50), "short": ReplyModel(lambda ctx: "ok")})
    result = run(members(registry_for, server, ["long", "short"]), layers=2, max_reference_chars=20)
    cuts = result.details["truncated"]
    length = len(result.details["layers"][0]["answers"][0]["text"])
    assert length > 200
    assert {"layer": 2, "to": "long", "reference": 1, "from_member": "long", "chars": length, "kept": 20} in cuts
    assert {"layer": 3, "to": "aggregator", "reference": 1, "from_member": "long", "chars": length, "kept": 20} in cuts
    assert all(c["from_member"] == "long" for c in cuts)
    system = server.requests[2]["body"]["messages"][0]["content"]
    assert "[1] " + ("word " * 4).strip() in system and "word " * 5 not in system


def test_shuffled_references_are_seeded(fake_server, registry_for):
    server = fake_server({n: layered(n) for n in "abcd"})

    def orders(seed):
        server.reset_counters()
        proposers = members(registry_for, server, list("abcd"))
        asyncio.run(MixtureOfAgents(proposers, replace(proposers[0], name="agg"),
                                    MoaSettings(layers=2, shuffle_references=True), seed).run(ITEM))
        return sorted((r["body"]["model"], r["body"]["messages"][0]["content"]) for r in server.requests[4:8])

    assert orders(1) == orders(1)
    assert orders(1) != orders(2)


@pytest.mark.parametrize(("settings", "names", "temperatures"), [
    ({"moa": {"self_moa": 3, "proposer_temperature": 0.9}}, ["a#1", "a#2", "a#3"], [0.9, 0.9, 0.9]),
    ({"moa": {"self_moa": 3}}, ["a#1", "a#2", "a#3"], [0.4, 0.7, 1.0]),
    ({"n": 3}, ["a#1", "a#2", "a#3"], [0.4, 0.7, 1.0]),
])
def test_self_moa_and_copies_are_called_at_their_recorded_temperatures(settings, names, temperatures):
    provider = ScriptedProvider(default=lambda request: f"reply at {request.temperature}")
    config = load_config(None, {"members": [{"name": "a"}], "moa": {"layers": 1}, **settings}
                         if "moa" not in settings else {"members": [{"name": "a"}], **settings,
                                                        "moa": {"layers": 1, **settings["moa"]}})
    collector = Collector()
    outcome = Session(config, provider=provider).run_sync("moa", [ITEM], [collector])
    assert outcome.ok == 1
    record = collector.records[0]
    proposers = [m for m in record["members"] if m["role"] == "proposer"]
    assert [m["name"] for m in proposers] == names and [m["temperature"] for m in proposers] == temperatures
    assert sorted(r.temperature for r in provider.requests[:3]) == temperatures
    answers = record["details"]["layers"][0]["answers"]
    assert [a["temperature"] for a in answers] == temperatures


@pytest.mark.embedded
def test_moa_configs_on_the_embedded_model():
    runner = CliRunner()
    lite = runner.invoke(app, ["moa", "--config", str(REPO / "configs/moa-lite.yaml"), "--max-tokens", "16",
                               "--aggregator-max-tokens", "16", "-o", "-"])
    assert lite.exit_code == 0, lite.stderr
    record = json.loads(lite.stdout)
    assert record["status"] == "ok" and record["output"]
    assert len(record["details"]["layers"]) == 1 and len(record["details"]["layers"][0]["answers"]) == 2
    full = runner.invoke(app, ["moa", "--config", str(REPO / "configs/moa.yaml"), "--layers", "2",
                               "--proposer-max-tokens", "12", "--aggregator-max-tokens", "12", "-o", "-", "-q"])
    assert full.exit_code == 0, full.stderr
    record = json.loads(full.stdout)
    assert [len(layer["answers"]) for layer in record["details"]["layers"]] == [3, 3]
    assert record["details"]["layers"][1]["references"][0]["references"]  # layer 2 saw layer 1


def test_each_proposer_is_shown_as_it_finishes_then_the_stream(fake_server, registry_for):
    from ensemble_cli.events import ReplyReceived, StreamDelta

    server = fake_server({n: layered(n) for n in ("a", "b")})
    events = []
    proposers = members(registry_for, server, ["a", "b"])
    run_strategy(MixtureOfAgents(proposers, replace(proposers[0], name="agg"), MoaSettings(layers=2)), ITEM, events.append)
    replies = [(e.member, e.round) for e in events if isinstance(e, ReplyReceived)]
    assert sorted(replies) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    first_delta = next(i for i, e in enumerate(events) if isinstance(e, StreamDelta))
    assert all(not isinstance(e, ReplyReceived) for e in events[first_delta:])
    assert "".join(e.text for e in events if isinstance(e, StreamDelta)) == "a answer with 2 refs"
