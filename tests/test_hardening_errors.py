"""Issue #10, errors: the README's exit codes for every command, ``--quiet`` keeping errors, messages that
name the right flag and member, validation before any model loads, and secrets on every path out.

Every command runs against the fake server (``--provider vllm``); no test loads the embedded model.
"""

from __future__ import annotations

import json
import socket

import pytest
from fake_server import Fault, ReplyModel, ScriptedModel
from typer.testing import CliRunner

from ensemble_cli.cli import app

COMMANDS = ["committee", "vote", "moa", "cot-decode", "verbalize", "cascade"]
PER_COMMAND = {"moa": ["--layers", "1"], "vote": ["--extract", "number"],
               "cascade": ["--extract", "number", "--tier", "{strategy: vote}", "--tier", "{strategy: vote, n: 2}"]}
runner = CliRunner()

VERBALIZED = ("<response><text>Joke 4 one.</text><probability>0.6</probability></response>\n"
              "<response><text>Joke 4 two.</text><probability>0.4</probability></response>")


class AnyStrategy:
    """A toy model every strategy can use: tagged candidates when asked to verbalize (continuing the
    reply's prefix), else 'The answer is 4' piece by piece (so committee's probe and cot-decode's
    branches continue exactly)."""

    scripted = ScriptedModel("The answer is 4")

    def generate(self, ctx, max_tokens):
        if "<probability>" in ctx.user or "<response>" in ctx.user:
            rest = VERBALIZED[len(ctx.prefix):] if VERBALIZED.startswith(ctx.prefix) else VERBALIZED
            return ReplyModel(lambda _: rest, confidence=0.9).generate(ctx, max_tokens)
        return self.scripted.generate(ctx, max_tokens)


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remote(url: str, *extra: str) -> list[str]:
    return ["--provider", "vllm", "--model", "a", "--base-url", url, "--max-retries", "0", "--max-tokens", "8", *extra]


def batch(tmp_path, count: int = 5):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"id{i}", "prompt": f"PROMPT-{i} what is 2 + 2?"}) + "\n"
                               for i in range(count)))
    return prompts


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr


# 12: the exit-code table, per command


@pytest.mark.parametrize("command", COMMANDS)
def test_unreachable_server_exits_4(command):
    result = invoke(command, "-p", "what is 2 + 2?", *PER_COMMAND.get(command, []),
                    *remote(f"http://127.0.0.1:{closed_port()}/v1"))
    assert result.exit_code == 4, result.stderr
    assert "could not connect" in result.stderr
    no_traceback(result)


@pytest.mark.parametrize("command", COMMANDS)
def test_rejected_key_exits_3_and_stops_the_batch_at_once(command, fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()}, api_key="the-right-key-000")
    out = tmp_path / "out.jsonl"
    result = invoke(command, "--input", str(batch(tmp_path)), "-o", str(out), "-q", "--parallel-prompts", "1",
                    "--api-key-env", "MY_KEY", *PER_COMMAND.get(command, []), *remote(server.base_url),
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
    result = invoke(command, "--config", str(config), "-p", "x", *remote(server.base_url))
    assert result.exit_code == 2 and f"{config}: bogus_key: unknown key" in result.stderr
    assert server.calls == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_partial_batch_exits_5_and_quiet_still_shows_the_failures(command, fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    server.fail_when = lambda body: "PROMPT-1" in json.dumps(body)
    out = tmp_path / "out.jsonl"
    result = invoke(command, "--input", str(batch(tmp_path, 3)), "-o", str(out), "-q",
                    *PER_COMMAND.get(command, []), *remote(server.base_url))
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
    result = invoke(command, "-p", "what is 2 + 2?", "-q", *PER_COMMAND.get(command, []), *remote(server.base_url))
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


# 13: messages name the right member; every setting is checked before a model loads


def test_errors_name_the_member_that_failed_once(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "4"), "bad": ReplyModel(lambda ctx: "never")})
    server.fail_when = lambda body: body.get("temperature") == 0.7
    out = tmp_path / "out.jsonl"
    result = invoke("moa", "-p", "q", "--n", "3", "--layers", "1", "--quorum", "1.0", "-o", str(out),
                    *remote(server.base_url))
    (record,) = records(out.read_text())
    text = result.stderr + json.dumps(record)
    assert "member 'm#2'" in text, text
    assert "member 'm#1'" not in text and "member 'm#3'" not in text
    assert not any("member 'm#2': member" in e for e in record["errors"])
    assert "'m#2': member 'm#" not in text


