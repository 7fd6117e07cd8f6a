"""Retries through the openai SDK's loop, with its wait calculation patched (as openai's own tests do):
what is retried, how long it would wait, what gives up at once (through the CLI too), and the retries counted
either way."""

from __future__ import annotations

import asyncio

import openai
import pytest
from fake_server import AnyStrategy, Fault, ScriptedModel
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.config import MemberConfig
from ensemble_cli.errors import AuthError, ProviderError, RetriesExhaustedError
from ensemble_cli.providers import retry
from ensemble_cli.calls import Request, user_prompt

MODELS = {"toy": ScriptedModel("The sky is blue")}
LLAMA_EMBEDDING = {"error": {"code": 500, "message": "Llama model must be created with embedding=True to call this method",
                             "type": "server_error"}}
QUOTA = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                   "type": "insufficient_quota", "code": "insufficient_quota"}}


@pytest.fixture
def waits(monkeypatch):
    """The waits the SDK would sleep, recorded; it sleeps none of them."""
    recorded: list[float] = []
    original = openai._base_client.BaseClient._calculate_retry_timeout

    def instead(self, *args, **kwargs):
        recorded.append(original(self, *args, **kwargs))
        return 0.0

    monkeypatch.setattr(openai._base_client.BaseClient, "_calculate_retry_timeout", instead)
    return recorded


def call(registry_for, server, max_retries=3, **run):
    registry = registry_for(max_retries=max_retries, **run)
    p = registry.provider_for(MemberConfig(name="a", provider="vllm", model="toy", base_url=server.base_url))

    async def go():
        try:
            return await p.complete(Request(user_prompt("q"), max_tokens=1))
        finally:
            await registry.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("faults", "retries", "expected_waits"),
    [
        ([], 0, []),
        ([Fault("status", 429, {"Retry-After": "2"})], 1, [2.0]),
        ([Fault("status", 429, {"retry-after-ms": "250", "Retry-After": "9"})], 1, [0.25]),
        ([Fault("status", 503), Fault("status", 502), Fault("status", 408)], 3, ["backoff"] * 3),
        ([Fault("status", 500, {"x-should-retry": "true"})], 1, ["backoff"]),
    ],
)
def test_retried_until_success(fake_server, registry_for, waits, faults, retries, expected_waits):
    server = fake_server(MODELS)
    server.faults.extend(faults)
    (c,) = call(registry_for, server)
    assert c.text == "The" and c.retries == retries and server.calls == retries + 1
    assert len(waits) == len(expected_waits)
    for actual, expected in zip(waits, expected_waits):
        if expected == "backoff":
            assert 0 < actual <= 8.0
        else:
            assert actual == pytest.approx(expected, abs=0.01)


def test_gives_up_counting_its_retries(fake_server, registry_for, waits):
    server = fake_server(MODELS)
    server.faults.extend([Fault("status", 503)] * 5)
    with pytest.raises(RetriesExhaustedError, match=r"HTTP 503.*after 3 retries.*raise max_retries") as caught:
        call(registry_for, server, max_retries=3)
    assert caught.value.retries == 3 and server.calls == 4


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (Fault("status", 500, {"x-should-retry": "false"}), ProviderError, "not retried"),
        (Fault("status", 500, body=LLAMA_EMBEDDING), ProviderError, "embedding=True.*not retried"),
        (Fault("status", 429, body=QUOTA), ProviderError, "quota exhausted; check your plan/billing"),
        (Fault("status", 401), AuthError, "API key was rejected"),
        (Fault("status", 403), AuthError, "API key was rejected"),
        (Fault("status", 400), ProviderError, "HTTP 400: injected 400"),
    ],
)
def test_not_retried(fake_server, registry_for, waits, fault, error, message):
    server = fake_server(MODELS)
    server.faults.append(fault)
    with pytest.raises(error, match=message) as caught:
        call(registry_for, server)
    assert server.calls == 1 and waits == [] and caught.value.retries == 0
    assert not isinstance(caught.value, RetriesExhaustedError)


def test_permanent_reasons():
    assert retry.permanent_reason(500, LLAMA_EMBEDDING) is not None
    assert retry.permanent_reason(429, QUOTA) == "quota exhausted"
    assert retry.permanent_reason(429, {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}) is None
    assert retry.permanent_reason(503, b"upstream busy") is None
    from ensemble_cli.config import DEFAULT_MAX_RETRIES, RunConfig

    assert DEFAULT_MAX_RETRIES == 4 == RunConfig().max_retries  # one default, in the config


def test_non_transient_500_is_not_retried(fake_server):
    server = fake_server({"a": AnyStrategy()})
    body = {"error": {"message": "Llama model must be created with embedding=True to call this method"}}
    server.faults.extend(Fault("status", 500, body=body) for _ in range(6))
    result = CliRunner().invoke(app, ["moa", "-p", "q", "--layers", "1", "--provider", "vllm", "--model", "a",
                                      "--base-url", server.base_url, "--max-retries", "4", "--n", "1"])
    assert result.exit_code == 4, result.stderr
    assert server.calls == 1 and "embedding=True" in result.stderr
    assert "retries" not in result.stderr.split("embedding=True")[0]
