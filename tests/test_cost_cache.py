"""Cost, budget and the call cache: priced and unpriced models, user prices, the embedded model's CPU
seconds, --budget stopping before the call that would pass it, and cache hits, misses, concurrent
writers and a damaged cache file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys

import pytest
from fake_server import ReplyModel, ScriptedModel
from scripted import ScriptedProvider
from typer.testing import CliRunner

from ensemble_cli.cache import CallCache, call_key
from ensemble_cli.cli import app
from ensemble_cli.prices import Price, price_table, shipped
from ensemble_cli.calls import Completion, Request, Usage, user_prompt
from ensemble_cli.providers.metered import Meter, MeteredProvider
from ensemble_cli.usage import Tally

runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def vote(server, *args, model="a", provider="vllm", env=None):
    return invoke("vote", "--provider", provider, "--model", model, "--base-url", server.base_url, "-o", "-",
                  "--max-retries", "0", *args, env=env)


def out_records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# Prices and the tally


def test_shipped_price_table_is_dated_and_prices_the_presets_models():
    table = shipped()
    assert table.date.startswith("20")
    assert table.price_for("openai", "gpt-4o-mini") == Price(0.15, 0.60)
    assert table.price_for("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo") is not None
    assert table.price_for("local", "smollm2") == Price(0.0, 0.0)
    assert table.price_for("vllm", "my-model") is None
    assert table.price_for("openai", "no-such-model") is None


def test_tally_prices_each_model_and_unknown_is_null_not_zero():
    tally = Tally()
    tally.add([Completion("x", usage=Usage(1000, 2000), provider="openai", model="gpt-4o-mini")])
    expected = (1000 * 0.15 + 2000 * 0.60) / 1_000_000
    assert tally.as_dict()["cost_usd"] == pytest.approx(expected)
    tally.add([Completion("y", usage=Usage(5, 5), provider="vllm", model="mine")])
    usage = tally.as_dict()
    assert usage["cost_usd"] is None
    assert usage["by_model"]["openai/gpt-4o-mini"] == {"calls": 1, "cached_calls": 0, "prompt_tokens": 1000,
                                                      "completion_tokens": 2000, "cost_usd": pytest.approx(expected)}
    assert usage["by_model"]["vllm/mine"]["cost_usd"] is None


def test_cached_call_costs_nothing_and_is_counted():
    tally = Tally()
    tally.add([Completion("x", usage=Usage(1000, 2000), provider="openai", model="gpt-4o-mini", cached=True)])
    usage = tally.as_dict()
    assert usage["cost_usd"] == 0 and usage["cached_calls"] == 1
    assert usage["prompt_tokens"] == 1000  # the tokens the strategy used, though none were billed


def test_user_prices_override_and_extend_the_table():
    table = price_table({"openai/gpt-4o-mini": {"input": 1.0, "output": 2.0}, "vllm/*": {"input": 0, "output": 0}})
    assert table.price_for("openai", "gpt-4o-mini") == Price(1.0, 2.0)
    assert table.price_for("vllm", "anything") == Price(0.0, 0.0)
    tally = Tally(prices=table)
    tally.add([Completion("x", usage=Usage(10, 10), provider="vllm", model="anything")])
    assert tally.as_dict()["cost_usd"] == 0.0


# Cost in the records of commands


def test_record_carries_cost_of_a_priced_model(fake_server):
    server = fake_server({"gpt-4o-mini": ReplyModel(lambda ctx: "four")})
    result = vote(server, "-p", "2+2?", provider="openai", model="gpt-4o-mini", env={"OPENAI_API_KEY": "sk-x"})
    assert result.exit_code == 0, result.stderr
    usage = out_records(result)[0]["usage"]
    assert usage["cost_usd"] == pytest.approx((10 * 0.15 + 1 * 0.60) / 1_000_000)  # the fake server bills 10 + 1 tokens
    assert usage["by_model"]["openai/gpt-4o-mini"]["calls"] == 1
    assert usage["cached_calls"] == 0 and usage["cpu_s"] == 0
    assert "cost $" in result.stderr


def test_unknown_model_cost_is_null_and_the_summary_says_so(fake_server):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    result = vote(server, "-p", "2+2?")
    assert result.exit_code == 0, result.stderr
    assert out_records(result)[0]["usage"]["cost_usd"] is None
    assert "cost unknown (no price for vllm/a" in result.stderr


def test_prices_from_the_run_config(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    config = tmp_path / "run.yaml"
    config.write_text('prices:\n  "vllm/a": {input: 1.0, output: 2.0}\n')
    result = vote(server, "-c", config, "-p", "2+2?")
    assert out_records(result)[0]["usage"]["cost_usd"] == pytest.approx((10 * 1.0 + 1 * 2.0) / 1_000_000)


def test_a_bad_price_is_a_config_error(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text('prices:\n  "vllm/a": {input: -1, output: 2.0}\n')
    result = invoke("vote", "-c", config, "-p", "hi")
    assert result.exit_code == 2 and "prices.vllm/a.input" in result.stderr


@pytest.mark.embedded
@pytest.mark.parametrize("strategy", ["vote", "committee"])
def test_embedded_model_is_free_and_reports_cpu_seconds(strategy):
    result = invoke(strategy, "-p", "Say hi.", "--max-tokens", "3", "-o", "-", "--no-cache")
    assert result.exit_code == 0, result.stderr
    usage = out_records(result)[0]["usage"]
    assert usage["cost_usd"] == 0 and usage["cpu_s"] > 0
    assert list(usage["by_model"]) == ["local/smollm2"] and usage["by_model"]["local/smollm2"]["cost_usd"] == 0


# Budget


def budget_run(server, tmp_path, budget, parallel=1, prompts=5):
    inputs = tmp_path / "prompts.jsonl"
    inputs.write_text("".join(json.dumps({"id": str(i), "prompt": f"question {i}"}) + "\n" for i in range(prompts)))
    config = tmp_path / "run.yaml"
    # input free, output $1000 per million: a call may cost up to 8 tokens = $0.008 and costs $0.001 (one word)
    config.write_text('prices:\n  "vllm/a": {input: 0, output: 1000}\nmax_tokens: 8\n')
    out = tmp_path / "out.jsonl"
    result = invoke("vote", "-c", config, "--provider", "vllm", "--model", "a", "--base-url", server.base_url,
                    "-i", inputs, "-o", out, "--budget", budget, "--parallel-prompts", parallel, "-q")
    return result, records(out) if out.exists() else []


def test_budget_stops_before_the_call_that_could_pass_it(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    result, written = budget_run(server, tmp_path, 0.0095)
    # spent 0.001 then 0.002; the third call could bring it to 0.010 > 0.0095: not made
    assert server.calls == 2
    assert result.exit_code == 5
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "stopped by --budget" in lines[0] and "2 prompts done" in lines[0]
    assert "1 stopped mid-way, 2 not started" in lines[0]
    assert [r["status"] for r in written] == ["ok", "ok", "error"]
    assert "budget of $0.0095 reached" in written[2]["errors"][0]
    assert sum(r["usage"]["cost_usd"] for r in written) <= 0.0095


def test_budget_holds_with_concurrent_prompts(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")}, latency=0.05)
    result, written = budget_run(server, tmp_path, 0.0095, parallel=4, prompts=8)
    assert result.exit_code == 5
    assert server.calls * 0.008 <= 0.0095 + 1e-12  # estimates reserved in flight: never two at once here
    assert sum(r["usage"]["cost_usd"] or 0 for r in written) <= 0.0095
    assert len(written) <= 8


def test_budget_with_an_unpriced_model_is_refused_before_any_call(fake_server):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    result = vote(server, "-p", "2+2?", "--budget", "1")
    assert result.exit_code == 2 and server.calls == 0
    assert "--budget: no price for member" in result.stderr and "vllm/a" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_budget_must_be_positive():
    result = invoke("vote", "-p", "hi", "--budget", "0")
    assert result.exit_code == 2 and "budget" in result.stderr


# Cache


def test_cache_hit_makes_no_request_and_is_marked(fake_server):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    first = vote(server, "-p", "2+2?")
    assert server.calls == 1 and out_records(first)[0]["usage"]["cached_calls"] == 0
    second = vote(server, "-p", "2+2?")
    assert server.calls == 1  # nothing reached the server
    record = out_records(second)[0]
    assert record["output"] == out_records(first)[0]["output"]
    assert record["usage"]["cached_calls"] == 1 and record["usage"]["by_model"]["vllm/a"]["cached_calls"] == 1
    assert "1 from the cache" in second.stderr


def test_cache_miss_for_another_request_or_endpoint(fake_server):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    vote(server, "-p", "2+2?")
    vote(server, "-p", "3+3?")
    vote(server, "-p", "2+2?", "--max-tokens", "7")
    other = fake_server({"a": ReplyModel(lambda ctx: "four")})
    vote(other, "-p", "2+2?")
    assert server.calls == 3 and other.calls == 1


def test_sampled_calls_are_cached_only_with_a_seed(fake_server, call_cache_dir):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    vote(server, "-p", "2+2?", "-t", "0.7")
    vote(server, "-p", "2+2?", "-t", "0.7")
    assert server.calls == 2
    assert len(CallCache(call_cache_dir)) == 0  # never stored
    vote(server, "-p", "2+2?", "-t", "0.7", "--seed", "3")
    vote(server, "-p", "2+2?", "-t", "0.7", "--seed", "3")
    assert server.calls == 3


def test_no_cache_and_cache_dir_flags(fake_server, tmp_path, call_cache_dir):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    vote(server, "-p", "2+2?", "--no-cache")
    vote(server, "-p", "2+2?", "--no-cache")
    assert server.calls == 2 and not (call_cache_dir / "calls.sqlite3").exists()
    elsewhere = tmp_path / "elsewhere"
    vote(server, "-p", "2+2?", "--cache-dir", elsewhere)
    vote(server, "-p", "2+2?", "--cache-dir", elsewhere)
    assert server.calls == 3 and (elsewhere / "calls.sqlite3").exists()
    assert not (call_cache_dir / "calls.sqlite3").exists()


def test_cache_false_in_yaml(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    config = tmp_path / "run.yaml"
    config.write_text("cache: false\n")
    vote(server, "-c", config, "-p", "2+2?")
    vote(server, "-c", config, "-p", "2+2?")
    assert server.calls == 2


def test_committee_decoder_calls_go_through_the_cache(fake_server):
    server = fake_server({"a": ScriptedModel("The cat sat"), "b": ScriptedModel("The cat ran")})
    args = ["committee", "-p", "hi", "--provider", "vllm", "--model", "a", "--base-url", server.base_url, "-o", "-"]
    first = invoke(*args)
    made = server.calls
    assert made > 0
    second = invoke(*args)
    assert server.calls == made
    assert out_records(second)[0]["output"] == out_records(first)[0]["output"] == "The cat sat"
    assert out_records(second)[0]["usage"]["cached_calls"] == out_records(second)[0]["usage"]["calls"]


def test_damaged_cache_is_rebuilt_with_one_warning(fake_server, call_cache_dir):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    (call_cache_dir / "calls.sqlite3").write_bytes(b"this is not a database" * 100)
    result = vote(server, "-p", "2+2?")
    assert result.exit_code == 0 and out_records(result)[0]["output"] == "four"
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "damaged" in warnings[0] and "rebuilt" in warnings[0]
    again = vote(server, "-p", "2+2?")
    assert "warning" not in again.stderr and server.calls == 1  # the rebuilt cache works


def test_stream_is_replayed_from_the_cache(tmp_path):
    provider = ScriptedProvider("streamed reply", "another reply")
    wrapped = MeteredProvider(provider, Meter(None, price_table()), CallCache(tmp_path))
    request = Request(user_prompt("hi"), max_tokens=8)

    async def collect() -> list:
        return [piece async for piece in wrapped.stream(request)]

    first = asyncio.run(collect())
    second = asyncio.run(collect())
    assert isinstance(first[-1], Completion) and not first[-1].cached
    assert second[0] == "streamed reply" and second[-1].cached and second[-1].text == "streamed reply"


CONCURRENT_WRITER = """
import sys, threading
from pathlib import Path
from ensemble_cli.cache import CallCache
from ensemble_cli.calls import Completion, Usage
cache = CallCache(Path(sys.argv[1]), warn=lambda message: print("WARN", message))
worker = sys.argv[2]
def write(thread):
    for i in range(40):
        cache.put(f"{worker}-{thread}-{i}", [Completion(f"text {worker} {thread} {i}", usage=Usage(1, 2))])
        cache.put("shared", [Completion(f"from {worker}")])