@pytest.mark.parametrize(("command", "flags", "message"), [
    ("vote", ["--extract", "nonsense"], "extract"),
    ("vote", ["--extract", "regex:("], "regex"),
    ("cot-decode", ["--extract", "json:"], "extract"),
    ("cot-decode", ["--k", "0"], "k must be 'auto' or a number of branches from 1 to 20"),
    ("cot-decode", ["--k", "many"], "k"),
    ("cot-decode", ["--template", "no question here"], "{question}"),
    ("verbalize", ["--variant", "multi", "--total", "2", "--k", "5"], "total"),
    ("committee", ["--gate", "1.5"], "gate"),
    ("moa", ["--quorum", "0"], "quorum"),
])
def test_bad_settings_fail_before_the_model_loads(command, flags, message, monkeypatch):
    import ensemble_cli.providers.local as local

    def no_loading(*_a, **_k):
        raise AssertionError("the model was loaded before the settings were checked")

    monkeypatch.setattr(local, "engine_at", no_loading)
    monkeypatch.setattr(local, "engine_for", no_loading)
    result = invoke(command, "-p", "x", *flags)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and result.stderr.startswith("ensemble: error: ")
    no_traceback(result)


# 14: a reply that says it will never succeed is not retried, through the CLI


def test_non_transient_500_is_not_retried(fake_server):
    server = fake_server({"a": AnyStrategy()})
    body = {"error": {"message": "Llama model must be created with embedding=True to call this method"}}
    server.faults.extend(Fault("status", 500, body=body) for _ in range(6))
    result = invoke("moa", "-p", "q", "--layers", "1", "--provider", "vllm", "--model", "a", "--base-url",
                    server.base_url, "--max-retries", "4", "--n", "1")
    assert result.exit_code == 4, result.stderr
    assert server.calls == 1 and "embedding=True" in result.stderr
    assert "retries" not in result.stderr.split("embedding=True")[0]


def test_providers_do_not_claim_embeddings_for_llamacpp():
    from ensemble_cli.cli.providers_cmd import rows

    assert next(r for r in rows() if r["name"] == "llamacpp")["capabilities"]["embeddings"] is False


# 15: flags for timeout, retries and prompts in flight reach the config; errors name them


def test_timeout_retries_and_parallel_prompts_flags_reach_the_run(fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    out = tmp_path / "out.jsonl"
    server.faults.extend([Fault("status", 503), Fault("status", 503)])
    result = invoke("moa", "--input", str(batch(tmp_path, 1)), "--layers", "1", "-o", str(out),
                    "--provider", "vllm", "--model", "a", "--base-url", server.base_url,
                    "--max-retries", "1", "--timeout", "5", "--parallel-prompts", "2")
    assert result.exit_code == 4, result.stderr
    assert server.calls == 2  # one call and the one retry --max-retries 1 allows
    assert "--max-retries" in result.stderr


def test_timeout_error_names_the_flag(fake_server):
    server = fake_server({"a": AnyStrategy()})
    server.faults.append(Fault("hang", seconds=2.0))
    result = invoke("moa", "-p", "q", "--layers", "1", *remote(server.base_url), "--timeout", "0.3")
    assert result.exit_code == 4, result.stderr
    assert "--timeout" in result.stderr and "timeout or max_retries" not in result.stderr.replace("(--timeout)", "")


# 16: a key never leaves the process, whatever the server echoes or the user mistypes


SECRET = "zq7-THE-REAL-KEY-0123456789"  # not key-shaped: only registration can hide it


@pytest.mark.parametrize("traceback", [False, True])
def test_key_echoed_by_a_401_is_hidden_everywhere(traceback, fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()}, api_key="something-else-entirely")
    out = tmp_path / "out.jsonl"
    env = {"MY_KEY": SECRET, "ENSEMBLE_TRACEBACK": "1" if traceback else "0"}
    result = invoke("vote", "-p", "q", "-o", str(out), "--api-key-env", "MY_KEY", *remote(server.base_url), env=env)
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
                    "--api-key-env", "MY_KEY", *remote(server.base_url), env={"MY_KEY": SECRET})
    assert result.exit_code == 5, result.stderr
    text = out.read_text()
    assert "Bearer [REDACTED]" in text and SECRET not in text and SECRET not in result.stderr


def test_key_pasted_as_api_key_env_is_refused_unshown(fake_server):
    server = fake_server({"a": AnyStrategy()})
    for command in COMMANDS:
        result = invoke(command, "-p", "q", "--api-key-env", SECRET, *PER_COMMAND.get(command, []), *remote(server.base_url))
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
                    *remote(url.format(key=SECRET, port=port)))
    assert result.exit_code in (0, 4), result.stderr
    assert SECRET not in result.stderr and SECRET not in result.stdout
    assert SECRET not in out.read_text()
    no_traceback(result)


def test_key_in_a_config_file_value_is_hidden(fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    config = tmp_path / "run.yaml"
    config.write_text(f"api_key_env: {SECRET}\nmembers:\n  - name: x\n    api_key_env: {SECRET}\n")
    result = invoke("moa", "--config", str(config), "-p", "q", *remote(server.base_url))
    assert result.exit_code == 2 and SECRET not in result.stderr
    bad_type = tmp_path / "typed.yaml"
    bad_type.write_text(f"max_tokens: {SECRET}\n")
    typed = invoke("moa", "--config", str(bad_type), "-p", "q", *remote(server.base_url))
    assert typed.exit_code == 2 and "max_tokens" in typed.stderr and SECRET not in typed.stderr
