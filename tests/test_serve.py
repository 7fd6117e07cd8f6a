"""`ensemble serve --raw`: the embedded model over real HTTP, used through the OpenAI-compatible backend (the
llamacpp preset), giving what it gives in-process (completions, prefixes, committee, cot-decode), streams
served concurrently, and moa runs against it recording no empty answer as ok."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from conftest import run_strategy
from ensemble_cli.cli import app
from ensemble_cli.config import MemberConfig
from ensemble_cli.calls import Message, Request
from ensemble_cli.inputs import from_prompt
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.committee import CommitteeSettings
from ensemble_cli.strategies.cot_decode import CotDecodeSettings

pytestmark = pytest.mark.embedded  # every test here loads the embedded model

runner = CliRunner()
MESSAGES = (Message("system", "You are a helpful assistant."), Message("user", "Name a large animal."))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ensemble_cli", "serve", "--raw", "--port", str(port), "--n-ctx", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ensemble serve exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError("ensemble serve did not come up in 90 s")
    yield url
    process.terminate()
    process.wait(timeout=10)


def http_provider(registry_for, url):
    return registry_for().provider_for(MemberConfig(name="http", provider="llamacpp", model="smollm2", base_url=url))


def plain(details):
    return details.model_dump(mode="json") if hasattr(details, "model_dump") else details


def test_chat_completion_with_logprobs_over_http(server_url, registry_for):
    provider = http_provider(registry_for, server_url)
    (c,) = asyncio.run(provider.complete(Request(MESSAGES, max_tokens=8, top_logprobs=3)))
    assert c.text and c.tokens and all(len(t.top) == 3 for t in c.tokens)
    assert all(t.logprob <= 0 for t in c.tokens)


def test_prefix_continuation_over_http_matches_in_process(server_url, registry_for, local_provider):
    provider = http_provider(registry_for, server_url)
    request = Request(MESSAGES, max_tokens=12, prefix="The largest animal")
    (remote,) = asyncio.run(provider.complete(request))
    (local,) = asyncio.run(local_provider.complete(request))
    assert remote.text == local.text
    assert not remote.text.lstrip().startswith("The largest")


def test_draft_equals_stepwise_on_the_real_model_over_http(server_url, registry_for):
    from ensemble_cli.strategies.committee import CommitteeSettings
    from ensemble_cli.inputs import from_prompt
    from ensemble_cli.strategies.base import Member
    from ensemble_cli.strategies.committee import Committee

    provider = http_provider(registry_for, server_url)
    members = [Member("a", provider), Member("b", provider, system="You are a helpful assistant.")]
    item = from_prompt("Name two rivers.")
    stepwise = run_strategy(Committee(members, CommitteeSettings(), 16), item)
    drafted = run_strategy(Committee(members, CommitteeSettings(draft=8), 16), item)
    assert drafted.output == stepwise.output and stepwise.output
    assert drafted.tally.calls < stepwise.tally.calls


def test_committee_over_http(server_url, tmp_path):
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["committee", "--prompt", "Name a colour.", "--provider", "llamacpp",
                                      "--model", "smollm2", "--base-url", server_url, "--max-tokens", "6",
                                      "--draft", "4", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert '"status": "ok"' in out.read_text()


def test_cot_decode_equal_in_process_and_over_http(server_url, registry_for, local_provider):
    from ensemble_cli.strategies.cot_decode import CotDecode

    item = from_prompt("I have 3 apples and buy 5 more. How many apples do I have?")
    settings = CotDecodeSettings(k=4)

    def run(provider):
        result = asyncio.run(CotDecode([Member("m", provider)], settings, 24).run(item))
        return result.output, plain(result.details)["paths"]

    local_output, local_paths = run(local_provider)
    remote_output, remote_paths = run(http_provider(registry_for, server_url))
    assert remote_output == local_output
    assert [(p["first_token"], p["text"], p["answer"]) for p in remote_paths] == \
        [(p["first_token"], p["text"], p["answer"]) for p in local_paths]
    for remote, local in zip(remote_paths, local_paths):
        assert remote["text"].startswith(remote["first_token"].strip()[:1])  # the first token is kept
        assert remote["confidence"] == pytest.approx(local["confidence"], abs=2e-3)


def test_committee_equal_in_process_and_over_http(server_url, registry_for, local_provider):
    from ensemble_cli.strategies.committee import Committee

    item = from_prompt("Name two rivers.")

    def run(provider):
        members = [Member("a", provider), Member("b", provider, system="You are a terse geographer.")]
        result = asyncio.run(Committee(members, CommitteeSettings(), 12).run(item))
        return result.output, [(s["token"], round(s["p"], 3)) for s in plain(result.details)["steps"]]

    local_output, local_steps = run(local_provider)
    remote_output, remote_steps = run(http_provider(registry_for, server_url))
    assert remote_output == local_output and local_output
    assert [t for t, _ in remote_steps] == [t for t, _ in local_steps]
    assert [p for _, p in remote_steps] == pytest.approx([p for _, p in local_steps], abs=2e-3)


@pytest.mark.parametrize("system", [None, "You are a pirate. Answer like one."])
def test_llamacpp_preset_equals_local(system, server_url, registry_for, local_provider):
    messages = ((Message("system", system),) if system else ()) + (Message("user", "What is the capital of France?"),)
    request = Request(messages, max_tokens=16)
    (remote,) = asyncio.run(http_provider(registry_for, server_url).complete(request))
    (local,) = asyncio.run(local_provider.complete(request))
    assert remote.text == local.text and remote.text


def test_two_concurrent_streams_both_complete(server_url):
    async def stream(prompt: str) -> str:
        body = {"model": "smollm2", "stream": True, "max_tokens": 24, "temperature": 0,
                "messages": [{"role": "user", "content": prompt}]}
        text = ""
        async with httpx.AsyncClient(timeout=60) as client:
            async with client.stream("POST", f"{server_url}/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        for choice in json.loads(line[6:]).get("choices", []):
                            text += (choice.get("delta") or {}).get("content") or ""
        return text

    async def both() -> list[str]:
        return await asyncio.gather(stream("Name a fruit."), stream("Name a country."))

    first, second = asyncio.run(both())
    assert first.strip() and second.strip()


def test_moa_against_serve_records_no_empty_ok(server_url, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Name a {w}."}) + "\n"
                               for i, w in enumerate(["fruit", "colour", "city"])))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["moa", "--input", str(prompts), "--n", "2", "--layers", "1", "--max-tokens", "16",
                                 "--provider", "llamacpp", "--model", "smollm2", "--base-url", server_url,
                                 "--parallel-prompts", "3", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 3 and all(r["status"] == "ok" and r["output"].strip() for r in written)
