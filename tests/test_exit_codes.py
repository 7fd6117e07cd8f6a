"""The README's exit codes for every command (4, 3, 2, 5), --quiet still showing errors, serve on a taken port."""

from __future__ import annotations

import json
import socket

import pytest
from fake_server import AnyStrategy
from typer.testing import CliRunner

from conftest import COMMANDS, PER_COMMAND, batch, closed_port, no_traceback, records, remote_flags
from ensemble_cli.cli import app

runner = CliRunner()


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


@pytest.mark.parametrize("command", COMMANDS)
def test_unreachable_server_exits_4(command):
    result = invoke(command, "-p", "what is 2 + 2?", *PER_COMMAND.get(command, []),
                    *remote_flags(f"http://127.0.0.1:{closed_port()}/v1"))
    assert result.exit_code == 4, result.stderr
    assert "could not connect" in result.stderr
    no_traceback(result)


@pytest.mark.parametrize("command", COMMANDS)
def test_rejected_key_exits_3_and_stops_the_batch_at_once(command, fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()}, api_key="the-right-key-000")
    out = tmp_path / "out.jsonl"
    result = invoke(command, "--input", str(batch(tmp_path)), "-o", str(out), "-q", "--parallel-prompts", "1",
                    "--api-key-env", "MY_KEY", *PER_COMMAND.get(command, []), *remote_flags(server.base_url),
                    env={"MY_KEY": "a-wrong-key-1111"})
    assert result.exit_code == 3, result.stderr
    no_traceback(result)
    assert server.calls >= 1
    asked = {p for r in server.requests for p in (f"PROMPT-{i}" for i in range(5)) if p in json.dumps(r["body"])}
    assert asked == {"PROMPT-0"}, asked  # the first prompt's calls only, not one per prompt
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("ensemble: ") for line in lines)  # -q: errors only
    assert "401" in result.stderr or "rejected" in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_config_error_exits_2_before_any_call(command, fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    config = tmp_path / "run.yaml"
    config.write_text("bogus_key: 1\n")
    result = invoke(command, "--config", str(config), "-p", "x", *remote_flags(server.base_url))
    assert result.exit_code == 2 and f"{config}: bogus_key: unknown key" in result.stderr
    assert server.calls == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_partial_batch_exits_5_and_quiet_still_shows_the_failures(command, fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    server.fail_when = lambda body: "PROMPT-1" in json.dumps(body)
    out = tmp_path / "out.jsonl"
    result = invoke(command, "--input", str(batch(tmp_path, 3)), "-o", str(out), "-q",
                    *PER_COMMAND.get(command, []), *remote_flags(server.base_url))
    assert result.exit_code == 5, result.stderr
    no_traceback(result)
    written = {r["id"]: r for r in records(out.read_text())}
    assert written["id1"]["status"] == "error" and written["id0"]["status"] == "ok" == written["id2"]["status"]
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("ensemble: ") for line in lines), lines  # nothing but errors under -q
    assert any("id1" in line for line in lines)  # the failed prompt
    assert lines[-1] == f"ensemble: error: 1 of 3 prompts failed; records are in {out}"


@pytest.mark.parametrize("command", COMMANDS)
def test_quiet_single_prompt_failure_still_prints_its_line(command, fake_server):
    server = fake_server({"a": AnyStrategy()})
    server.fail_when = lambda body: True
    result = invoke(command, "-p", "what is 2 + 2?", "-q", *PER_COMMAND.get(command, []),
                    *remote_flags(server.base_url))
    assert result.exit_code == 4, result.stderr
    assert "HTTP 500" in result.stderr and result.stdout == ""
    assert all(line.startswith("ensemble: ") for line in result.stderr.strip().splitlines())


@pytest.mark.embedded
def test_serve_on_a_taken_port_exits_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = invoke("serve", "--raw", "--port", str(port))
    assert result.exit_code == 2 and f"127.0.0.1:{port} is already in use; pass another --port" in result.stderr
    no_traceback(result)