threads = [threading.Thread(target=write, args=(t,)) for t in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
print("done")
"""


def test_concurrent_writers_from_several_processes(tmp_path):
    workers = [subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(tmp_path), str(w)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(4)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for (stdout, stderr), worker in zip(outputs, workers):
        assert worker.returncode == 0, stderr
        assert stdout.strip() == "done"  # no warning: nothing was lost or switched off
    cache = CallCache(tmp_path)
    assert len(cache) == 4 * 3 * 40 + 1
    found = cache.get("2-1-39")
    assert found is not None and found[0].text == "text 2 1 39" and found[0].usage == Usage(1, 2)
    shared = cache.get("shared")
    assert shared is not None and shared[0].text.startswith("from ")
    with sqlite3.connect(tmp_path / "calls.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_key_names_the_endpoint_and_the_whole_request():
    a, b = ScriptedProvider(model="m1"), ScriptedProvider(model="m2")
    request = Request(user_prompt("hi"), max_tokens=8)
    assert call_key(a, request) == call_key(a, Request(user_prompt("hi"), max_tokens=8))
    assert call_key(a, request) != call_key(b, request)
    for change in ({"max_tokens": 9}, {"seed": 1}, {"stop": ("x",)}, {"top_logprobs": 2}, {"prefix": "The"},
                   {"n": 2}, {"top_p": 0.5}, {"prompt": "raw"}):
        assert call_key(a, request) != call_key(a, request.but(**change)), change


def test_calls_in_flight_when_the_budget_stops_are_in_the_record(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")}, latency=0.05)
    config = tmp_path / "run.yaml"
    config.write_text('prices:\n  "vllm/a": {input: 0, output: 1000}\nmax_tokens: 8\n')
    out = tmp_path / "out.jsonl"
    # four samples at $0.008 each, at most: two fit in $0.02, the third is refused while two are in flight
    result = invoke("vote", "-c", config, "--provider", "vllm", "--model", "a", "--base-url", server.base_url,
                    "-n", "4", "--temperature", "0.5", "--seed", "1", "-p", "q", "-o", out, "--budget", "0.02", "-q")
    assert result.exit_code == 5 and "stopped by --budget" in result.stderr
    [record] = records(out)
    assert record["status"] == "error" and server.calls == 2
    assert record["usage"]["calls"] == 2 and record["usage"]["cost_usd"] == pytest.approx(0.002)
    assert "$0.002 spent in all" in result.stderr
