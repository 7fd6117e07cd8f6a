"""Every file read or written and every path argument: odd outputs, bad bytes, a BOM, bad paths, bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import records
from ensemble_cli.cli import app

runner = CliRunner()


def invoke(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, list(args), input=input)


def one_line_error(result, code: int, *needles: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ensemble: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _run_to(target: str, remote_args: list[str], capture: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ensemble_cli", "committee", "-p", "hi", "-q", "-o", target,
                           *remote_args], capture_output=True, timeout=60)


@pytest.mark.parametrize("kind", ["devnull", "fifo", "dev_stdout_pipe", "regular"])
def test_records_go_to_any_kind_of_output(kind, cat_server, tmp_path):
    server, args = cat_server
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


BAD = b"caf\xe9"  # Latin-1, not UTF-8


@pytest.mark.parametrize("source", ["config", "input_file", "stdin"])
def test_bytes_that_are_not_utf8_name_the_file_and_line(source, tmp_path, cat_server):
    server, args = cat_server
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
def test_a_utf8_byte_order_mark_is_accepted(source, tmp_path, cat_server):
    _, args = cat_server
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
def test_every_path_argument_is_checked(flag, make, message, tmp_path, cat_server):
    server, args = cat_server
    path = make(tmp_path)
    prompt = [] if flag == "--input" else ["-p", "hi"]
    result = invoke("committee", flag, str(path), *prompt, *args)
    one_line_error(result, 2, str(path), message)
    assert server.calls == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its permissions")
@pytest.mark.parametrize("flag", ["--config", "--input"])
def test_unreadable_files_are_one_line(flag, tmp_path, cat_server):
    _, args = cat_server
    path = tmp_path / "locked"
    path.write_text("x")
    path.chmod(0)
    result = invoke("committee", flag, str(path), *([] if flag == "--input" else ["-p", "hi"]), *args)
    one_line_error(result, 2, str(path), "Permission denied")


@pytest.mark.parametrize(("content", "extra", "message"), [
    (b"", [], "no prompts (the input is empty)"),
    (b"\n  \n", [], "no prompts (the input is empty)"),
    (b'{"prompt": "a"}\n', ["-p", "also"], "give either --prompt or --input, not both"),
])
def test_input_mistakes_say_what_is_wrong(content, extra, message, tmp_path, cat_server):
    server, args = cat_server
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(content)
    result = invoke("committee", "--input", str(prompts), *extra, *args)
    one_line_error(result, 2, message)
    assert "None" not in result.stderr and server.calls == 0


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "is a directory; give --log a file name"),
    (_not_a_directory, "cannot open the output file"),
])
def test_a_serve_log_that_cannot_be_written_stops_the_server_before_it_serves(make, message, tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("ENSEMBLE_HOME", str(tmp_path / "home"))
    path = make(tmp_path)
    done = subprocess.run([sys.executable, "-m", "ensemble_cli", "serve", "--log", str(path), "--port", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ensemble: error: ") and message in lines[0] and str(path) in lines[0]
    assert "serving" not in done.stderr + done.stdout
