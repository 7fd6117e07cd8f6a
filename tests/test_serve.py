"""`ensemble serve`: the embedded model over real HTTP, used through the OpenAI-compatible backend."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import httpx
import pytest

from conftest import run_strategy
from ensemble_cli.config import MemberConfig
from ensemble_cli.calls import Message, Request

pytestmark = pytest.mark.embedded  # every test here loads the embedded model

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
    from typer.testing import CliRunner

    from ensemble_cli.cli import app

    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["committee", "--prompt", "Name a colour.", "--provider", "llamacpp",
                                      "--model", "smollm2", "--base-url", server_url, "--max-tokens", "6",
                                      "--draft", "4", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert '"status": "ok"' in out.read_text()
