"""Records and --resume: what resume skips, a file cut mid-character, SIGTERM then resume, a record reruns its run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import yaml
from fake_server import ReplyModel, ScriptedModel
from typer.testing import CliRunner

from conftest import batch, echo, records
from ensemble_cli.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_resume_checks_strategy_and_settings(fake_server, tmp_path):
    server = fake_server({"a": ScriptedModel("The answer is 4")})
    prompts = batch(tmp_path, 2, "name a colour")
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


def test_resumed_output_cut_inside_a_multibyte_character_is_repaired(tmp_path, cat_server):
    _, args = cat_server
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n" for i in "xy"))
    out = tmp_path / "out.jsonl"
    first = invoke("committee", "--input", str(prompts), "-o", str(out), *args)
    assert first.exit_code == 0, first.stderr
    done = {r["id"]: r for r in records(out.read_text())}
    cut = json.dumps({**done["y"], "output": "caf\u00e9"}, ensure_ascii=False).encode("utf-8")
    cut = cut[: cut.index(b"\xc3") + 1]  # killed inside the two bytes of "é"
    out.write_bytes(json.dumps(done["x"]).encode() + b"\n" + cut)
    again = invoke("committee", "--input", str(prompts), "-o", str(out), "--resume", *args)
    assert again.exit_code == 0, again.stderr
    assert "Traceback" not in again.stderr and "resume: skipping 1 prompt already" in again.stderr
    data = out.read_bytes()
    assert data.startswith(json.dumps(done["x"]).encode() + b"\n" + cut + b"\n")  # left in place, new line after
    tail = records(data[len(json.dumps(done["x"])) + 1 + len(cut) + 1:].decode())
    assert [(r["id"], r["status"]) for r in tail] == [("y", "ok")]


def test_sigterm_keeps_records_and_resume_completes(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(echo)}, latency=0.4)
    out = tmp_path / "out.jsonl"
    prompts = batch(tmp_path, 4, "name a colour")
    args = [sys.executable, "-m", "ensemble_cli", "moa", "--input", str(prompts), "--layers", "1",
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
