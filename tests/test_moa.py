"""`moa`'s logic on the scripted in-process provider (references, layers, quorum, truncation, concurrency,
streaming) and the embedded model; its CLI over HTTP is in test_cli.py, test_transport.py, test_exit_codes.py."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from scripted import ScriptedProvider, max_in_flight
from typer.testing import CliRunner

from conftest import REPO, run_strategy
from ensemble_cli.cli import app
from ensemble_cli.config import load_config
from ensemble_cli.strategies.moa import MoaSettings
from ensemble_cli.errors import ProviderError, StrategyError
from ensemble_cli.inputs import from_prompt
from ensemble_cli.session import Session
from ensemble_cli.sinks.collect import Collector
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.moa import MixtureOfAgents
from ensemble_cli.strategies.moa_prompts import AGGREGATE_INSTRUCTION, REFERENCE_INSTRUCTION

ITEM = from_prompt("How do plants grow?")


def system(request) -> str:
    return next((m.content for m in request.messages if m.role == "system"), "")


def refs(request) -> int:
    """How many references a request carries."""
    return system(request).count("\n[") if "References:" in system(request) else 0


def layered(name: str, **options) -> ScriptedProvider:
    """Replies name the layer they think they are in: the number of references they were given + 1."""
    return ScriptedProvider(default=lambda request: f"{name} answer with {refs(request)} refs", model=name, **options)


def members(*providers: ScriptedProvider) -> list[Member]:
    """One member per provider, named by its model."""
    return [Member(p.model, p) for p in providers]


def run(proposers, aggregator=None, **settings):
    aggregator = aggregator or replace(proposers[0], name="aggregator")
    return run_strategy(MixtureOfAgents(proposers, aggregator, MoaSettings(**settings)), ITEM)


def test_each_layer_gets_the_previous_answers_as_references():
    a, b, c, agg = (layered(n) for n in ("a", "b", "c", "agg"))
    result = run(members(a, b, c), members(agg)[0], layers=2)
    first = [[m.as_dict() for m in p.requests[0].messages] for p in (a, b, c)]
    assert first == [[{"role": "user", "content": "How do plants grow?"}]] * 3
    for provider in (a, b, c):
        messages = provider.requests[1].messages
        assert messages[0].role == "system" and messages[0].content.startswith(REFERENCE_INSTRUCTION)
        assert "[1] a answer with 0 refs" in messages[0].content and "[3] c answer with 0 refs" in messages[0].content
        assert messages[1].as_dict() == {"role": "user", "content": "How do plants grow?"}
    (final,) = agg.requests
    assert agg.streamed == [final] and all(p.streamed == [] for p in (a, b, c))  # only the aggregator streams
    assert final.messages[0].content.startswith(AGGREGATE_INSTRUCTION)
    assert "[2] b answer with 3 refs" in final.messages[0].content
    assert result.output == "agg answer with 3 refs"
    layers = result.details["layers"]
    assert [a["text"] for a in layers[1]["answers"]] == [f"{n} answer with 3 refs" for n in "abc"]
    assert layers[0]["totals"]["calls"] == 3 and result.tally.calls == 7


def test_layers_run_in_order_and_proposers_concurrently():
    timeline: list = []
    proposers = members(*(layered(n, timeline=timeline) for n in ("a", "b", "c", "d")))
    run(proposers, layers=3)
    assert max_in_flight(timeline) == 4

    def step(request) -> int:
        """1-3: the proposer layer (what its references say they saw), 4: the aggregator."""
        if system(request).startswith(AGGREGATE_INSTRUCTION):
            return 4
        return 1 if not refs(request) else 2 if "with 0 refs" in system(request) else 3

    layer = [step(request) for _, request in timeline]
    assert sorted(layer) == layer  # every call of a layer ended before the next layer's first started
    assert [e for e, _ in timeline[-2:]] == ["start", "end"] and layer[-1] == 4  # the aggregator, alone, last
    assert layer.count(1) == layer.count(2) == layer.count(3) == 8  # four calls per layer, each start and end


def test_failed_proposer_is_dropped_and_recorded():
    def three():
        a, b = layered("a"), layered("b")
        bad = ScriptedProvider(default=ProviderError("member 'bad': HTTP 500: injected 500"), model="bad")
        return a, b, bad

    a, b, bad = three()
    result = run(members(a, b, bad), layers=2)
    assert [f["member"] for f in result.details["layers"][0]["failed"]] == ["bad"]
    assert [a["member"] for a in result.details["layers"][1]["answers"]] == ["a", "b"]
    assert "[2] b answer with 0 refs" in system(a.requests[1])
    assert "[3]" not in system(a.requests[1])
    with pytest.raises(StrategyError, match="moa layer 1: only 2 of 3 members answered, 3 needed"):
        run(members(*three()), quorum=1.0)


def test_references_are_truncated_and_the_cut_recorded():
    long, short = ScriptedProvider(default="word " * 50, model="long"), ScriptedProvider(default="ok", model="short")
    result = run(members(long, short), layers=2, max_reference_chars=20)
    cuts = result.details["truncated"]
    length = len(result.details["layers"][0]["answers"][0]["text"])
    assert length > 200
    assert {"layer": 2, "to": "long", "reference": 1, "from_member": "long", "chars": length, "kept": 20} in cuts
    assert {"layer": 3, "to": "aggregator", "reference": 1, "from_member": "long", "chars": length, "kept": 20} in cuts
    assert all(c["from_member"] == "long" for c in cuts)
    assert "[1] " + ("word " * 4).strip() in system(long.requests[1]) and "word " * 5 not in system(long.requests[1])


def test_shuffled_references_are_seeded():
    def orders(seed):
        providers = [layered(n) for n in "abcd"]
        proposers = members(*providers)
        asyncio.run(MixtureOfAgents(proposers, replace(proposers[0], name="agg"),
                                    MoaSettings(layers=2, shuffle_references=True), seed).run(ITEM))
        return sorted((p.model, system(p.requests[1])) for p in providers)

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


def test_each_proposer_is_shown_as_it_finishes_then_the_stream():
    from ensemble_cli.events import ReplyReceived, StreamDelta

    events = []
    proposers = members(layered("a"), layered("b"))
    run_strategy(MixtureOfAgents(proposers, replace(proposers[0], name="agg"), MoaSettings(layers=2)), ITEM, events.append)
    replies = [(e.member, e.round) for e in events if isinstance(e, ReplyReceived)]
    assert sorted(replies) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    first_delta = next(i for i, e in enumerate(events) if isinstance(e, StreamDelta))
    assert all(not isinstance(e, ReplyReceived) for e in events[first_delta:])
    assert len([e for e in events if isinstance(e, StreamDelta)]) > 1  # streamed in pieces
    assert "".join(e.text for e in events if isinstance(e, StreamDelta)) == "a answer with 2 refs"
