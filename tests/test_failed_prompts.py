"""A failed prompt's record keeps what was gathered, in every strategy (layers, rounds, steps, paths, turns);
the server's error body says what was gathered; moa.fallback answers where the aggregator fails, marked
degraded in the record and in the server's ``ensemble`` object."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from fake_server import ReplyModel, ScriptedModel
from scripted import ScriptedProvider
from serve_helpers import serve
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.config import load_config
from ensemble_cli.errors import ProviderError
from ensemble_cli.inputs import from_prompt
from ensemble_cli.session import Session
from ensemble_cli.sinks.collect import Collector

runner = CliRunner()
AGGREGATING = "You write the final answer"


def run(strategy: str, provider: ScriptedProvider, **config) -> dict:
    collector = Collector()
    Session(load_config(None, config), provider=provider).run_sync(strategy, [from_prompt("What is 2 + 2?")],
                                                                   [collector])
    (record,) = collector.records
    return record


def failing_after(calls: int, reply: str = "The answer is 4 because two and two make four"):
    """A reply function that answers ``calls`` times, then fails like an unreachable server."""
    made = [0]

    def answer(request) -> str:
        made[0] += 1
        if made[0] > calls:
            raise ProviderError("member 'm': could not connect; is the server up?")
        return reply

    return answer


def test_moa_whose_aggregator_fails_keeps_the_layers():
    def answer(request) -> str:
        if AGGREGATING in request.messages[0].content:
            raise ProviderError("member 'aggregator': could not connect; is the server up?")
        return "Paris."

    record = run("moa", ScriptedProvider(default=answer), n=2, moa={"layers": 2})
    assert record["status"] == "error" and "could not connect" in record["errors"][0]
    details = record["details"]
    assert [len(layer["answers"]) for layer in details["layers"]] == [2, 2]
    assert "could not connect" in details["aggregator_error"]


@pytest.mark.parametrize("fallback", ["vote", {"name": "second", "system": "Answer in one word."}])
def test_moa_fallback_answers_and_is_marked_degraded(fallback):
    def answer(request) -> str:
        system = request.messages[0].content if request.messages[0].role == "system" else ""
        if AGGREGATING in system and "one word" not in system:
            raise ProviderError("member 'aggregator': HTTP 503")
        if "one word" in system:
            return "Paris"
        return "Paris." if "m#1" not in system else "Lyon."

    record = run("moa", ScriptedProvider(default=answer), n=3, moa={"layers": 1, "fallback": fallback})
    assert record["status"] == "ok"
    degraded = record["details"]["degraded"]
    assert "the aggregator 'aggregator' failed: member 'aggregator': HTTP 503" == degraded["reason"]
    if fallback == "vote":
        assert degraded["fallback"] == "vote of the last layer's answers" and record["output"] == "Paris."
    else:
        assert degraded["fallback"] == "aggregator 'second'" and record["output"] == "Paris"
        assert [m["role"] for m in record["members"]][-1] == "fallback"
    assert any("HTTP 503" in error for error in record["errors"])


def test_a_failed_fallback_fails_the_prompt_with_the_layers_kept():
    def answer(request) -> str:
        if AGGREGATING in request.messages[0].content:
            raise ProviderError("down")
        return "Paris."

    record = run("moa", ScriptedProvider(default=answer), n=2,
                 moa={"layers": 1, "fallback": {"name": "second"}})
    assert record["status"] == "error" and record["details"]["layers"][0]["answers"]


def test_vote_whose_second_round_loses_its_quorum_keeps_both_rounds():
    def answer(request) -> str:
        if "Other agents answered" in request.messages[-1].content:
            raise ProviderError("member: could not connect")
        return "4" if request.messages[0].content == "A" else "5"

    record = run("vote", ScriptedProvider(default=answer), members=[{"name": "a", "system": "A"},
                                                                    {"name": "b", "system": "B"}],
                 vote={"rounds": 2, "extract": "number"})
    assert record["status"] == "error"
    details = record["details"]
    assert details["rounds"][0]["agreement"] == 0.5 and len(details["rounds"][0]["replies"]) == 2
    assert details["round"] == 2 and details["failed"] and details["replies"] == []


def test_committee_that_fails_mid_answer_keeps_the_steps_so_far():
    provider = ScriptedProvider(default=failing_after(6))
    record = run("committee", provider, max_tokens=20, members=[{"name": "a"}, {"name": "b", "system": "S"}])
    assert record["status"] == "error"
    details = record["details"]
    assert details["steps"] and details["text"].startswith("The")
    assert [probe["ok"] for probe in details["probes"]] == [True, True]


def test_cot_decode_that_fails_mid_path_keeps_the_paths():
    provider = ScriptedProvider(default=failing_after(2))
    record = run("cot-decode", provider, max_tokens=8, **{"cot-decode": {"k": 2}})
    assert record["status"] == "error"
    assert len(record["details"]["paths"]) == 2 and record["details"]["first_token_candidates"]


def test_verbalize_whose_second_turn_fails_keeps_the_first():
    listing = "<response><text>one</text><probability>0.5</probability></response>"
    provider = ScriptedProvider(default=failing_after(1, listing))
    record = run("verbalize", provider, verbalize={"k": 3})
    assert record["status"] == "error"
    assert record["details"]["turns"][0]["reply"].endswith("</response>")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_cli_records_the_layers_when_the_aggregator_is_unreachable(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "Paris.")})
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["moa", "-p", "Capital of France?", "--provider", "vllm", "--model", "a",
                                 "--base-url", server.base_url, "--max-retries", "0", "--n", "2", "--layers", "1",
                                 "--aggregator-provider", "vllm", "--aggregator-model", "a", "-o", str(out), "-q"])
    assert result.exit_code == 0  # the aggregator shares the reachable server here: a baseline
    config = tmp_path / "run.yaml"
    config.write_text(f"moa:\n  layers: 1\n  aggregator: {{provider: vllm, model: a, base_url: "
                      f"'http://127.0.0.1:{closed_port()}/v1'}}\n")
    result = runner.invoke(app, ["moa", "-c", str(config), "-p", "Capital of Spain?", "--provider", "vllm",
                                 "--model", "a", "--base-url", server.base_url, "--max-retries", "0", "--n", "2",
                                 "-o", str(out), "-q"])
    assert result.exit_code == 4 and "could not connect" in result.stderr
    failed = [json.loads(line) for line in out.read_text().splitlines()][-1]
    assert failed["status"] == "error" and len(failed["details"]["layers"][0]["answers"]) == 2


def test_the_server_error_body_says_what_was_gathered_and_degraded_answers_say_so(fake_server, tmp_path):
    upstream = fake_server({"a": ScriptedModel("Paris is the capital .")})
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    base = {"strategy": "moa", "provider": "vllm", "model": "a", "base_url": upstream.base_url, "max_retries": 0,
            "n": 2, "moa": {"layers": 1, "aggregator": {"base_url": dead}}}
    configs = {"broken": base, "rescued": {**base, "moa": {**base["moa"], "fallback": "vote"}}}
    ask = {"messages": [{"role": "user", "content": "Capital of France?"}]}
    with serve(tmp_path / "ensembles", configs) as url:
        failed = httpx.post(f"{url}/v1/chat/completions", json={"model": "broken", **ask}, timeout=30)
        rescued = httpx.post(f"{url}/v1/chat/completions", json={"model": "rescued", **ask}, timeout=30)
    assert failed.status_code == 502
    gathered = failed.json()["ensemble"]["gathered"]
    assert len(gathered["layers"][0]["answers"]) == 2 and "could not connect" in gathered["aggregator_error"]
    assert rescued.status_code == 200
    extension = rescued.json()["ensemble"]
    assert extension["degraded"] is True and "could not connect" in extension["degraded_reason"]
    assert rescued.json()["choices"][0]["message"]["content"] == "Paris is the capital ."
