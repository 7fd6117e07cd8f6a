"""Issue #10, files and streams: every file the tool reads or writes, every path argument, malformed input
fuzzed through the CLI, stdout/stderr formats and the ``--no-`` flags.

Runs use the fake server (``--provider vllm``), never the embedded model.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fake_server import ScriptedModel
from typer.testing import CliRunner

from ensemble_cli.cli import app

README_EXITS = {0, 1, 2, 3, 4, 5, 130, 143}
runner = CliRunner()


def invoke(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, list(args), input=input)


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def remote(fake_server):
    """Flags that point a committee at a fake vllm server saying 'The cat sat'."""
    server = fake_server({"a": ScriptedModel("The cat sat")})
    return server, ["--provider", "vllm", "--model", "a", "--base-url", server.base_url, "--max-retries", "0"]


def one_line_error(result, code: int, *needles: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ensemble: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# 7: outputs that are not regular files


def _run_to(target: str, remote_args: list[str], capture: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ensemble_cli", "committee", "-p", "hi", "-q", "-o", target,
                           *remote_args], capture_output=True, timeout=60)


@pytest.mark.parametrize("kind", ["devnull", "fifo", "dev_stdout_pipe", "regular"])
def test_records_go_to_any_kind_of_output(kind, remote, tmp_path):
    server, args = remote
    got: list[bytes] = []
    reader = None
    if kind == "devnull":
        target = os.devnull
    elif kind == "fifo":
        target = str(tmp_path / "fifo")
        os.mkfifo(target)

        def read() -> None:
            with open(target, "rb") as stream:
                got.append(stream.read())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
    elif kind == "dev_stdout_pipe":
        target = "/dev/stdout"
    else:
        target = str(tmp_path / "out.jsonl")
    result = _run_to(target, args, capture=True)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr and result.stderr == b""
    if reader is not None:
        reader.join(timeout=10)
        written = got[0]
    elif kind == "dev_stdout_pipe":
        written = result.stdout
    elif kind == "regular":
        written = Path(target).read_bytes()
    else:
        written = b""
    if kind != "devnull":
        (record,) = records(written.decode())
        assert record["status"] == "ok" and record["output"] == "The cat sat"
    assert server.calls > 0


# 8: bytes that are not UTF-8, in every file the tool reads


BAD = b"caf\xe9"  # Latin-1, not UTF-8


@pytest.mark.parametrize("source", ["config", "input_file", "stdin"])
def test_bytes_that_are_not_utf8_name_the_file_and_line(source, tmp_path, remote):
    server, args = remote
    good = json.dumps({"id": "1", "prompt": "hi"}).encode() + b"\n"
    bad_line = b'{"id": "2", "prompt": "' + BAD + b'"}\n'
    if source == "config":
        config = tmp_path / "run.yaml"
        config.write_bytes(b"max_tokens: 4\nprompt: " + BAD + b"\n")
        result = invoke("committee", "--config", str(config), *args)
        one_line_error(result, 2, f"{config}:2: not UTF-8", "UTF-8")
    elif source == "input_file":
        prompts = tmp_path / "prompts.jsonl"
        prompts.write_bytes(good + bad_line)
        result = invoke("committee", "--input", str(prompts), *args)
        one_line_error(result, 2, f"{prompts}:2: not UTF-8")
    else:
        result = invoke("committee", "--input", "-", *args, input=good + bad_line)
        one_line_error(result, 2, "stdin:2: not UTF-8")
    assert server.calls == 0


@pytest.mark.parametrize("source", ["config", "input_file", "stdin"])
def test_a_utf8_byte_order_mark_is_accepted(source, tmp_path, remote):
    _, args = remote
    bom = b"\xef\xbb\xbf"
    line = bom + json.dumps({"id": "b", "prompt": "caf\u00e9"}, ensure_ascii=False).encode() + b"\n"
    if source == "config":
        config = tmp_path / "run.yaml"
        config.write_bytes(bom + "prompt: caf\u00e9\n".encode())
        result = invoke("committee", "--config", str(config), "-o", "-", *args)
    elif source == "input_file":
        prompts = tmp_path / "prompts.jsonl"
        prompts.write_bytes(line)
        result = invoke("committee", "--input", str(prompts), "-o", "-", *args)
    else:
        result = invoke("committee", "--input", "-", "-o", "-", *args, input=line)
    assert result.exit_code == 0, result.stderr
    (record,) = records(result.stdout)
    assert record["input"] == {"prompt": "caf\u00e9"}


def test_resumed_output_cut_inside_a_multibyte_character_is_repaired(tmp_path, remote):
    _, args = remote
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


# 9: every path argument


def _not_a_directory(tmp_path: Path) -> Path:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    return plain / "inside"


@pytest.mark.parametrize(("flag", "make", "message"), [
    ("--config", lambda p: p, "is a directory; give a YAML config file"),
    ("--config", lambda p: p / "missing.yaml", "config file not found"),
    ("--config", _not_a_directory, "cannot read the config file"),
    ("--input", lambda p: p, "is a directory; give --input a JSONL file"),
    ("--input", lambda p: p / "missing.jsonl", "input file not found"),
    ("--input", _not_a_directory, "cannot read the input file"),
    ("--output", lambda p: p, "is a directory; give -o a file name"),
    ("--output", _not_a_directory, "cannot open the output file"),
])
def test_every_path_argument_is_checked(flag, make, message, tmp_path, remote):
    server, args = remote
    path = make(tmp_path)
    prompt = [] if flag == "--input" else ["-p", "hi"]
    result = invoke("committee", flag, str(path), *prompt, *args)
    one_line_error(result, 2, str(path), message)
    assert server.calls == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its permissions")
@pytest.mark.parametrize("flag", ["--config", "--input"])
def test_unreadable_files_are_one_line(flag, tmp_path, remote):
    _, args = remote
    path = tmp_path / "locked"
    path.write_text("x")
    path.chmod(0)
    result = invoke("committee", flag, str(path), *([] if flag == "--input" else ["-p", "hi"]), *args)
    one_line_error(result, 2, str(path), "Permission denied")


# 13 (inputs): the messages a user sees for prompt/input mistakes


@pytest.mark.parametrize(("content", "extra", "message"), [
    (b"", [], "no prompts (the input is empty)"),
    (b"\n  \n", [], "no prompts (the input is empty)"),
    (b'{"prompt": "a"}\n', ["-p", "also"], "give either --prompt or --input, not both"),
])
def test_input_mistakes_say_what_is_wrong(content, extra, message, tmp_path, remote):
    server, args = remote
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(content)
    result = invoke("committee", "--input", str(prompts), *extra, *args)
    one_line_error(result, 2, message)
    assert "None" not in result.stderr and server.calls == 0


# 10: fuzz the CLI with malformed input; nothing escapes as a traceback


GARBAGE = ["", "-1", "0", "1e999", "nan", "abc", "\x00", "--", "{}", "[", "regex:(", "json:", "9" * 40, "é", "-"]
FLAGS = {
    "committee": ["--merge", "--top-k", "--draft", "--gate", "--stop"],
    "vote": ["--samples", "--extract", "--method", "--rounds", "--consensus", "--quorum"],
    "moa": ["--layers", "--self-moa", "--max-reference-chars", "--quorum", "--proposer-temperature"],
    "cot-decode": ["--k", "--k-max", "--extract", "--template", "--answer-prompt"],
    "verbalize": ["--k", "--variant", "--total", "--tail", "--min-prob", "--sample", "--compare"],
}
COMMON = ["--n", "--max-tokens", "--temperature", "--seed", "--max-concurrency", "--timeout", "--max-retries",
          "--parallel-prompts", "--provider", "--api-key-env"]
YAMLS = [b"a: [", b"- 1\n- 2\n", b"committee: 3\n", b"n: true\n", b"members: [{name: x, colour: red}]\n",
         b"\t: :\n", b"max_tokens: '4'\n", b"vote: {extract: 'regex:('}\n", b"!!python/object:os.system x\n"]
JSONL = [b"{", b"[]", b'{"prompt": 3}', b'{"messages": []}', b'{"messages": [{"role": "x"}]}', b"null",
         b'{"id": [1], "prompt": "a"}', b'"just a string"']


def _fuzz_case(rng: random.Random, tmp_path: Path, index: int) -> list[str]:
    command = rng.choice(sorted(FLAGS))
    args = [command, "-p", "hi"]
    for _ in range(rng.randint(1, 3)):
        flag = rng.choice(FLAGS[command] + COMMON)
        args += [flag, rng.choice(GARBAGE)]
    shape = rng.randrange(4)
    if shape == 0:
        config = tmp_path / f"c{index}.yaml"
        config.write_bytes(rng.choice(YAMLS) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 64)))
        args += ["--config", str(config)]
    elif shape == 1:
        prompts = tmp_path / f"i{index}.jsonl"
        prompts.write_bytes(b"\n".join(rng.choice(JSONL + [rng.randbytes(8)]) for _ in range(rng.randint(1, 3))))
        args = [a for a in args if a not in ("-p", "hi")] + ["--input", str(prompts)]
    return args


def test_fuzzed_command_lines_never_show_a_traceback(tmp_path, remote):
    _, remote_args = remote
    rng = random.Random(10)
    for index in range(120):
        args = _fuzz_case(rng, tmp_path, index) + remote_args
        result = runner.invoke(app, args)
        shown = f"{args}: exit {result.exit_code}\n{result.stderr}"
        assert result.exit_code in README_EXITS, shown
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, shown
        assert result.exception is None or isinstance(result.exception, SystemExit), (shown, result.exception)


# 23: every boolean flag has its --no- form, and it beats the YAML's true


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

    def capture(strategy, path, common, settings, display=None):
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


# 24: a batch without -o prints id<TAB>output in a form a script can split


def test_batch_without_output_prints_id_tab_output(tmp_path, remote):
    _, args = remote
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


# 25: stderr is not wrapped when it is not a terminal; providers keeps every column when piped


def test_stderr_is_not_wrapped_when_not_a_terminal():
    unreachable = ["--provider", "vllm", "--model", "a", "--base-url", "http://127.0.0.1:9/v1", "--max-retries", "0"]
    result = subprocess.run([sys.executable, "-m", "ensemble_cli", "committee", "-p", "hi", *unreachable],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 4, result.stderr
    lines = result.stderr.splitlines()
    failed = next(line for line in lines if "could not connect" in line and line.startswith("ensemble: error:"))
    assert len(failed) > 80 and failed.endswith("raise --timeout or --max-retries")  # one line, however long
    assert all(line == line.rstrip() for line in lines), [line for line in lines if line != line.rstrip()]


def test_providers_piped_keeps_every_column_and_json_parses():
    from ensemble_cli.providers.presets import PRESETS

    piped = subprocess.run([sys.executable, "-m", "ensemble_cli", "providers"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert piped.returncode == 0
    table = [line for line in piped.stdout.splitlines() if line.startswith("│")]
    for name, preset in PRESETS.items():
        row = next(line for line in table if re.match(rf"│ {re.escape(name)}\s", line))
        assert "…" not in row
        assert (preset.doc_date or "-") in row and "yes" in row or "no" in row
    assert all(line == line.rstrip() for line in piped.stdout.splitlines())
    as_json = json.loads(subprocess.run([sys.executable, "-m", "ensemble_cli", "providers", "--json"],
                                        capture_output=True, text=True, timeout=60).stdout)
    assert {row["name"] for row in as_json} == {"local", *PRESETS, "llm"}
