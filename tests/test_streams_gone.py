"""Every stream the tool writes, when its reader goes away: stderr, stdout, a FIFO given as ``-o``, the help
text, the server's ``--log``. A reader that goes away is exit 141, never a silent exit 1 and never a lost
record; when only stderr is gone the run goes on writing its records.

The runs are real subprocesses against the fake server (the pipe must really close).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fake_server import ScriptedModel
from serve_helpers import serve

BROKEN_PIPE = 141


@pytest.fixture
def slow_server(fake_server):
    """Each call takes 0.15 s, so a batch is still running when a reader goes away."""
    return fake_server({"a": ScriptedModel("The answer is 4")}, latency=0.15)


def command(server, *args: str) -> list[str]:
    return [sys.executable, "-m", "ensemble_cli", "vote", "--provider", "vllm", "--model", "a",
            "--base-url", server.base_url, "--max-retries", "0", "--max-tokens", "8", "--extract", "number",
            "--parallel-prompts", "1", "--no-cache", *args]


def prompts(tmp_path, count: int = 5):
    path = tmp_path / "five.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"What is {i} + 1?"}) + "\n" for i in range(count)))
    return path


def read_one_line(fifo) -> tuple[list[bytes], threading.Thread]:
    """A reader that reads one line of ``fifo`` and goes away."""
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as stream:
            got.append(stream.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return got, reader


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_stderr_gone_the_batch_goes_on_and_keeps_every_record(slow_server, tmp_path):
    """`ensemble vote -i five.jsonl -o ep.jsonl 2>&1 | head -1` stopped after 2 records with exit 1 (Rich's
    SystemExit on a broken pipe); now all 5 records are written and the exit is 141."""
    out = tmp_path / "ep.jsonl"
    process = subprocess.Popen(command(slow_server, "-i", str(prompts(tmp_path)), "-o", str(out)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    process.stderr.readline()
    process.stderr.close()  # the reader goes away while prompts are still running
    assert process.wait(timeout=60) == BROKEN_PIPE
    assert [r["id"] for r in records(out)] == [f"q{i}" for i in range(5)]
    assert all(r["status"] == "ok" for r in records(out))


def test_stdout_gone_stops_at_once_with_141(slow_server, tmp_path):
    """Records on stdout (`-o - | head -1`): the run stops at once, no call is made for nobody."""
    process = subprocess.Popen(command(slow_server, "-i", str(prompts(tmp_path, 8)), "-o", "-", "-q"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = json.loads(process.stdout.readline())
    process.stdout.close()
    assert process.wait(timeout=60) == BROKEN_PIPE
    assert first["status"] == "ok"
    assert b"Traceback" not in process.stderr.read()
    assert slow_server.calls < 8  # stopped before the whole batch was asked


def test_plain_output_gone_with_a_single_prompt(slow_server):
    process = subprocess.Popen(command(slow_server, "-p", "What is 2 + 2?"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    assert process.wait(timeout=60) == BROKEN_PIPE
    assert b"Traceback" not in process.stderr.read()


def test_fifo_output_whose_reader_goes_away(slow_server, tmp_path):
    fifo = tmp_path / "records.fifo"
    os.mkfifo(fifo)
    got, reader = read_one_line(fifo)
    result = subprocess.run(command(slow_server, "-i", str(prompts(tmp_path)), "-o", str(fifo), "-q"),
                            capture_output=True, timeout=60)
    reader.join(timeout=10)
    assert result.returncode == BROKEN_PIPE, result.stderr
    assert json.loads(got[0])["id"] == "q0"
    assert b"Traceback" not in result.stderr


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A records file of a real vote run (3 prompts) and the call cache it filled."""
    from fake_server import FakeOpenAIServer

    where = tmp_path_factory.mktemp("written")
    with FakeOpenAIServer({"a": ScriptedModel("The answer is 4")}) as server:
        out = where / "out.jsonl"
        cached = [arg for arg in command(server, "-i", str(prompts(where, 3)), "-o", str(out), "-q") if arg != "--no-cache"]
        ran = subprocess.run([*cached, "--cache-dir", str(where / "cache")], capture_output=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
    return {"RECORDS": str(out), "CACHE": str(where / "cache")}


@pytest.mark.parametrize("args", [["--help"], ["vote", "--help"], ["schema"], ["providers", "--json"],
                                  ["show", "RECORDS"], ["show", "RECORDS", "--json"], ["show", "RECORDS", "--id", "q1"],
                                  ["cache", "stats", "--cache-dir", "CACHE"], ["cache", "--help"]])
def test_other_commands_to_a_closed_stdout_exit_141(args, written):
    args = [written.get(arg, arg) for arg in args]
    process = subprocess.Popen([sys.executable, "-m", "ensemble_cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    assert process.wait(timeout=60) == BROKEN_PIPE
    assert process.stderr.read() == b""


def test_show_with_stderr_gone_still_prints_the_table_and_exits_141(written, tmp_path):
    """Warnings about damaged lines go to stderr: with its reader gone, stdout still gets the whole table."""
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("not json\n" * 50 + open(written["RECORDS"]).read() + '{"id": "cut')
    process = subprocess.Popen([sys.executable, "-m", "ensemble_cli", "show", str(damaged)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stderr is not None and process.stdout is not None
    process.stderr.close()
    out = process.stdout.read()
    assert process.wait(timeout=60) == BROKEN_PIPE
    assert b"summary" in out and all(f"q{i}".encode() in out for i in range(3))


def test_cache_prune_with_stderr_gone_still_prunes(written, tmp_path):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(written["CACHE"], cache)
    process = subprocess.Popen([sys.executable, "-m", "ensemble_cli", "cache", "prune", "--older-than", "0s",
                                "--cache-dir", str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None and process.stdout is not None
    process.stderr.close()
    assert process.stdout.read().startswith(b"removed 3 entries")
    assert process.wait(timeout=60) == 0  # nothing was written to stderr, so nothing was lost


def test_server_log_fifo_whose_reader_goes_away_keeps_serving(tmp_path, fake_server):
    from ensemble_cli.server import Limits

    upstream = fake_server({"a": ScriptedModel("The answer is 4")})
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    got, reader = read_one_line(fifo)
    config = {"strategy": "vote", "provider": "vllm", "model": "a", "base_url": upstream.base_url,
              "max_retries": 0, "vote": {"extract": "number"}}
    with serve(tmp_path / "ensembles", {"v": config}, Limits(log_path=str(fifo))) as url:
        body = {"model": "v", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}
        first = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
        reader.join(timeout=10)
        time.sleep(0.1)
        answers = [httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30) for _ in range(3)]
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    assert first.status_code == 200 and all(a.status_code == 200 for a in answers)
    assert json.loads(got[0])["status"] == "ok"
