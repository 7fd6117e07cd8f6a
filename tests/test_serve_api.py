"""`ensemble serve` against a fake upstream: the OpenAI SDK, raw httpx SSE, errors, keys and limits."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import httpx
import openai
import pytest
from fake_server import ReplyModel, ScriptedModel
from serve_helpers import serve, sse_events, sse_payloads

from ensemble_cli.server import Limits

SCRIPT = "The sky is blue because air scatters blue light ."
UPSTREAM_KEY = "sk-upstream-secret-0123456789abcdef"


def models():
    return {"sky": ScriptedModel(SCRIPT), "sky2": ScriptedModel("The sky is blue since air scatters light ."),
            "paris": ReplyModel(lambda ctx: "Paris is the capital.")}


def configs(url: str) -> dict[str, dict]:
    base = {"provider": "vllm", "base_url": url, "max_retries": 0, "timeout": 5}
    return {
        "committee": {**base, "strategy": "committee", "max_tokens": 16,
                      "members": [{"name": "a", "model": "sky"}, {"name": "b", "model": "sky2"}]},
        "vote": {**base, "strategy": "vote", "model": "paris", "temperature": 0.5,
                 "members": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "vote": {"extract": "text"}},
        "moa": {**base, "strategy": "moa", "model": "paris", "n": 2, "moa": {"layers": 1}},
        "fixed": {**base, "strategy": "vote", "model": "paris",
                  "members": [{"name": "a", "temperature": 0.2}, {"name": "b", "temperature": 0.9}]},
    }


@pytest.fixture
def upstream(fake_server):
    return fake_server(models())


@pytest.fixture
def server(upstream, tmp_path):
    with serve(tmp_path / "ens", configs(upstream.base_url), Limits(keep_alive_s=0.05)) as url:
        yield url


def ask(model: str, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Why is the sky blue?"}], **extra}


def test_models_and_health(server):
    listed = openai.OpenAI(base_url=f"{server}/v1", api_key="unused").models.list()
    assert sorted(m.id for m in listed.data) == ["committee", "fixed", "moa", "vote"]
    assert httpx.get(f"{server}/health").json()["status"] == "ok"


def test_sync_sdk_vote_usage_is_the_sum_over_every_member_call(server, upstream):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    reply = client.chat.completions.create(**ask("vote"))
    assert reply.choices[0].message.content == "Paris is the capital."
    extension = reply.model_extra["ensemble"]
    assert extension["strategy"] == "vote" and extension["calls"] == upstream.calls == 3
    assert extension["agreement"] == 1.0
    assert reply.usage.prompt_tokens == 10 * upstream.calls  # the fake counts 10 prompt tokens per call
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 30


def test_async_sdk_streams_the_committee_token_by_token(server):
    async def main():
        client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="unused")
        whole = await client.chat.completions.create(**ask("committee"))
        stream = await client.chat.completions.create(**ask("committee"), stream=True,
                                                      stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        return whole, chunks

    whole, chunks = asyncio.run(main())
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content
    assert len(pieces) >= 5, "one chunk per committee token, not the answer in one piece"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == whole.usage.total_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_committee_logprobs_are_the_merged_distribution(server):
    body = httpx.post(f"{server}/v1/chat/completions", json=ask("committee", logprobs=True, top_logprobs=2),
                      timeout=30).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == body["choices"][0]["message"]["content"]
    first = content[0]
    assert first["token"] == "The" and len(first["top_logprobs"]) == 2
    assert first["top_logprobs"][0]["token"] == "The"
    assert abs(first["top_logprobs"][0]["logprob"] - first["logprob"]) < 1e-3
    # where the members disagree ("because" / "since"), the merged probability is below either member's 0.9
    split = next(t for t in content if t["token"] in (" because", " since"))
    assert split["logprob"] < -0.2


def test_moa_streams_the_aggregator_as_it_writes_over_raw_sse(server):
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=ask("moa", stream=True), timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = list(sse_events(r))
    assert lines[-1] == "data: [DONE]"
    payloads = sse_payloads(lines)
    pieces = [p["choices"][0]["delta"].get("content") for p in payloads if p["choices"]]
    assert "".join(filter(None, pieces)) == "Paris is the capital."
    assert len([p for p in pieces if p]) >= 3
    assert payloads[-1]["ensemble"]["strategy"] == "moa"


def test_vote_stream_sends_keep_alives_while_it_works(fake_server, tmp_path):
    slow = fake_server(models(), latency=0.3)
    with serve(tmp_path / "ens", configs(slow.base_url), Limits(keep_alive_s=0.05)) as url:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=ask("vote", stream=True), timeout=30) as r:
            lines = list(sse_events(r))
    first_content = next(i for i, line in enumerate(lines) if '"content": "Paris' in line)
    assert ": keep-alive" in lines[:first_content]
    assert lines[-1] == "data: [DONE]"


@pytest.mark.parametrize("extra, status, param, says", [
    ({"model": "nope"}, 400, "model", "unknown model 'nope'"),
    ({"ensemble": {"rounds": 0}}, 400, "ensemble.rounds", "greater than or equal to 1"),
    ({"ensemble": {"bogus": 1}}, 400, "ensemble.bogus", "unknown key"),
    ({"ensemble": {"judge": {"provider": "openai", "base_url": "http://evil"}}}, 400, "ensemble.judge", "set on the server"),
    ({"top_p": 0.5}, 400, "top_p", "not supported"),
    ({"logprobs": True}, 400, "logprobs", "no token distribution"),
    ({"stop": ["."]}, 400, "stop", "cannot stop on strings"),
    ({"n": 2}, 400, "n", "not supported"),
    ({"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].role", "not supported"),
])
def test_bad_requests_are_400s_naming_the_parameter(server, upstream, extra, status, param, says):
    r = httpx.post(f"{server}/v1/chat/completions", json={**ask("vote"), **extra})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and says in error["message"] and error["type"] == "invalid_request_error"
    assert upstream.calls == 0, "refused before any member call"


def test_a_temperature_no_member_would_use_is_refused(server):
    r = httpx.post(f"{server}/v1/chat/completions", json=ask("fixed", temperature=0.3))
    assert r.status_code == 400 and "sets every member's temperature" in r.json()["error"]["message"]
    assert httpx.post(f"{server}/v1/chat/completions", json=ask("vote", temperature=0.3), timeout=30).status_code == 200


@pytest.mark.parametrize("body, says", [
    (b'{"model": "vote", "messages": [{"role": "user", "content": "hi}]}',
     "not valid JSON (Unterminated string starting at column 60)"),
    (b'{"model": "vote",\n"messages": }', "not valid JSON (Expecting value at line 2, column 13)"),
    (b'{"model": "\xe9"}', "not valid JSON (not UTF-8)"),
])
def test_a_body_that_is_not_json_is_a_400_saying_where(server, body, says):
    r = httpx.post(f"{server}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("method, path, status, says", [
    ("GET", "/v1/chat/completions", 405, "GET is not allowed on /v1/chat/completions; use POST"),
    ("POST", "/v1/models", 405, "POST is not allowed on /v1/models; use GET"),
    ("GET", "/v1/nope", 404, "no such path /v1/nope"),
])
def test_a_wrong_method_or_path_is_the_clients_mistake(server, method, path, status, says):
    r = httpx.request(method, f"{server}{path}")
    assert r.status_code == status and says in r.json()["error"]["message"], r.text
    kind = "invalid_request_error" if status == 405 else "not_found_error"
    assert r.json()["error"]["type"] == kind
    if status == 405:
        assert r.headers["allow"] in ("POST", "GET")


@pytest.mark.parametrize("status, kind", [
    (400, "invalid_request_error"), (401, "authentication_error"), (402, "invalid_request_error"),
    (404, "not_found_error"), (405, "invalid_request_error"), (413, "invalid_request_error"),
    (422, "invalid_request_error"), (429, "rate_limit_error"), (499, "invalid_request_error"),
    (500, "server_error"), (502, "upstream_error"), (503, "server_shutting_down"), (504, "timeout_error"),
])
def test_every_status_the_server_returns_has_its_openai_error_type(status, kind):
    from ensemble_cli.server.errors import error_body

    assert error_body(status, "x")["error"]["type"] == kind


def test_body_too_large_is_413(upstream, tmp_path):
    with serve(tmp_path / "ens", configs(upstream.base_url), Limits(max_body=2048)) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=ask("vote", padding="x" * 5000))
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_queue_full_is_429_with_retry_after(fake_server, tmp_path):
    slow = fake_server(models(), latency=0.5)
    with serve(tmp_path / "ens", configs(slow.base_url), Limits(queue=1)) as url:
        first: list[httpx.Response] = []
        worker = threading.Thread(target=lambda: first.append(
            httpx.post(f"{url}/v1/chat/completions", json=ask("vote"), timeout=30)))
        worker.start()
        while not slow.calls:
            pass
        second = httpx.post(f"{url}/v1/chat/completions", json=ask("vote"))
        worker.join()
    assert second.status_code == 429 and second.headers["retry-after"] == "1"
    assert second.json()["error"]["type"] == "rate_limit_error"
    assert "(1 request in progress, at most 1)" in second.json()["error"]["message"]
    assert first[0].status_code == 200


def test_failing_members_are_502_without_the_upstream_key(fake_server, tmp_path):
    keyed = fake_server(models(), api_key="sk-other-key-that-does-not-match-000")
    config = {"vote": {**configs(keyed.base_url)["vote"], "api_key_env": "UPSTREAM_KEY"}}
    with serve(tmp_path / "ens", config, environ={"UPSTREAM_KEY": UPSTREAM_KEY}) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=ask("vote"), timeout=30)
        streamed = httpx.post(f"{url}/v1/chat/completions", json=ask("vote", stream=True), timeout=30)
    assert r.status_code == 502, r.text
    assert UPSTREAM_KEY not in r.text and UPSTREAM_KEY[10:] not in r.text and "Traceback" not in r.text
    assert keyed.headers_seen[0]["authorization"] == f"Bearer {UPSTREAM_KEY}", "the member key went upstream"
    assert streamed.status_code == 200 and UPSTREAM_KEY not in streamed.text
    assert '"error"' in streamed.text and streamed.text.rstrip().endswith("data: [DONE]")


def test_members_all_failing_is_502(upstream, server):
    upstream.fail_when = lambda body: True
    r = httpx.post(f"{server}/v1/chat/completions", json=ask("vote"), timeout=30)
    assert r.status_code == 502 and r.json()["error"]["code"] == "members_failed"


def test_past_the_deadline_is_504(fake_server, tmp_path):
    slow = fake_server(models(), latency=1.0)
    with serve(tmp_path / "ens", configs(slow.base_url), Limits(deadline_s=0.2)) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=ask("vote"), timeout=30)
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"


def test_server_key_is_required_when_set(upstream, tmp_path):
    from ensemble_cli.server import load_ensembles
    from serve_helpers import ServerThread, write_ensembles

    ensembles = load_ensembles(write_ensembles(tmp_path / "ens", configs(upstream.base_url)), {})
    with ServerThread(ensembles, Limits(api_key="server-key-123456")) as url:
        missing = httpx.get(f"{url}/v1/models")
        wrong = httpx.post(f"{url}/v1/chat/completions", json=ask("vote"), headers={"Authorization": "Bearer nope"})
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="server-key-123456")
        ok = sdk.chat.completions.create(**ask("vote"))
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong-key-000").models.list()
        health = httpx.get(f"{url}/health")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert ok.choices[0].message.content and health.status_code == 200
    assert upstream.calls == 3, "rejected requests never reached a member"


def test_log_appends_one_record_per_request_with_its_id(upstream, tmp_path):
    log = tmp_path / "requests.jsonl"
    with serve(tmp_path / "ens", configs(upstream.base_url), Limits(log_path=str(log))) as url:
        ok = httpx.post(f"{url}/v1/chat/completions", json=ask("vote", user="alice"), timeout=30)
        bad = httpx.post(f"{url}/v1/chat/completions", json=ask("nope"))
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "rejected"]
    assert records[0]["request_id"] == ok.headers["x-request-id"] and records[0]["schema"] == 2
    assert records[0]["user"] == "alice" and records[0]["output"] == "Paris is the capital."
    assert records[1]["request_id"] == bad.headers["x-request-id"]


def test_every_refusal_is_logged_once_with_its_status(upstream, tmp_path):
    log = tmp_path / "requests.jsonl"
    limits = Limits(log_path=str(log), max_body=2048, api_key="right-key")
    key = {"Authorization": "Bearer right-key"}
    with serve(tmp_path / "ens", configs(upstream.base_url), limits) as url:
        sent = [
            httpx.post(f"{url}/v1/chat/completions", json=ask("vote")),  # no key
            httpx.post(f"{url}/v1/chat/completions", json=ask("vote"), headers={"Authorization": "Bearer wrong"}),
            httpx.post(f"{url}/v1/chat/completions", content=b"{not json", headers=key),
            httpx.post(f"{url}/v1/chat/completions", json=ask("vote", user="x" * 4096), headers=key),
            httpx.post(f"{url}/v1/chat/completions", json=ask("nope"), headers=key),
            httpx.post(f"{url}/v1/chat/completions", json=ask("vote", top_p=0.5), headers=key),
        ]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["http_status"] for r in records] == [r.status_code for r in sent] == [401, 401, 400, 413, 400, 400]
    assert all(r["status"] == "rejected" for r in records)
    assert [r["request_id"] for r in records] == [r.headers["x-request-id"] for r in sent]
    assert records[4]["model"] == "nope" and "right-key" not in log.read_text()
    assert upstream.calls == 0


def test_refuses_a_public_address_without_a_server_key(tmp_path):
    from typer.testing import CliRunner

    from ensemble_cli.cli import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "without a server key" in result.stderr and "--api-key-env" in result.stderr


def test_default_ensembles_are_the_example_configs():
    from ensemble_cli.server import load_ensembles

    names = set(load_ensembles(None, {}))
    assert {"committee", "vote", "moa", "moa-lite", "cot-decode", "verbalize"} <= names


def test_sigterm_finishes_the_request_in_flight_then_exits(fake_server, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from serve_helpers import free_port, write_ensembles

    slow = fake_server(models(), latency=1.0)
    directory = write_ensembles(tmp_path / "ens", {"vote": configs(slow.base_url)["vote"]})
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "ensemble_cli", "serve", "--ensembles", str(directory),
                                "--port", str(port), "--grace", "20"], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        replies: list[httpx.Response] = []
        worker = threading.Thread(target=lambda: replies.append(
            httpx.post(f"{url}/v1/chat/completions", json=ask("vote"), timeout=30)))
        worker.start()
        while not slow.calls:
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        worker.join()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert replies[0].status_code == 200 and replies[0].json()["choices"][0]["message"]["content"]
    assert b"Traceback" not in process.stderr.read()


def test_a_broken_user_ensemble_is_skipped_with_a_warning_not_the_whole_server(tmp_path, monkeypatch):
    from ensemble_cli.errors import ConfigError
    from ensemble_cli.server import load_ensembles

    home = tmp_path / "home"
    (home / "ensembles").mkdir(parents=True)
    (home / "ensembles" / "broken.yaml").write_text("strategy: vote\nbogus_key: 1\n")
    (home / "ensembles" / "mine.yaml").write_text("strategy: vote\nprovider: vllm\nmodel: toy\nbase_url: http://127.0.0.1:9/v1\n")
    monkeypatch.setenv("ENSEMBLE_HOME", str(home))
    warnings: list[str] = []
    served = load_ensembles(None, warn=warnings.append)
    assert "mine" in served and "committee" in served and "broken" not in served
    assert len(warnings) == 1 and "broken" in warnings[0] and "bogus_key: unknown key" in warnings[0]
    with pytest.raises(ConfigError, match="bogus_key"):  # a file named with --ensembles must be valid
        load_ensembles(home / "ensembles" / "broken.yaml")


def test_an_example_whose_model_is_not_installed_is_left_out_with_a_warning(tmp_path, monkeypatch):
    from ensemble_cli.errors import ConfigError
    from ensemble_cli.providers import local_models
    from ensemble_cli.server import load_ensembles
    from ensemble_cli.server.serve import validate

    monkeypatch.setenv("ENSEMBLE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(local_models.NamedModel, "installed", lambda model: model.name == "smollm2")
    warnings: list[str] = []
    served = validate(load_ensembles(None, warn=warnings.append), warnings.append)
    assert "vote" in served and "committee" in served
    assert "pool" not in served and "pool-committee" not in served
    assert len(warnings) == 2 and all("pip install 'ensemble-cli[pool]'" in w and "not served" in w for w in warnings)
    with pytest.raises(ConfigError, match=r"ensemble 'pool.*not installed"):  # --ensembles: each must be valid
        validate(load_ensembles(Path(__file__).parents[1] / "configs" / "pool.yaml"))
