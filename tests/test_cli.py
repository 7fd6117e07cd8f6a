"""The command line: exit codes, stdout as data (id<TAB>output for a batch), stderr messages (never wrapped,
naming the member that failed), flags overriding the config (--no- forms included), records and --resume,
and `python -m ensemble_cli`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fake_server import AnyStrategy, Fault, ReplyModel, ScriptedModel
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.cli.providers_cmd import providers
from conftest import REPO, batch, remote_flags

runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_version_and_providers():
    assert invoke("--version").stdout.startswith("ensemble ")
    listing = invoke("providers")
    assert listing.exit_code == 0 and "DEEPSEEK_API_KEY" in listing.stdout and "vllm" in listing.stdout


@pytest.mark.embedded
def test_config_run_writes_jsonl_to_stdout_only():
    result = invoke("committee", "--config", str(REPO / "configs/committee.yaml"), "--max-tokens", "6", "-o", "-")
    assert result.exit_code == 0, result.stderr
    (record,) = records(result.stdout)
    assert record["strategy"] == "committee" and record["status"] == "ok"
    assert record["input"] == {"prompt": "Explain in one sentence why the sky is blue."}
    assert record["details"]["summary"]["tokens"] <= 6
    assert [m["name"] for m in record["members"]] == ["plain", "teacher", "terse"]
    assert record["members"][2]["weight"] == 0.5
    assert record["usage"]["calls"] >= 1 and record["schema"] == 2 and record["run_id"]
    assert record["settings"]["max_tokens"] == 6 and record["settings"]["committee"]["merge"] == "mean"
    assert len(record["fingerprint"]) == 16


def test_unknown_key_is_one_line_exit_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("committee:\n  mergee: vote\n")
    result = invoke("committee", "--config", str(config), "--prompt", "hi")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"ensemble: error: {config}: committee.mergee: unknown key; did you mean 'merge'?"
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_flag_value_exit_2():
    result = invoke("committee", "--prompt", "hi", "--merge", "median")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("ensemble: error: --merge: ")  # the flag, as the CLI names it


def test_missing_api_key_exit_3():
    result = invoke("committee", "--prompt", "hi", "--provider", "deepseek", "--model", "deepseek-chat", env={"DEEPSEEK_API_KEY": ""})
    assert result.exit_code == 3
    assert "set the environment variable DEEPSEEK_API_KEY" in result.stderr and "with --api-key-env" in result.stderr


def test_provider_without_prefix_is_refused(fake_server):
    server = fake_server({"a": ScriptedModel("hello there")})
    result = invoke("committee", "--prompt", "hi", "--provider", "openai", "--model", "a",
                    "--base-url", server.base_url, env={"OPENAI_API_KEY": "sk-x"})
    assert result.exit_code == 2 and "member 'm' (openai, a) cannot continue an assistant prefix" in result.stderr
    assert server.calls == 0


@pytest.mark.embedded
def test_flags_override_config(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("prompt: from config\nmax_tokens: 40\ncommittee:\n  merge: product\n")
    result = invoke("committee", "--config", str(config), "--prompt", "from flag", "--max-tokens", "3",
                    "--merge", "vote", "-o", "-")
    (record,) = records(result.stdout)
    assert record["input"]["prompt"] == "from flag"
    assert record["details"]["merge"] == "vote" and record["details"]["summary"]["tokens"] <= 3


def test_api_key_never_reaches_records_or_stderr(fake_server, tmp_path):
    secret = "sk-very-secret-value-123"
    server = fake_server({"a": ScriptedModel("The cat sat")}, api_key=secret)
    out = tmp_path / "out.jsonl"
    result = invoke("committee", "--prompt", "hi", "--provider", "llamacpp", "--model", "a", "--base-url",
                    server.base_url, "--api-key-env", "MY_KEY", "-o", str(out), env={"MY_KEY": secret})
    assert result.exit_code == 0, result.stderr
    assert records(out.read_text())[0]["output"] == "The cat sat"
    assert server.headers_seen[0]["authorization"] == f"Bearer {secret}"
    assert secret not in out.read_text() and secret not in result.stderr and secret not in result.stdout


def test_batch_resume_after_interruption(tmp_path, fake_server):
    server = fake_server({"a": ScriptedModel("The cat sat")})
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n" for i in ("x", "y", "z")))
    out = tmp_path / "out.jsonl"
    args = ["committee", "--input", str(prompts), "--provider", "vllm", "--model", "a", "--base-url",
            server.base_url, "-o", str(out), "--resume"]
    first = invoke("committee", "-p", "q", *args[3:-1])  # learn this run's fingerprint
    fingerprint = records(out.read_text())[0]["fingerprint"]
    done = {"schema": 2, "strategy": "committee", "fingerprint": fingerprint, "id": "x", "status": "ok",
            "output": "earlier"}
    out.write_text(json.dumps(done) + "\n" + '{"schema": 2, "id": "y", "sta')  # killed mid-write
    assert first.exit_code == 0
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == json.dumps(done)  # earlier record untouched
    parsed = [json.loads(line) for line in lines[2:]]
    assert sorted(r["id"] for r in parsed) == ["y", "z"] and all(r["status"] == "ok" for r in parsed)
    again = invoke(*args)
    assert again.exit_code == 0 and "nothing to do" in again.stderr
    assert len(out.read_text().splitlines()) == len(lines)


def test_failed_prompt_is_recorded_and_exit_is_partial(tmp_path, fake_server):
    server = fake_server({"a": ScriptedModel("The cat sat")})
    server.fail_when = lambda body: body["messages"][0]["content"] == "bad"
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "1", "prompt": "good"}) + "\n" + json.dumps({"id": "2", "prompt": "bad"}) + "\n")
    config = tmp_path / "run.yaml"
    config.write_text("max_retries: 0\nparallel_prompts: 1\n")
    out = tmp_path / "out.jsonl"
    result = invoke("committee", "--config", str(config), "--input", str(prompts), "--provider", "vllm",
                    "--model", "a", "--base-url", server.base_url, "-o", str(out))
    written = {r["id"]: r for r in records(out.read_text())}
    assert written["1"]["status"] == "ok" and written["1"]["output"] == "The cat sat"
    assert written["2"]["status"] == "error" and "HTTP 500" in written["2"]["errors"][0]
    assert written["2"]["output"] is None
    assert result.exit_code == 5 and "1 of 2 prompts failed" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "prompts.jsonl:1: not valid JSON"),
        ('{"prompt": "a\n', "prompts.jsonl:1: not valid JSON (Unterminated string starting at column 12);"),
        ('{"id": 1}\n', "prompts.jsonl:1: needs a string 'prompt' or a 'messages' list"),
        ('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n', "prompts.jsonl:2: duplicate id '1'"),
    ],
)
def test_bad_input_lines(tmp_path, content, message):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(content)
    result = invoke("committee", "--input", str(prompts))
    assert result.exit_code == 2 and message in result.stderr


@pytest.mark.embedded
def test_prompt_and_input_from_stdin():
    result = runner.invoke(app, ["committee", "--input", "-", "--max-tokens", "2", "-o", "-", "-q"],
                           input=json.dumps({"id": "s", "messages": [{"role": "user", "content": "Hi"}]}) + "\n")
    (record,) = records(result.stdout)
    assert record["id"] == "s" and record["input"] == {"prompt": "Hi"}
    assert result.stderr == ""


def test_interrupt_keeps_written_records_and_resume_finishes(tmp_path, fake_server, monkeypatch):
    from ensemble_cli.strategies.committee import Committee

    server = fake_server({"a": ScriptedModel("The cat sat")})
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n" for i in "123"))
    config = tmp_path / "run.yaml"
    config.write_text("parallel_prompts: 1\n")
    out = tmp_path / "out.jsonl"
    args = ["committee", "--config", str(config), "--input", str(prompts), "--provider", "vllm", "--model", "a",
            "--base-url", server.base_url, "-o", str(out), "--resume"]
    original = Committee.run

    async def interrupted(self, item, emit=None, tally=None):
        if item.id == "2":
            raise KeyboardInterrupt
        return await original(self, item, emit, tally)

    monkeypatch.setattr(Committee, "run", interrupted)
    result = invoke(*args)
    assert result.exit_code == 130 and "rerun with --resume" in result.stderr
    assert [r["id"] for r in records(out.read_text())] == ["1"]
    monkeypatch.setattr(Committee, "run", original)
    assert invoke(*args).exit_code == 0
    assert sorted(r["id"] for r in records(out.read_text())) == ["1", "2", "3"]


def test_prompt_item_rewords_only_the_last_user_message():
    from ensemble_cli.inputs import PromptItem
    from ensemble_cli.calls import Message

    item = PromptItem("x", (Message("system", "S"), Message("user", "hi"), Message("assistant", "yo"), Message("user", "hi")))
    assert item.text == "hi"
    assert item.asking("Q: hi") == (Message("system", "S"), Message("user", "hi"), Message("assistant", "yo"),
                                    Message("user", "Q: hi"))


def test_single_prompt_provider_failure_exits_4(tmp_path, fake_server):
    from fake_server import ReplyModel

    server = fake_server({"p": ReplyModel(lambda ctx: "an answer"), "bad": ReplyModel(lambda ctx: "never")})
    server.fail_when = lambda body: body["model"] == "bad"
    config = tmp_path / "moa.yaml"
    config.write_text(f"max_retries: 0\nprovider: vllm\nbase_url: {server.base_url}\nmodel: p\n"
                      "moa:\n  layers: 1\n  aggregator: {model: bad}\n")
    out = tmp_path / "out.jsonl"
    result = invoke("moa", "--config", str(config), "--prompt", "q", "-o", str(out))
    assert result.exit_code == 4 and "HTTP 500" in result.stderr
    (record,) = records(out.read_text())
    assert record["status"] == "error" and record["output"] is None and "HTTP 500" in record["errors"][0]


@pytest.mark.embedded
def test_resume_needs_an_output_file():
    for extra in ([], ["-o", "-"]):
        result = invoke("committee", "--prompt", "hi", "--resume", *extra)
        assert result.exit_code == 2 and "--resume reads the records already written" in result.stderr


def test_errors_name_the_member_that_failed_once(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "4"), "bad": ReplyModel(lambda ctx: "never")})
    server.fail_when = lambda body: body.get("temperature") == 0.7
    out = tmp_path / "out.jsonl"
    result = invoke("moa", "-p", "q", "--n", "3", "--layers", "1", "--quorum", "1.0", "-o", str(out),
                    *remote_flags(server.base_url))
    (record,) = records(out.read_text())
    text = result.stderr + json.dumps(record)
    assert "member 'm#2'" in text, text
    assert "member 'm#1'" not in text and "member 'm#3'" not in text
    assert not any("member 'm#2': member" in e for e in record["errors"])
    assert "'m#2': member 'm#" not in text


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


@pytest.mark.parametrize(("command", "key", "flag"), [
    ("committee", "resume", "--no-resume"),
    ("committee", "quiet", "--no-quiet"),
    ("committee", "committee.trace", "--no-trace"),
    ("moa", "moa.shuffle_references", "--no-shuffle-references"),
    ("cot-decode", "cot-decode.aggregate", "--no-aggregate"),
    ("cot-decode", "cot-decode.raw", "--no-raw"),
    ("verbalize", "display.show_all", "--no-all"),
])
def test_no_flags_switch_off_a_yaml_true(command, key, flag, tmp_path, monkeypatch):
    seen = {}

    def capture(strategy, path, common, settings, display=None, dry_run=False):
        from ensemble_cli.cli.common import flag_overrides
        from ensemble_cli.config import deep_merge, load_config

        overrides = deep_merge(flag_overrides(common), {strategy: settings})
        if display:
            overrides = deep_merge(overrides, {"display": display})
        seen["config"] = load_config(path, overrides)

    import ensemble_cli.cli.strategy_commands as commands

    monkeypatch.setattr(commands, "execute", capture)
    section, _, name = key.rpartition(".")
    yaml_text = f"{section}:\n  {name}: true\n" if section else f"{name}: true\n"
    config = tmp_path / "run.yaml"
    config.write_text(yaml_text + "output: out.jsonl\n")

    def value(*extra: str) -> bool:
        result = invoke(command, "--config", str(config), "-p", "x", *extra)
        assert result.exit_code == 0, result.stderr
        part, _, name = key.rpartition(".")
        loaded = seen["config"]
        target = loaded.display if part == "display" else loaded.settings_for(part) if part else loaded
        return bool(getattr(target, name))

    assert value() is True
    assert value(flag) is False


def test_batch_without_output_prints_id_tab_output(tmp_path, cat_server):
    _, args = cat_server
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n" for i in ("a", "b", "c")))
    result = invoke("committee", "--input", str(prompts), "-q", *args)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.split("\t") for line in lines) == [["a", "The cat sat"], ["b", "The cat sat"],
                                                           ["c", "The cat sat"]]
    single = invoke("committee", "-p", "one", "-q", *args)
    assert single.stdout == "The cat sat\n"
    one_line_input = tmp_path / "one.jsonl"
    one_line_input.write_text(json.dumps({"id": "only", "prompt": "q"}) + "\n")
    shaped = invoke("committee", "--input", str(one_line_input), "-q", *args)
    assert shaped.stdout == "only\tThe cat sat\n"  # -i always gives id<TAB>output, whatever its size


def test_every_draw_of_a_batch_is_one_line_with_its_id(tmp_path):
    from ensemble_cli.sinks.stdout import OutputPrinter
    import io

    stream = io.StringIO()
    OutputPrinter(stream, batch=True).write("p1", ["first\ndraw", "second"])
    OutputPrinter(stream, batch=False).write("p1", ["first", "second"])
    assert stream.getvalue() == "p1\tfirst draw\np1\tsecond\nfirst\nsecond\n"


def test_stderr_is_not_wrapped_when_not_a_terminal():
    unreachable = ["--provider", "vllm", "--model", "a", "--base-url", "http://127.0.0.1:9/v1", "--max-retries", "0"]
    result = subprocess.run([sys.executable, "-m", "ensemble_cli", "committee", "-p", "hi", *unreachable],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 4, result.stderr
    lines = result.stderr.splitlines()
    failed = next(line for line in lines if "could not connect" in line and line.startswith("ensemble: error:"))
    assert len(failed) > 80 and failed.endswith("raise --timeout or --max-retries")  # one line, however long
    assert all(line == line.rstrip() for line in lines), [line for line in lines if line != line.rstrip()]


def test_module_entry_point_and_providers_listing(capsys):
    """`python -m ensemble_cli` runs ensemble_cli/__main__.py."""
    result = subprocess.run([sys.executable, "-m", "ensemble_cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("ensemble ")
    providers()
    assert "llamacpp" in capsys.readouterr().out
