"""`ensemble show`: records written by real runs (the fake server, the embedded model) read back as a table and
a summary that equals the records' sums, the failures, JSON, one prompt in its strategy's views; damaged lines,
records of another schema and missing files as one line each, never a traceback."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from fake_server import AnyStrategy, ScriptedModel
from typer.testing import CliRunner

from conftest import batch, no_traceback, records
from ensemble_cli.cli import app
from ensemble_cli.formatting import usd

runner = CliRunner()
LONG = " ".join(f"word{i}" for i in range(60))


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def run_config(tmp_path, url: str, priced: bool = True):
    config = {"provider": "vllm", "model": "a", "base_url": url, "max_tokens": 8, "max_retries": 0}
    if priced:
        config["prices"] = {"vllm/a": {"input": 0.5, "output": 1.5}, "vllm/long": {"input": 2, "output": 3}}
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def recorded(fake_server, tmp_path):
    """out.jsonl from real runs: a vote of 4 prompts (one fails on the server), then a committee with a long
    answer; the vote's prompts priced by run.yaml."""
    server = fake_server({"a": AnyStrategy(), "long": ScriptedModel(LONG)})
    server.fail_when = lambda body: "PROMPT-3" in json.dumps(body)
    out = tmp_path / "out.jsonl"
    config = run_config(tmp_path, server.base_url)
    vote = invoke("vote", "-c", str(config), "-i", str(batch(tmp_path, 4)), "-o", str(out), "-q", "--extract", "number")
    assert vote.exit_code == 5, vote.stderr
    committee = invoke("committee", "-c", str(config), "--model", "long", "--max-tokens", "60", "-p", "say words",
                       "-o", str(out), "-q")
    assert committee.exit_code == 0, committee.stderr
    return out


def show(*args: str, input: str | None = None):
    result = invoke("show", *args, input=input)
    no_traceback(result)
    return result


def test_the_table_lists_every_prompt_and_cuts_outputs_to_the_width(recorded):
    written = records(recorded.read_text())
    result = show(str(recorded))
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert all(len(line) <= 120 for line in lines)  # COLUMNS=120 (conftest)
    header = next(line for line in lines if "strategy" in line)
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == \
        ["id", "strategy", "status", "output", "calls", "cost", "latency s"]
    for record in written:
        row = next(line for line in lines if line.startswith(f"│ {record['id']} ") and record["strategy"] in line)
        assert record["status"] in row and usd(record["usage"]["cost_usd"]) in row
        assert f"{record['usage']['wall_s']:.2f}" in row and f" {record['usage']['calls']} " in row
        if record["strategy"] == "committee":
            assert "word0 word1" in row and "…" in row and "word59" not in row  # cut to the width
        elif record["status"] == "ok":
            assert "│ 4 " in row
        else:
            assert "vote round 1: only 0 of 1 member answered" in row
    assert "summary" in result.stdout and "per model" in result.stdout


