"""A key never leaves the process: not by a 401's echo, a failed record, a traceback, a base URL or a config value."""

from __future__ import annotations

import json

import pytest
from fake_server import AnyStrategy
from typer.testing import CliRunner

from conftest import COMMANDS, PER_COMMAND, batch, closed_port, no_traceback, remote_flags
from ensemble_cli.cli import app

SECRET = "zq7-THE-REAL-KEY-0123456789"  # not key-shaped: only registration can hide it
runner = CliRunner()


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


@pytest.mark.parametrize("traceback", [False, True])
def test_key_echoed_by_a_401_is_hidden_everywhere(traceback, fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()}, api_key="something-else-entirely")
    out = tmp_path / "out.jsonl"
    env = {"MY_KEY": SECRET, "ENSEMBLE_TRACEBACK": "1" if traceback else "0"}
    result = invoke("vote", "-p", "q", "-o", str(out), "--api-key-env", "MY_KEY", *remote_flags(server.base_url),
                    env=env)
    assert result.exit_code == 3
    assert server.headers_seen[0]["authorization"] == f"Bearer {SECRET}"  # the server did get (and echo) it
    assert SECRET not in result.stderr and SECRET not in result.stdout
    assert not out.exists() or SECRET not in out.read_text()
    assert ("Traceback" in result.stderr) is traceback and "[REDACTED]" in result.stderr


def test_key_echoed_into_a_failed_record_is_hidden(fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    server.fail_when = lambda body: "PROMPT-1" in json.dumps(body)
    out = tmp_path / "out.jsonl"
    original = server.handle

    def echoing(path, body, headers, fault, call_index):
        if fault is not None:
            fault.body = {"error": {"message": f"bad request for {headers.get('authorization')}"}}
        return original(path, body, headers, fault, call_index)

    server.handle = echoing
    result = invoke("moa", "--input", str(batch(tmp_path, 2)), "--layers", "1", "-o", str(out),
                    "--api-key-env", "MY_KEY", *remote_flags(server.base_url), env={"MY_KEY": SECRET})
    assert result.exit_code == 5, result.stderr
    text = out.read_text()
    assert "Bearer [REDACTED]" in text and SECRET not in text and SECRET not in result.stderr


def test_key_pasted_as_api_key_env_is_refused_unshown(fake_server):
    server = fake_server({"a": AnyStrategy()})
    for command in COMMANDS:
        result = invoke(command, "-p", "q", "--api-key-env", SECRET, *PER_COMMAND.get(command, []),
                        *remote_flags(server.base_url))
        assert result.exit_code == 2, result.stderr
        assert "must be the NAME of an environment variable" in result.stderr and SECRET not in result.stderr
    assert server.calls == 0


@pytest.mark.parametrize("url", [
    "http://user:{key}@127.0.0.1:{port}/v1",
    "http://{key}@127.0.0.1:{port}/v1",
    "http://127.0.0.1:{port}/v1?api_key={key}",
])
@pytest.mark.parametrize("reachable", [True, False])
def test_key_inside_the_base_url_is_hidden(url, reachable, fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    port = server.base_url.split(":")[2].split("/")[0] if reachable else closed_port()
    out = tmp_path / "out.jsonl"
    result = invoke("moa", "-p", "q", "--layers", "1", "-o", str(out),
                    *remote_flags(url.format(key=SECRET, port=port)))
    assert result.exit_code in (0, 4), result.stderr
    assert SECRET not in result.stderr and SECRET not in result.stdout
    assert SECRET not in out.read_text()
    no_traceback(result)


def test_key_in_a_config_file_value_is_hidden(fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    config = tmp_path / "run.yaml"
    config.write_text(f"api_key_env: {SECRET}\nmembers:\n  - name: x\n    api_key_env: {SECRET}\n")
    result = invoke("moa", "--config", str(config), "-p", "q", *remote_flags(server.base_url))
    assert result.exit_code == 2 and SECRET not in result.stderr
    bad_type = tmp_path / "typed.yaml"
    bad_type.write_text(f"max_tokens: {SECRET}\n")
    typed = invoke("moa", "--config", str(bad_type), "-p", "q", *remote_flags(server.base_url))
    assert typed.exit_code == 2 and "max_tokens" in typed.stderr and SECRET not in typed.stderr
