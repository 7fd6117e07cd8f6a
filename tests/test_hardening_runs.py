"""Issue #10, whole runs against the fake server: concurrency limits, usage against the server's own count,
the committee probe, resume and its fingerprint, SIGTERM, and records that reproduce their run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from fake_server import Fault, ReplyModel, ScriptedModel
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.inputs import from_prompt

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def batch(tmp_path, count: int):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"id{i}", "prompt": f"PROMPT-{i}: name a colour"}) + "\n"
                               for i in range(count)))
    return prompts


def echo(ctx) -> str:
    """A reply that shows the settings it was made with, so that outputs differ when settings do."""
    return f"t={ctx.temperature:g} seed={ctx.seed} sys={ctx.system[:12]!r} q={ctx.user[-24:]!r}"


# 18 (17, 20, 30 are provider tests in test_transport.py / test_openai_provider.py)


def test_moa_holds_max_concurrency_with_streams_in_flight(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(echo)}, latency=0.03, stream_delay=0.01)
    out = tmp_path / "out.jsonl"
    result = invoke("moa", "--input", str(batch(tmp_path, 3)), "--n", "5", "--layers", "3", "--parallel-prompts", "3",
                    "--max-concurrency", "4", "--provider", "vllm", "--model", "a", "--base-url", server.base_url,
                    "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    assert server.calls == 3 * (5 * 3 + 1)
    assert any(r["body"].get("stream") for r in server.requests)  # the aggregators streamed
    assert 2 <= server.max_in_flight <= 4
    assert all(r["status"] == "ok" and r["output"] for r in records(out.read_text()))


# 19, 29: every call is counted in its prompt's record, failed or not, in every role


def test_usage_of_a_run_sums_to_the_servers_own_count(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(echo)})
    served = {"prompt_tokens": 0, "completion_tokens": 0}
    original = server.handle

    def counting(path, body, headers, fault, call_index):
        reply = original(path, body, headers, fault, call_index)
        if reply.status == 200:
            data = b"".join(reply.chunks).decode()
            found = [json.loads(line[6:]) for line in data.splitlines() if line.startswith("data: {")] \
                if data.startswith("data:") else [json.loads(data)]
            for usage in (part.get("usage") for part in found):
                if usage:
                    served["prompt_tokens"] += usage["prompt_tokens"]
                    served["completion_tokens"] += usage["completion_tokens"]
        return reply

    server.handle = counting
    server.fail_when = lambda body: "PROMPT-1" in json.dumps(body)  # every call of prompt 1 fails
    server.faults.extend([Fault("status", 503), Fault("status", 429, headers={"retry-after-ms": "1"})])
    out = tmp_path / "out.jsonl"
    config = tmp_path / "run.yaml"
    config.write_text("max_retries: 1\nparallel_prompts: 1\n")
    result = invoke("moa", "--config", str(config), "--input", str(batch(tmp_path, 3)), "--n", "2", "--layers", "2",
                    "--provider", "vllm", "--model", "a", "--base-url", server.base_url, "-o", str(out), "-q")
    assert result.exit_code == 5, result.stderr
    written = records(out.read_text())
    assert {r["id"]: r["status"] for r in written} == {"id0": "ok", "id1": "error", "id2": "ok"}
    failed = next(r for r in written if r["status"] == "error")
    assert failed["usage"]["calls"] >= 1 and failed["usage"]["retries"] >= 1 and failed["usage"]["failed_calls"] >= 1
    total = {key: sum(r["usage"][key] for r in written) for key in ("calls", "retries", "prompt_tokens",
                                                                     "completion_tokens")}
    assert total["calls"] + total["retries"] == server.calls  # every request: a first attempt or a retry
    assert total["retries"] >= 2
    assert total["prompt_tokens"] == served["prompt_tokens"] > 0
    assert total["completion_tokens"] == served["completion_tokens"] > 0
    ok = next(r for r in written if r["id"] == "id0")
    assert ok["usage"]["calls"] == 2 * 2 + 1  # two layers of two proposers, and the aggregator


# 21: the committee probe finds a server that returns no logprobs


def test_committee_probe_catches_a_server_without_logprobs(fake_server):
    server = fake_server({"a": ScriptedModel("The cat sat")})
    chat = server._chat

    def without_logprobs(body, call_index):
        reply = chat(body, call_index)
        for choice in reply["choices"]:
            choice.pop("logprobs", None)
        return reply

    server._chat = without_logprobs
    result = invoke("committee", "-p", "hi", "--provider", "vllm", "--model", "a", "--base-url", server.base_url)
    assert result.exit_code == 2, result.stderr
    assert "no log-probabilities came back" in result.stderr
    assert "no token and no stop" not in result.stderr
    assert server.calls == 1  # the probe's first call, nothing after it


# 22: resume only skips records of the same strategy and settings; appending warns


def test_resume_checks_strategy_and_settings(fake_server, tmp_path):
    server = fake_server({"a": ScriptedModel("The answer is 4")})
    prompts = batch(tmp_path, 2)
    out = tmp_path / "out.jsonl"
    remote = ["--provider", "vllm", "--model", "a", "--base-url", server.base_url, "--input", str(prompts),
              "-o", str(out)]
    assert invoke("committee", *remote, "--max-tokens", "6").exit_code == 0
    again = invoke("committee", *remote, "--max-tokens", "6")  # no --resume
    assert again.exit_code == 0 and "already holds records of 2 of these prompt ids" in again.stderr
    assert "ids will repeat" in again.stderr
    other_settings = invoke("committee", *remote, "--max-tokens", "5", "--resume")
    assert "re-running 2 prompts" in other_settings.stderr and "written with other settings" in other_settings.stderr
    calls = server.calls
    other_strategy = invoke("vote", *remote, "--max-tokens", "5", "--resume")
    assert other_strategy.exit_code == 0
    assert "re-running 2 prompts" in other_strategy.stderr and "written by committee" in other_strategy.stderr
    assert server.calls > calls
    calls = server.calls
    same = invoke("vote", *remote, "--max-tokens", "5", "--resume")
    assert same.exit_code == 0 and "nothing to do" in same.stderr and server.calls == calls
    strategies = [r["strategy"] for r in records(out.read_text())]
    assert strategies == ["committee"] * 6 + ["vote"] * 2


# 26: SIGTERM ends a run like Ctrl-C: exit 143, one line, records kept, --resume finishes


def test_sigterm_keeps_records_and_resume_completes(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(echo)}, latency=0.4)
    out = tmp_path / "out.jsonl"
    args = [sys.executable, "-m", "ensemble_cli", "moa", "--input", str(batch(tmp_path, 4)), "--layers", "1",
            "--parallel-prompts", "1", "--provider", "vllm", "--model", "a", "--base-url", server.base_url,
            "-o", str(out), "--resume", "-q"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines() == ["ensemble: terminated; records already written are kept; "
                                           "rerun with --resume to continue"]
    kept = records(out.read_text())
    assert 1 <= len(kept) < 4 and all(r["status"] == "ok" for r in kept)
    finished = subprocess.run(args, capture_output=True, text=True, timeout=60, env=os.environ)
    assert finished.returncode == 0, finished.stderr
    done = records(out.read_text())
    assert sorted(r["id"] for r in done) == ["id0", "id1", "id2", "id3"]  # each once
    assert done[: len(kept)] == kept


# 27: a record holds what it takes to reproduce it


def test_a_record_reproduces_its_run_from_its_own_settings(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(echo)})
    out = tmp_path / "out.jsonl"
    result = invoke("moa", "-p", "name a colour", "--n", "3", "--layers", "2", "--seed", "7", "--max-tokens", "40",
                    "--aggregator-temperature", "0.2", "--provider", "vllm", "--model", "a", "--base-url",
                    server.base_url, "-o", str(out), "--no-cache")
    assert result.exit_code == 0, result.stderr
    (record,) = records(out.read_text())
    first_bodies = [(r["body"].get("temperature"), r["body"].get("seed"), r["body"].get("max_tokens")
                     or r["body"].get("max_completion_tokens")) for r in server.requests]
    server.reset_counters()

    settings = record["settings"]
    members = [{k: m[k] for k in ("name", "provider", "model", "base_url", "temperature", "max_tokens", "weight")
                if k in m} | ({"system": m["system"]} if "system" in m else {})
               for m in record["members"]]
    proposers = [m for m, d in zip(members, record["members"]) if d["role"] == "proposer"]
    (aggregator,) = [m for m, d in zip(members, record["members"]) if d["role"] == "aggregator"]
    config = {"seed": settings["seed"], "max_tokens": settings["max_tokens"], "temperature": settings["temperature"],
              "members": proposers, "moa": {**settings["moa"], "aggregator": aggregator}}
    path = tmp_path / "from_record.yaml"
    path.write_text(yaml.safe_dump(config))
    again = invoke("moa", "--config", str(path), "-p", record["input"]["prompt"], "-o", "-", "--no-cache")
    assert again.exit_code == 0, again.stderr
    (rerun,) = records(again.stdout)
    assert rerun["output"] == record["output"]
    assert sorted(map(str, first_bodies)) == sorted(
        str((r["body"].get("temperature"), r["body"].get("seed"),
             r["body"].get("max_tokens") or r["body"].get("max_completion_tokens"))) for r in server.requests)
    assert {m["temperature"] for m in record["members"] if m["role"] == "proposer"} == {0.4, 0.7, 1.0}


# 4: extractors whose key is normalised text output the winning reply's own words


@pytest.mark.parametrize(("extract", "replies", "words", "key"), [
    ("text", ["The Answer Is FOUR.", "the answer is four", "It is five."], "The Answer Is FOUR.", "the answer is four"),
    ("line", ["Thinking...\nParis, France!", "Hmm\nparis, france", "Lyon"], "Paris, France!", "paris, france"),
    ("json:city", ['{"city": "New York"}', 'ok {"city": "new york "}', '{"city": "Boston"}'], '{"city": "New York"}',
     "new york"),  # the object as the winning reply wrote it
    ("regex:ANSWER: (.+)", ["ANSWER: Blue Sky.", "ANSWER: blue sky", "ANSWER: red"], "Blue Sky.", "blue sky"),
])
def test_vote_output_is_the_winning_reply_in_its_own_words(extract, replies, words, key):
    from scripted import ScriptedProvider

    from ensemble_cli.strategies.vote import VoteSettings
    from ensemble_cli.strategies.base import Member
    from ensemble_cli.strategies.vote import Vote

    members = [Member(f"m{i}", ScriptedProvider(reply)) for i, reply in enumerate(replies)]
    result = asyncio.run(Vote(members, VoteSettings(extract=extract)).run(from_prompt("q")))
    details = result.details.model_dump(mode="json") if hasattr(result.details, "model_dump") else result.details
    assert result.output == words
    assert details["winner"] == key and details["winner"] != result.output