def test_the_summary_is_the_sum_of_the_records(recorded):
    written = records(recorded.read_text())
    usages = [r["usage"] for r in written]
    result = show(str(recorded), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["records"] == len(written) == 5
    assert (summary["ok"], summary["failed"]) == (4, 1)
    for key in ("calls", "failed_calls", "cached_calls", "prompt_tokens", "completion_tokens"):
        assert summary[key] == sum(u[key] for u in usages), key
    assert summary["tokens"] == summary["prompt_tokens"] + summary["completion_tokens"]
    exact = sum(Decimal(str(u["cost_usd"])) for u in usages)
    assert summary["cost_usd"] == float(exact) and summary["cost_usd"] > 0
    walls = sorted(u["wall_s"] for u in usages)
    assert summary["latency_s"] == {"p50": walls[math.ceil(0.5 * 5) - 1], "p95": walls[math.ceil(0.95 * 5) - 1]}
    for model in ("vllm/a", "vllm/long"):
        shares = [u["by_model"][model] for u in usages if model in u["by_model"]]
        got = summary["models"][model]
        assert got["calls"] == sum(s["calls"] for s in shares) > 0
        assert got["tokens"] == sum(s["prompt_tokens"] + s["completion_tokens"] for s in shares)
        assert got["cost_usd"] == float(sum(Decimal(str(s["cost_usd"])) for s in shares))
    table = show(str(recorded)).stdout
    assert usd(summary["cost_usd"]) in table and f"{summary['calls']} (" in table
    assert f"p50 {summary['latency_s']['p50']:.2f} s" in table
    model_row = next(line for line in table.splitlines() if line.startswith("│ vllm/long"))
    assert usd(summary["models"]["vllm/long"]["cost_usd"]) in model_row


def test_an_unknown_cost_is_unknown_never_zero(fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    out = tmp_path / "out.jsonl"
    config = run_config(tmp_path, server.base_url, priced=False)
    assert invoke("vote", "-c", str(config), "-p", "what is 2 + 2?", "-o", str(out), "-q").exit_code == 0
    assert records(out.read_text())[0]["usage"]["cost_usd"] is None
    summary = json.loads(show(str(out), "--json").stdout)["summary"]
    assert summary["cost_usd"] is None and summary["models"]["vllm/a"]["cost_usd"] is None
    table = show(str(out)).stdout
    assert "unknown" in next(line for line in table.splitlines() if line.startswith("│ vllm/a"))
    assert "│ cost " in table and "$0.00" not in table


def test_failed_lists_the_failures_with_their_errors(recorded):
    (failure,) = [r for r in records(recorded.read_text()) if r["status"] == "error"]
    result = show(str(recorded), "--failed")
    assert result.exit_code == 0
    assert "failed: 1 prompt" in result.stdout and "│ id3 " in result.stdout and f"{recorded}:" in result.stdout
    assert "injected 500" in result.stdout and "id0" not in result.stdout
    shown = json.loads(show(str(recorded), "--failed", "--json").stdout)
    assert [p["id"] for p in shown["prompts"]] == ["id3"] and shown["prompts"][0]["errors"] == failure["errors"]
    assert shown["summary"]["records"] == 5  # the summary is of the whole file


def test_json_is_one_object_of_prompts_and_summary(recorded):
    written = records(recorded.read_text())
    shown = json.loads(show(str(recorded), "--json").stdout)
    assert set(shown) == {"prompts", "summary"}
    assert [(p["id"], p["strategy"], p["status"]) for p in shown["prompts"]] == \
        [(r["id"], r["strategy"], r["status"]) for r in written]
    first = shown["prompts"][0]
    assert set(first) == {"where", "id", "strategy", "status", "output", "errors", "calls", "tokens", "cost_usd",
                          "cached_calls", "wall_s"}
    assert first["where"] == f"{recorded}:1"
    committee = shown["prompts"][-1]
    assert committee["output"] == written[-1]["output"] == LONG  # whole, not cut
    assert set(shown["summary"]) == {"records", "ok", "failed", "calls", "failed_calls", "cached_calls",
                                     "prompt_tokens", "completion_tokens", "tokens", "cost_usd", "latency_s",
                                     "requests_refused", "requests_cancelled", "models"}
    assert (shown["summary"]["requests_refused"], shown["summary"]["requests_cancelled"]) == (0, 0)


def test_id_shows_the_vote_view_of_the_run(recorded):
    result = show(str(recorded), "--id", "id1")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"id1 · vote · ok · {recorded}:")
    assert "vote (majority)" in text and "│ answer │ votes │ weight │ members │" in text.replace("┃", "│")
    assert "│ winner      │ 4" in text and text.rstrip().splitlines()[-1].startswith("usage: 1 call,")
    (record,) = json.loads("[" + show(str(recorded), "--id", "id1", "--json").stdout.strip() + "]")
    assert record == next(r for r in records(recorded.read_text()) if r["id"] == "id1")


def test_id_of_a_failed_prompt_shows_its_errors(recorded):
    text = show(str(recorded), "--id", "id3").stdout
    assert "id3 · vote · error" in text and "error: vote round 1" in text and "injected 500" in text


def test_an_unknown_id_is_one_error_line_exit_2(recorded):
    result = show(str(recorded), "--id", "nope")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == f"ensemble: error: --id nope: no record of that id in {recorded}; " \
                                    f"`ensemble show {recorded}` lists them"


@pytest.mark.parametrize("empty", ["--id=", "--id= "])
def test_an_empty_id_is_a_usage_error_naming_id(recorded, empty):
    result = show(str(recorded), empty)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == "ensemble: error: --id is empty; give the id of a prompt " \
                                    "(`ensemble show FILE` lists them)"


@pytest.mark.parametrize("as_json", [False, True])
def test_an_id_in_several_files_shows_each_and_says_where(recorded, tmp_path, as_json):
    other = tmp_path / "again.jsonl"
    other.write_bytes(recorded.read_bytes())
    line = next(n for n, r in enumerate(records(recorded.read_text()), start=1) if r["id"] == "id1")
    result = show(str(recorded), str(other), "--id", "id1", *(["--json"] if as_json else []))
    assert result.exit_code == 0
    assert result.stderr.strip() == f"ensemble: note: --id id1 is in several files ({recorded}:{line}, " \
                                    f"{other}:{line}); each record is shown, in that order"
    if as_json:
        assert [json.loads(text)["id"] for text in result.stdout.splitlines()] == ["id1", "id1"]
    else:
        assert f"id1 · vote · ok · {recorded}:{line}" in result.stdout
        assert f"id1 · vote · ok · {other}:{line}" in result.stdout


def test_all_shows_the_whole_verbalized_distribution(fake_server, tmp_path):
    server = fake_server({"a": AnyStrategy()})
    out = tmp_path / "out.jsonl"
    config = run_config(tmp_path, server.base_url)
    result = invoke("verbalize", "-c", str(config), "--max-tokens", "80", "-p", "tell a joke", "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    (record,) = records(out.read_text())
    plain = show(str(out), "--id", record["id"]).stdout
    every = show(str(out), "--id", record["id"], "--all").stdout
    assert "draws" in plain and "distribution" not in plain
    assert "distribution (" in every and "Joke 4 one." in every and "Joke 4 two." in every


def test_stdin_and_several_files(recorded, tmp_path):
    text = recorded.read_text()
    piped = show("-", "--json", input=text)
    assert piped.exit_code == 0, piped.stderr
    shown = json.loads(piped.stdout)
    assert shown["prompts"][0]["where"] == "stdin:1" and shown["summary"]["records"] == 5
    second = tmp_path / "again.jsonl"
    second.write_text(text)
    both = json.loads(show(str(recorded), str(second), "--json").stdout)
    assert both["summary"]["records"] == 10 and both["prompts"][5]["where"] == f"{second}:1"
    assert both["summary"]["calls"] == 2 * shown["summary"]["calls"]


def test_a_half_written_last_line_is_one_warning_and_the_rest_is_shown(recorded):
    text = recorded.read_text()
    cut = text + text.splitlines()[1][:70]  # a run killed mid-write
    recorded.write_text(cut)
    result = show(str(recorded), "--json")
    assert result.exit_code == 0
    assert result.stderr == f"ensemble: warning: {recorded}:6: half-written last line (a run stopped mid-write?); skipped\n"
    assert json.loads(result.stdout)["summary"]["records"] == 5
    # cut inside a multi-byte character: the same, never a decoding error
    recorded.write_bytes(text.encode() + '{"id": "caf\u00e9'.encode()[:-1])
    assert "6: half-written last line" in show(str(recorded)).stderr


def test_other_schema_versions_and_non_json_lines_are_warnings_naming_the_line(recorded):
    lines = recorded.read_text().splitlines()
    old = {**json.loads(lines[0]), "schema": 1}
    recorded.write_text("\n".join([json.dumps(old), '{"id": "x', "[1, 2]", *lines[1:]]) + "\n")
    result = show(str(recorded))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"ensemble: warning: {recorded}:1: a record of schema version 1 (this ensemble reads 2); skipped",
        f"ensemble: warning: {recorded}:2: not valid JSON (Unterminated string starting at column 8); skipped",
        f"ensemble: warning: {recorded}:3: not a record (a JSON object with an id); skipped",
    ]
    kept = [json.loads(line)["status"] for line in lines[1:]]
    assert f"4 ({kept.count('ok')} ok, {kept.count('error')} failed)" in result.stdout


def test_missing_files_and_files_without_records_are_one_line_exit_2(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = show(str(missing))
    assert result.exit_code == 2 and result.stderr == f"ensemble: error: {missing}: records file not found\n"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = show(str(empty))
    assert result.exit_code == 2 and "holds no records" in result.stderr and result.stderr.count("\n") == 1
    assert show(str(tmp_path)).stderr.startswith(f"ensemble: error: {tmp_path}: is a directory")


def test_a_record_whose_details_are_not_its_strategys_is_one_line(recorded):
    ok_vote = next(r for r in records(recorded.read_text()) if r["strategy"] == "vote" and r["status"] == "ok")
    damaged = {**ok_vote, "details": {"winner": 4}}
    recorded.write_text(json.dumps(damaged) + "\n")
    result = show(str(recorded), "--id", damaged["id"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"ensemble: error: {recorded}:1: its details are not what vote writes (")
    assert show(str(recorded)).exit_code == 0  # the table reads what it can


@pytest.mark.embedded
def test_id_shows_a_committee_record_in_the_views_of_its_live_run(tmp_path):
    out = tmp_path / "out.jsonl"
    run = invoke("committee", "-p", "Name a colour.", "--max-tokens", "8", "--n", "2", "--temperature", "0.7",
                 "--seed", "3", "-o", str(out))
    assert run.exit_code == 0, run.stderr
    (record,) = records(out.read_text())
    result = show(str(out), "--id", record["id"])
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"{record['id']} · committee · ok · {out}:1")
    assert "prompt: Name a colour." in text
    answer = [line for line in text.splitlines() if line.startswith("│") and "answer" not in line]
    assert " ".join(record["output"].split()) in " ".join(" ".join(a.strip("│ ") for a in answer).split())
    # the same view (summary table) and usage line the run printed at its end
    view = run.stderr[run.stderr.index("committee\n"):].splitlines()
    assert [line.rstrip() for line in view] == text[text.index("committee\n"):].splitlines()


def test_a_server_log_is_read_with_its_refused_and_cancelled_requests_counted(fake_server, tmp_path):
    """`ensemble serve --log` writes records, and for a refused or cancelled request a line without an id:
    show counts those in its summary, never one warning each."""
    import httpx
    from fake_server import ReplyModel
    from serve_helpers import ServerThread, write_ensembles

    from ensemble_cli.server import Limits, load_ensembles

    upstream = fake_server({"a": ReplyModel(lambda ctx: "Blue.")}, latency=0.4)
    base = {"provider": "vllm", "model": "a", "base_url": upstream.base_url, "max_retries": 0, "cache": False}
    configs = {"m": {**base, "strategy": "vote", "temperature": 0.5},
               "slow": {**base, "strategy": "moa", "n": 2, "moa": {"layers": 2}}}
    log = tmp_path / "serve.log"
    ask = {"model": "m", "messages": [{"role": "user", "content": "Name a colour."}]}
    ensembles = load_ensembles(write_ensembles(tmp_path / "ens", configs), {})
    with ServerThread(ensembles, Limits(log_path=str(log))) as url:
        assert httpx.post(f"{url}/v1/chat/completions", json=ask, timeout=30).status_code == 200
        assert httpx.post(f"{url}/v1/chat/completions", json={**ask, "model": "nope"}).status_code == 400
        assert httpx.post(f"{url}/v1/chat/completions", json={**ask, "n": 2}).status_code == 400
        with pytest.raises(httpx.ReadTimeout):  # leaves during the moa's second layer: the run is cancelled
            httpx.post(f"{url}/v1/chat/completions", json={**ask, "model": "slow"}, timeout=0.6)
        while len(log.read_text().splitlines()) < 4:
            pass
    statuses = [json.loads(line)["status"] for line in log.read_text().splitlines()]
    assert sorted(statuses) == ["cancelled", "ok", "rejected", "rejected"]
    result = show(str(log))
    assert result.exit_code == 0 and result.stderr == ""
    assert "1 (1 ok, 0 failed)" in result.stdout
    assert "3 requests without a record: 2 refused, 1 cancelled (server log)" in result.stdout
    summary = json.loads(show(str(log), "--json").stdout)["summary"]
    assert (summary["records"], summary["requests_refused"], summary["requests_cancelled"]) == (1, 2, 1)
