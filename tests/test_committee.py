"""Committee decoding: exactness, lossless drafting, gating, probes, refusal on the scripted in-process
provider (its decoder), the CLI over the fake server, and the embedded model."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from fake_server import ScriptedModel
from scripted import Script, ScriptedProvider
from typer.testing import CliRunner

from conftest import run_strategy
from ensemble_cli.cli import app
from ensemble_cli.providers.base import Capabilities
from ensemble_cli.strategies.committee import CommitteeSettings
from ensemble_cli.errors import CapabilityError
from ensemble_cli.inputs import from_prompt
from ensemble_cli.calls import Request
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.committee import Committee

ITEM = from_prompt("Describe the mat.")
SCRIPTS = {
    "a": Script("The cat sat on the warm mat by the door", confidence=0.9),
    "b": Script("The dog sat on the old mat near a door", confidence=0.6),
    "c": Script("The cat lay on the warm rug by the door", confidence=0.7),
}


def scripted_members(names=("a", "b", "c"), scripts=SCRIPTS, **options):
    """One member per script, each on its own scripted provider (its own model)."""
    return [Member(name, ScriptedProvider(default=scripts[name], model=name, **options)) for name in names]


def decode(members, max_tokens=30, **settings):
    committee = Committee(members, CommitteeSettings(**settings), max_tokens)
    return run_strategy(committee, ITEM)


@pytest.mark.embedded
def test_one_member_equals_greedy_on_the_embedded_model(local_provider):
    (greedy,) = asyncio.run(local_provider.complete(Request(ITEM.messages, max_tokens=40)))
    result = decode([Member("solo", local_provider)], max_tokens=40)
    assert result.output == greedy.text
    assert result.details["summary"]["tokens"] == len(greedy.tokens)
    assert result.details["finish_reason"] == ("stop" if greedy.finish_reason == "stop" else "length")


@pytest.mark.embedded
def test_identical_members_are_computed_once(local_provider):
    one = decode([Member("solo", local_provider)], max_tokens=25)
    many = decode([Member(f"m{i}", local_provider) for i in range(20)], max_tokens=25)
    assert many.output == one.output
    (group,) = many.details["groups"]
    assert group["multiplicity"] == 20 and group["weight"] == 20
    assert many.tally.calls == one.tally.calls


@pytest.mark.embedded
def test_distinct_members_on_the_embedded_model(local_provider):
    systems = ["Answer like a pirate.", "Answer like a poet.", "Answer in French."]
    members = [Member(f"s{i}", local_provider, system=s) for i, s in enumerate(systems)]
    result = decode(members, max_tokens=20, trace=True, top_k=4)
    steps = result.details["steps"]
    assert len(result.details["groups"]) == 3 and steps
    for step in steps:
        assert set(step["members"]) == {"s0", "s1", "s2"} and len(step["top"]["s0"]) == 4
        assert 0 < step["p"] <= 1 and 0 <= step["agreement"] <= 1
    tokens = [s["token"] for s in steps if s["token"] is not None]
    assert "".join(tokens) == result.output


def test_draft_is_lossless_and_cheaper():
    members = scripted_members()
    stepwise = decode(members)
    drafted = decode(members, draft=8)
    assert drafted.output == stepwise.output
    assert [s["token"] for s in drafted.details["steps"]] == [s["token"] for s in stepwise.details["steps"]]
    assert drafted.tally.calls < stepwise.tally.calls
    assert drafted.details["summary"]["mean_accepted_draft"] > 1


def test_agreeing_members_draft_whole_answers():
    scripts = {"a": SCRIPTS["a"], "a2": Script("The cat sat on the warm mat by the door", 0.8)}
    members = scripted_members(("a", "a2"), scripts)
    stepwise = decode(members)
    drafted = decode(members, draft=8)
    assert drafted.output == stepwise.output == "The cat sat on the warm mat by the door"
    assert stepwise.details["summary"]["calls_per_token"] / drafted.details["summary"]["calls_per_token"] >= 3


def test_merge_mode_changes_the_winner():
    members = scripted_members()
    mean = decode(members, max_tokens=2)
    assert mean.output == "The cat"
    heavy_b = [members[0], Member("b", members[1].provider, weight=5.0), members[2]]
    assert decode(heavy_b, max_tokens=2).output == "The dog"
    assert decode(heavy_b, max_tokens=2, merge="vote").output == "The dog"


def test_gate_skips_confident_positions():
    members = scripted_members()
    loose = decode(members, gate=0.85)
    assert loose.details["summary"]["ensembled_share"] == 0.0
    assert loose.output == "The cat sat on the warm mat by the door"
    strict = decode(members, gate=0.95)
    # every token position is ensembled; the end is not (a remote stop reports no alternatives)
    assert all(step["ensembled"] for step in strict.details["steps"] if step["token"] is not None)
    assert strict.details["summary"]["ensembled_share"] > 0.9
    assert strict.output == decode(members).output


def test_member_without_prefix_support_is_refused_before_any_call():
    # that plain OpenAI cannot continue a prefix is test_openai_provider.py's test_plain_openai_refuses_a_prefix
    no_prefix = Capabilities(max_top_logprobs=5, prefix_continuation=False, honours_n=True)
    (member,) = scripted_members(("a",), capabilities=no_prefix)
    with pytest.raises(CapabilityError, match="member 'a' .* cannot continue an assistant prefix"):
        Committee([member])
    assert member.provider.requests == []


def test_probe_excludes_a_member_that_restarts_the_answer():
    def restarts(request):
        return SCRIPTS["b"](request.but(prefix=""))  # the prefix ignored: the answer starts over

    members = scripted_members(("a",)) + [Member("b", ScriptedProvider(default=restarts, model="b"))]
    notes = []
    committee = Committee(members, CommitteeSettings(), 10)
    result = run_strategy(committee, ITEM, notes.append)
    assert any("excluding member 'b'" in n.message and "restarts" in n.message for n in notes)
    assert [g["members"] for g in result.details["groups"]] == [["a"]]
    assert result.details["excluded"] == ["b"]
    probes = {p["member"]: p for p in result.details["probes"]}
    assert probes["a"]["ok"] and probes["a"]["top_alternatives"] == 5  # the chosen piece, 3 others, the end
    assert not probes["b"]["ok"] and "restarts" in probes["b"]["reason"]
    assert result.output == "The cat sat on the warm mat by the door"


def test_probe_refuses_placeholder_logprobs():
    def placeholders(request):
        said = SCRIPTS["a"](request)
        zero = tuple(replace(t, logprob=0.0, top=tuple(replace(a, logprob=0.0) for a in t.top)) for t in said.tokens)
        return replace(said, tokens=zero)

    with pytest.raises(CapabilityError, match="placeholders"):
        decode([Member("a", ScriptedProvider(default=placeholders, model="a"))])


def test_stop_string_ends_the_answer():
    result = decode(scripted_members(("a",)), stop=[" warm"])
    assert result.output == "The cat sat on the" and result.details["finish_reason"] == "stop"


@pytest.mark.embedded
def test_two_local_models_merge_on_text(local_provider, tmp_path):
    import shutil

    from ensemble_cli.providers.local import LocalProvider

    copy = tmp_path / "copy.gguf"
    shutil.copy(local_provider.engine.path, copy)
    other = LocalProvider(str(copy))
    assert other.engine is not local_provider.engine  # a second model: its own pool and vocabulary
    (greedy,) = asyncio.run(local_provider.complete(Request(ITEM.messages, max_tokens=20)))
    result = decode([Member("a", local_provider), Member("b", other)], max_tokens=20)
    assert len(result.details["groups"]) == 2
    assert result.output == greedy.text  # two copies of one model agree with its greedy decoding
    assert all(step["agreement"] == 1.0 for step in result.details["steps"])


def test_gate_with_draft_equals_gate_stepwise():
    members = scripted_members()
    stepwise = decode(members, gate=0.8)
    drafted = decode(members, gate=0.8, draft=6)
    assert drafted.output == stepwise.output
    assert [s["ensembled"] for s in drafted.details["steps"]] == [s["ensembled"] for s in stepwise.details["steps"]]
    assert drafted.tally.calls < stepwise.tally.calls


# the CLI end to end over HTTP: a real server's reply without logprobs, the exit code, the calls made
def test_committee_probe_catches_a_server_without_logprobs(fake_server):
    server = fake_server({"a": ScriptedModel("The cat sat")})
    chat = server._chat

    def without_logprobs(body, call_index):
        reply = chat(body, call_index)
        for choice in reply["choices"]:
            choice.pop("logprobs", None)
        return reply

    server._chat = without_logprobs
    result = CliRunner().invoke(app, ["committee", "-p", "hi", "--provider", "vllm", "--model", "a", "--base-url",
                                      server.base_url])
    assert result.exit_code == 2, result.stderr
    assert "no log-probabilities came back" in result.stderr
    assert "no token and no stop" not in result.stderr
    assert server.calls == 1  # the probe's first call, nothing after it


@pytest.mark.embedded
def test_gate_never_costs_more_calls_and_is_noted_once(tmp_path):
    def run(*extra: str):
        out = tmp_path / f"out{'-'.join(extra)}.jsonl"
        result = CliRunner().invoke(app, ["committee", "-p", "Name a colour.", "--n", "2", "-t", "0.5",
                                          "--max-tokens", "8", "-o", str(out), *extra])
        assert result.exit_code == 0, result.stderr
        return json.loads(out.read_text())["usage"]["calls"], result.stderr

    plain_calls, _ = run()
    gated_calls, gated_err = run("--gate", "0.5")
    drafted_calls, drafted_err = run("--draft", "4")
    assert gated_calls <= plain_calls and drafted_calls <= plain_calls
    assert gated_err.count("--gate does nothing here") == 1
    assert drafted_err.count("--draft") == 1 and "does nothing" in drafted_err
