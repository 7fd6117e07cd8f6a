"""The endpoint transport: concurrency bound per HTTP request, slots held by open streams and not by
retry waits, the per-attempt deadline, streams that end early, and the redaction of keys in errors; a whole
moa run holding --max-concurrency with streams in flight."""

from __future__ import annotations

import asyncio
import time

import pytest
from fake_server import Fault, ReplyModel, ScriptedModel
from typer.testing import CliRunner

from conftest import batch, echo, records
from ensemble_cli.cli import app
from ensemble_cli.config import MemberConfig
from ensemble_cli.members import fill
from ensemble_cli.errors import AuthError, ProviderError, RetriesExhaustedError
from ensemble_cli.calls import Completion, Request, user_prompt
from ensemble_cli.providers.endpoint import display_url

MODELS = {"toy": ScriptedModel("one two three four five six", confidence=0.8)}


def run_with(registry_for, server, body, provider="vllm", environ=None, base_url=None, **run):
    """Runs ``body(provider)`` inside one event loop that owns the registry, as a Session does."""
    registry = registry_for(environ=environ, **run)
    member = fill(registry.run, MemberConfig(provider=provider, model="toy", base_url=base_url or server.base_url), "a")

    async def go():
        try:
            return await body(registry.provider_for(member))
        finally:
            await registry.aclose()

    return asyncio.run(go())


async def collect(p, request):
    return [item async for item in p.stream(request)]


def test_streams_hold_their_slot_until_read(fake_server, registry_for):
    server = fake_server(MODELS, stream_delay=0.01)

    async def moa_like(p):
        return await asyncio.gather(*(collect(p, Request(user_prompt(f"q{i}"), max_tokens=6)) for i in range(20)))

    results = run_with(registry_for, server, moa_like, max_concurrency=4, max_retries=0)
    assert server.max_in_flight == 4  # bounded, and the bound was used
    assert all(isinstance(r[-1], Completion) and r[-1].text == "one two three four five six" for r in results)


def test_retry_wait_holds_no_slot(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.append(Fault("status", 429, {"Retry-After": "0.5"}))

    async def two(p):
        first = asyncio.create_task(p.complete(Request(user_prompt("a"), max_tokens=1)))
        await asyncio.sleep(0.1)  # the first call has had its 429 and is waiting to retry
        (second,) = await p.complete(Request(user_prompt("b"), max_tokens=1))
        waiting = not first.done()
        (retried,) = await first
        return second, waiting, retried

    second, waiting, retried = run_with(registry_for, server, two, max_concurrency=1, max_retries=2)
    assert waiting and retried.retries == 1 and second.retries == 0
    users = [r["body"]["messages"][0]["content"] for r in server.requests]
    assert users == ["a", "b", "a"]  # b ran in the slot while a waited


def test_timeout_is_a_deadline_for_the_whole_attempt(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.append(Fault("dribble", seconds=0.2))  # headers at once, then a byte every 0.2 s
    started = time.perf_counter()
    with pytest.raises(RetriesExhaustedError, match=r"timed out after 0 retries \(timeout 1 s per attempt\).*raise timeout"):
        run_with(registry_for, server, lambda p: p.complete(Request(user_prompt("q"), max_tokens=3)),
                 timeout=1, max_retries=0)
    assert time.perf_counter() - started < 2.0


def test_a_dribbled_stream_times_out_too(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.append(Fault("dribble", seconds=0.2))
    started = time.perf_counter()
    with pytest.raises(ProviderError, match="timed out"):
        run_with(registry_for, server, lambda p: collect(p, Request(user_prompt("q"), max_tokens=6)),
                 timeout=1, max_retries=0)
    assert time.perf_counter() - started < 2.0


def test_stream_cut_off_is_an_error_not_a_short_success(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.append(Fault("cut"))
    with pytest.raises(ProviderError, match="before the reply was complete"):
        run_with(registry_for, server, lambda p: collect(p, Request(user_prompt("q"), max_tokens=6)), max_retries=0)


def test_stream_counts_usage_and_ends_with_one_completion(fake_server, registry_for):
    server = fake_server(MODELS)
    items = run_with(registry_for, server, lambda p: collect(p, Request(user_prompt("q"), max_tokens=3)))
    *texts, last = items
    assert texts == ["one", " two", " three"] and isinstance(last, Completion)
    assert last.text == "one two three" and last.finish_reason == "length"
    assert last.usage.prompt_tokens == 10 and last.usage.completion_tokens == 3
    assert server.requests[0]["body"]["stream_options"] == {"include_usage": True}


def test_server_that_ignores_stream_still_answers(fake_server, registry_for):
    server = fake_server(MODELS, ignore_stream=True)
    *texts, last = run_with(registry_for, server, lambda p: collect(p, Request(user_prompt("q"), max_tokens=2)))
    assert texts == ["one two"] and last.text == "one two" and last.usage.completion_tokens == 2


def test_fewer_choices_than_n_are_topped_up_with_seeded_calls(fake_server, registry_for):
    replies = iter(f"reply{i}" for i in range(20))
    server = fake_server({"toy": ReplyModel(lambda ctx: next(replies))}, max_choices=1)

    async def twice(p):
        first = await p.complete(Request(user_prompt("q"), n=5, seed=7, max_tokens=3))
        second = await p.complete(Request(user_prompt("q"), n=2, seed=1, max_tokens=3))
        return first, second

    first, second = run_with(registry_for, server, twice)
    assert len(first) == 5 and len({c.text for c in first}) == 5
    bodies = [r["body"] for r in server.requests]
    assert bodies[0]["n"] == 5 and sorted(b["seed"] for b in bodies[1:5]) == [8, 9, 10, 11]
    assert len(second) == 2 and all("n" not in b for b in bodies[5:]) and sorted(b["seed"] for b in bodies[5:]) == [1, 2]


def test_errors_never_carry_the_key(fake_server, registry_for):
    key = "sk-wrong-0123456789abcdef"
    server = fake_server(MODELS, api_key="right")  # its 401 echoes the Authorization header back
    with pytest.raises(AuthError) as caught:
        run_with(registry_for, server, lambda p: p.complete(Request(user_prompt("q"), max_tokens=1)),
                 environ={"MY_KEY": key}, api_key_env="MY_KEY")
    assert key not in str(caught.value) and "MY_KEY" in str(caught.value)


def test_keys_in_base_urls_are_not_shown():
    assert display_url("https://user:SECRETKEY@example.com:8443/v1?api_key=SECRETKEY") == "https://example.com:8443/v1"


def test_connection_refused_names_the_settings(registry_for):
    with pytest.raises(RetriesExhaustedError, match=r"could not connect after 1 retry.*max_retries"):
        run_with(registry_for, None, lambda p: p.complete(Request(user_prompt("q"), max_tokens=1)),
                 base_url="http://127.0.0.1:9/v1", max_retries=1)


def test_moa_holds_max_concurrency_with_streams_in_flight(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(echo)}, latency=0.03, stream_delay=0.01)
    out = tmp_path / "out.jsonl"
    prompts = batch(tmp_path, 3, "name a colour")
    result = CliRunner().invoke(app, ["moa", "--input", str(prompts), "--n", "5", "--layers", "3", "--parallel-prompts",
                                      "3", "--max-concurrency", "4", "--provider", "vllm", "--model", "a", "--base-url",
                                      server.base_url, "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    assert server.calls == 3 * (5 * 3 + 1)
    assert any(r["body"].get("stream") for r in server.requests)  # the aggregators streamed
    assert 2 <= server.max_in_flight <= 4
    assert all(r["status"] == "ok" and r["output"] for r in records(out.read_text()))
