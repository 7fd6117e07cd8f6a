"""`ensemble cache stats | clear | prune` on caches filled by real runs on the fake server: hits counted when a
second run is served, a cache file of the old layout migrated with every entry kept, clear asking first (a
real terminal on stdin) or refusing without one, prune by last use, and bad ages as one usage line."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from fake_server import AnyStrategy
from typer.testing import CliRunner

from conftest import batch, no_traceback, records, remote_flags
from ensemble_cli.cli import app

runner = CliRunner()
DAY_S = 86400


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    no_traceback(result)
    return result


def stats(directory) -> dict:
    result = invoke("cache", "stats", "--cache-dir", str(directory), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def vote(server, tmp_path, directory, out, count: int = 3):
    result = invoke("vote", "-i", str(batch(tmp_path, count)), "-o", str(out), "-q", "--extract", "number",
                    "--cache-dir", str(directory), *remote_flags(server.base_url))
    assert result.exit_code == 0, result.stderr
    return records(out.read_text())


@pytest.fixture
def server(fake_server):
    return fake_server({"a": AnyStrategy()})


def test_stats_after_real_runs_count_entries_and_the_hits_of_a_second_run(server, tmp_path):
    directory = tmp_path / "cache"
    vote(server, tmp_path, directory, tmp_path / "first.jsonl")
    made = server.calls
    first = stats(directory)
    assert first["exists"] and first["entries"] == made == 3 and first["hits"] == 0
    assert first["models"] == [{"provider": "vllm", "model": "a", "entries": 3, "hits": 0}]
    path = directory / "calls.sqlite3"
    assert first["path"] == str(path)
    assert first["bytes"] == path.stat().st_size + (os.path.getsize(f"{path}-wal") if os.path.exists(f"{path}-wal") else 0)
    assert first["oldest"] <= first["newest"] == first["last_used"]

    again = vote(server, tmp_path, directory, tmp_path / "second.jsonl")
    assert server.calls == made  # every call served from the cache
    served = sum(r["usage"]["cached_calls"] for r in again)
    second = stats(directory)
    assert served == 3 and second["hits"] == served and second["entries"] == 3
    assert second["models"][0]["hits"] == served and second["last_used"] >= first["last_used"]

    shown = invoke("cache", "stats", "--cache-dir", str(directory))
    assert shown.exit_code == 0
    for label, value in (("entries", "3"), ("hits recorded", "3")):
        assert any(line.startswith(f"│ {label} ") and f"│ {value} " in line for line in shown.stdout.splitlines())
    assert "│ vllm     │ a     │       3 │    3 │" in shown.stdout


def test_stats_of_a_cache_never_made_creates_nothing(tmp_path):
    directory = tmp_path / "none"
    assert stats(directory) == {"path": str(directory / "calls.sqlite3"), "exists": False, "entries": 0,
                                "bytes": 0, "hits": 0, "oldest": None, "newest": None, "last_used": None,
                                "models": []}
    assert not directory.exists()


def test_the_environment_names_the_cache_when_no_flag_does(server, tmp_path, call_cache_dir):
    result = invoke("vote", "-p", "what is 2 + 2?", "-q", "--extract", "number", *remote_flags(server.base_url))
    assert result.exit_code == 0
    shown = json.loads(invoke("cache", "stats", "--json").stdout)
    assert shown["path"] == str(call_cache_dir / "calls.sqlite3") and shown["entries"] == 1


def test_a_cache_file_of_the_old_layout_is_migrated_with_every_entry(server, tmp_path):
    directory = tmp_path / "cache"
    vote(server, tmp_path, directory, tmp_path / "first.jsonl")
    made = server.calls
    path = directory / "calls.sqlite3"
    with sqlite3.connect(path) as conn:  # the layout before hits and last_used
        rows = conn.execute("SELECT key, completions, created FROM calls").fetchall()
        conn.execute("DROP TABLE calls")
        conn.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, completions TEXT NOT NULL, created REAL NOT NULL)")
        conn.executemany("INSERT INTO calls VALUES (?, ?, ?)", rows)
    conn.close()
    migrated = stats(directory)
    assert migrated["entries"] == len(rows) == 3 and migrated["hits"] == 0
    assert migrated["last_used"] == migrated["newest"]  # last use of an old entry: when it was stored
    again = vote(server, tmp_path, directory, tmp_path / "second.jsonl")
    assert server.calls == made and all(r["usage"]["cached_calls"] == 1 for r in again)
    assert stats(directory)["hits"] == 3


def test_clear_with_yes_removes_every_entry(server, tmp_path):
    directory = tmp_path / "cache"
    vote(server, tmp_path, directory, tmp_path / "out.jsonl")
    result = invoke("cache", "clear", "--yes", "--cache-dir", str(directory))
    assert result.exit_code == 0 and result.stdout == f"removed 3 entries from {directory / 'calls.sqlite3'}\n"
    assert stats(directory)["entries"] == 0
    calls = server.calls
    vote(server, tmp_path, directory, tmp_path / "again.jsonl")
    assert server.calls == calls + 3  # nothing left to serve


def test_clear_without_yes_and_without_a_terminal_refuses(server, tmp_path):
    directory = tmp_path / "cache"
    vote(server, tmp_path, directory, tmp_path / "out.jsonl")
    result = invoke("cache", "clear", "--cache-dir", str(directory))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"ensemble: error: cache clear: would remove 3 entries of {directory / 'calls.sqlite3'} "
                             "and stdin is not a terminal to ask; pass --yes to clear without asking\n")
    assert stats(directory)["entries"] == 3


def ask_on_a_terminal(directory, answer: str) -> subprocess.CompletedProcess:
    """`ensemble cache clear` with a real terminal (a pty) on stdin, answering ``answer``."""
    import pty

    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "ensemble_cli", "cache", "clear", "--cache-dir", str(directory)],
                                   stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(leader, answer.encode() + b"\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_clear_asks_on_a_terminal_and_declining_deletes_nothing(server, tmp_path):
    directory = tmp_path / "cache"
    vote(server, tmp_path, directory, tmp_path / "out.jsonl")
    declined = ask_on_a_terminal(directory, "n")
    assert declined.returncode == 1, declined.stderr
    assert f"Remove all 3 entries of the call cache {directory / 'calls.sqlite3'}? [y/N]" in declined.stderr
    assert declined.stderr.rstrip().endswith("ensemble: error: nothing removed") and declined.stdout == ""
    assert stats(directory)["entries"] == 3
    accepted = ask_on_a_terminal(directory, "y")
    assert accepted.returncode == 0 and accepted.stdout.startswith("removed 3 entries")
    assert stats(directory)["entries"] == 0


def age(directory, days: float, where: str) -> None:
    """Make the entries matching ``where`` last used ``days`` ago (as if nothing had used them since)."""
    with sqlite3.connect(directory / "calls.sqlite3") as conn:
        conn.execute(f"UPDATE calls SET last_used = ? WHERE {where}", (time.time() - days * DAY_S,))
    conn.close()


def test_prune_removes_the_entries_unused_for_longer_than_the_age(server, tmp_path):
    directory = tmp_path / "cache"
    vote(server, tmp_path, directory, tmp_path / "out.jsonl")
    age(directory, 40, "key = (SELECT min(key) FROM calls)")
    result = invoke("cache", "prune", "--older-than", "30d", "--cache-dir", str(directory))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (f"removed 1 entry last used more than 30d ago from {directory / 'calls.sqlite3'}; "
                             "2 entries left\n")
    assert stats(directory)["entries"] == 2
    assert invoke("cache", "prune", "--older-than", "2w", "--cache-dir", str(directory)).stdout.startswith("removed 0 entries")


def test_a_hit_is_a_use_that_keeps_an_entry_from_prune(server, tmp_path):
    directory = tmp_path / "cache"
    vote(server, tmp_path, directory, tmp_path / "out.jsonl", count=1)
    age(directory, 40, "1")
    vote(server, tmp_path, directory, tmp_path / "again.jsonl", count=1)  # served: used now
    result = invoke("cache", "prune", "--older-than", "12h", "--cache-dir", str(directory))
    assert result.stdout.startswith("removed 0 entries") and stats(directory)["entries"] == 1
    age(directory, 1, "1")
    assert invoke("cache", "prune", "--older-than", "90m", "--cache-dir", str(directory)).stdout.startswith("removed 1 entry ")


@pytest.mark.parametrize("value", ["30", "3x", "-1d", "d", "30 days", ""])
def test_a_bad_age_is_one_usage_line(value, tmp_path):
    result = invoke("cache", "prune", "--older-than", value, "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 2
    assert result.stderr == (f"ensemble: error: --older-than: '{value}' is not an age; give a number and a unit, as in "
                             "90m, 12h, 30d or 2w (see `ensemble cache prune --help`)\n")
    assert not (tmp_path / "cache").exists()


def test_prune_needs_an_age(tmp_path):
    result = invoke("cache", "prune", "--cache-dir", str(tmp_path))
    assert result.exit_code == 2 and "--older-than" in result.stderr and result.stderr.count("\n") == 1


def test_a_file_that_is_not_a_cache_is_one_error_line(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "calls.sqlite3").write_text("not a database, just text " * 100)
    for args in (["stats"], ["clear", "--yes"], ["prune", "--older-than", "1d"]):
        result = invoke("cache", *args, "--cache-dir", str(directory))
        assert result.exit_code == 1, (args, result.stderr)
        assert result.stderr.startswith(f"ensemble: error: {directory / 'calls.sqlite3'}: cannot use the call cache (")
        assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("command", [["stats"], ["clear", "--yes"], ["prune", "--older-than", "1d"]])
def test_a_cache_dir_that_is_a_file_is_one_error_line(command, tmp_path):
    records = tmp_path / "votes.jsonl"
    records.write_text("{}\n")
    result = CliRunner().invoke(app, ["cache", *command, "--cache-dir", str(records)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a directory; give --cache-dir" in lines[0] and str(records) in lines[0]
    assert records.read_text() == "{}\n"
