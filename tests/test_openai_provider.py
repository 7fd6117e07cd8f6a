"""The OpenAI-compatible backend against a real HTTP fake server on loopback."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from fake_server import Fault, ReplyModel, ScriptedModel

from ensemble_cli.config import MemberConfig
from ensemble_cli.members import fill
from ensemble_cli.errors import (
    AuthError, CapabilityError, ConfigError, ProviderError, ProviderResponseError, RetriesExhaustedError,
)
from ensemble_cli.calls import Request, user_prompt
from ensemble_cli.providers.openai_compat import parse_logprobs

MODELS = {"toy": ScriptedModel("The sky is blue today", confidence=0.8)}


def provider(registry_for, server, provider="vllm", environ=None, **run):
    registry = registry_for(environ=environ, max_retries=run.pop("max_retries", 2), **run)
    member = fill(registry.run, MemberConfig(provider=provider, model="toy", base_url=server.base_url), "a")
    return registry.provider_for(member)


def complete(p, **request):
    request.setdefault("messages", user_prompt("colour?"))
    return asyncio.run(p.complete(Request(**request)))


def test_chat_with_top_logprobs(fake_server, registry_for):
    server = fake_server(MODELS)
    (c,) = complete(provider(registry_for, server), max_tokens=3, top_logprobs=2)
    assert c.text == "The sky is"
    assert [t.text for t in c.tokens] == ["The", " sky", " is"]
    assert math.isclose(c.tokens[0].logprob, math.log(0.8))
    assert [t.text for t in c.tokens[1].top] == [" sky", " maybe"]
    assert all(isinstance(t.logprob, float) for t in c.tokens)
    assert server.requests[0]["body"]["top_logprobs"] == 2 and server.requests[0]["body"]["logprobs"] is True


@pytest.mark.parametrize("preset", ["vllm", "deepseek", "llamacpp"])
def test_prefix_continuation_per_backend(fake_server, registry_for, preset):
    server = fake_server(MODELS)
    environ = {"DEEPSEEK_API_KEY": "sk-test"}
    (c,) = complete(provider(registry_for, server, preset, environ=environ), prefix="The sky", max_tokens=2, top_logprobs=2)
    assert c.text == " is blue"
    assert c.tokens[0].top[0].text == " is"
    body = server.requests[-1]["body"]
    if preset == "vllm":
        assert body["continue_final_message"] is True and body["messages"][-1]["content"] == "The sky"
    elif preset == "deepseek":
        assert body["messages"][-1] == {"role": "assistant", "content": "The sky", "prefix": True}
    else:  # llama-cpp-python's server: no /props, no /apply-template, so client-side ChatML
        assert [r["path"] for r in server.requests] == ["/props", "/apply-template", "/v1/completions"]
        assert body["prompt"].endswith("<|im_start|>assistant\nThe sky")
        assert body["cache_prompt"] is False and body["repeat_penalty"] == 1.0


def test_plain_openai_refuses_a_prefix(fake_server, registry_for):
    server = fake_server(MODELS)
    p = provider(registry_for, server, "openai", environ={"OPENAI_API_KEY": "sk-test"})
    assert p.capabilities.prefix_continuation is False
    with pytest.raises(ProviderError, match="cannot continue an assistant prefix"):
        complete(p, prefix="The")
    assert server.calls == 0


def test_retries_429_honouring_retry_after(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.extend([Fault("status", 429, {"Retry-After": "0.3"}), Fault("status", 503)])
    started = time.perf_counter()
    (c,) = complete(provider(registry_for, server), max_tokens=1)
    assert c.text == "The" and c.retries == 2 and server.calls == 3
    assert time.perf_counter() - started >= 0.3


def test_gives_up_after_retries_with_clear_error(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.extend([Fault("status", 500, {"Retry-After": "0"})] * 5)
    with pytest.raises(RetriesExhaustedError, match=r"provider 'vllm' .*HTTP 500.*after 2 retries"):
        complete(provider(registry_for, server, max_retries=2), max_tokens=1)
    assert server.calls == 3
    server.faults.clear()
    server.reset_counters()
    server.fail_when = lambda body: True
    with pytest.raises(ProviderError, match=r"provider 'vllm' .*HTTP 500"):
        complete(provider(registry_for, server, max_retries=0), max_tokens=1)
    assert server.calls == 1  # no retries: the first 500 is the error


def test_client_errors_are_not_retried(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.append(Fault("status", 400))
    with pytest.raises(ProviderError, match="HTTP 400: injected 400"):
        complete(provider(registry_for, server), max_tokens=1)
    assert server.calls == 1


def test_timeout_is_retried_then_reported(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.extend([Fault("hang", seconds=1.0)] * 3)
    with pytest.raises(RetriesExhaustedError, match="timed out after 1 retry"):
        complete(provider(registry_for, server, timeout=0.2, max_retries=1), max_tokens=1)


def test_malformed_json_is_a_clear_error(fake_server, registry_for):
    server = fake_server(MODELS)
    server.faults.append(Fault("malformed"))
    with pytest.raises(ProviderResponseError, match="not a valid completion"):
        complete(provider(registry_for, server, max_retries=0), max_tokens=1)


def test_rejected_key_is_an_auth_error(fake_server, registry_for):
    server = fake_server(MODELS, api_key="right")
    p = provider(registry_for, server, environ={"MY_KEY": "wrong"}, api_key_env="MY_KEY")
    with pytest.raises(AuthError, match="rejected.*MY_KEY"):
        complete(p, max_tokens=1)


def test_missing_key_names_the_variable(fake_server, registry_for):
    server = fake_server(MODELS)
    with pytest.raises(AuthError, match="set the environment variable DEEPSEEK_API_KEY, or name the variable that holds the key with api_key_env"):
        provider(registry_for, server, "deepseek")


def test_unknown_provider_and_missing_base_url(registry_for):
    registry = registry_for()
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        registry.provider_for(MemberConfig(name="a", provider="nope", model="x"))
    with pytest.raises(ConfigError, match="needs a base URL"):
        registry.provider_for(MemberConfig(name="a", provider="openai-compatible", model="x"))


def test_concurrency_stays_within_bound(fake_server, registry_for):
    server = fake_server(MODELS, latency=0.1)
    p = provider(registry_for, server, max_concurrency=3)

    async def many():
        return await asyncio.gather(*(p.complete(Request(user_prompt("q"), max_tokens=1)) for _ in range(10)))

    started = time.perf_counter()
    asyncio.run(many())
    elapsed = time.perf_counter() - started
    assert server.max_in_flight == 3
    assert elapsed >= 0.35  # ceil(10 / 3) rounds of 0.1 s


def test_n_choices_and_usage_counted_once(fake_server, registry_for):
    replies = iter(["one", "two", "three", "four", "five", "six", "seven"])
    server = fake_server({"toy": ReplyModel(lambda ctx: next(replies))})
    completions = complete(provider(registry_for, server), n=3, max_tokens=5)
    assert [c.text for c in completions] == ["one", "two", "three"]
    assert completions[0].usage.prompt_tokens == 10 and completions[1].usage.prompt_tokens == 0
    assert server.calls == 1 and server.requests[0]["body"]["n"] == 3  # vLLM honours n: one request
    server.reset_counters()
    assert [c.text for c in complete(provider(registry_for, server), max_tokens=5)] == ["four"]
    assert "n" not in server.requests[0]["body"]  # one choice: no n sent
    server.reset_counters()
    llamacpp = provider(registry_for, server, "llamacpp")
    assert llamacpp.capabilities.honours_n is False
    assert len(complete(llamacpp, n=3, temperature=0.5, max_tokens=5)) == 3
    assert server.calls == 3 and all("n" not in r["body"] for r in server.requests)  # one request a choice


def test_decoder_names_a_server_without_logprobs(fake_server, registry_for):
    """A server that ignores logprobs: the decoder (committee, cot-decode) says so, not a short success."""
    from ensemble_cli.usage import Tally

    server = fake_server(MODELS)
    chat = server._chat
    server._chat = lambda body, call_index: chat({**body, "logprobs": False}, call_index)
    decoder = provider(registry_for, server, max_retries=0).decoder([Request(user_prompt("colour?"))], 2, Tally())
    with pytest.raises(CapabilityError, match="no top log-probabilities came back"):
        asyncio.run(decoder.positions([0], 4))
    assert server.requests[0]["body"]["logprobs"] is True and server.calls == 1  # asked for, and ignored


def test_parse_legacy_logprobs_sorted():
    parsed = parse_logprobs({"tokens": ["a"], "token_logprobs": [-0.1], "top_logprobs": [{"b": -3.0, "a": -0.1}]})
    assert [t.text for t in parsed[0].top] == ["a", "b"]


@pytest.mark.parametrize(("body", "says"), [
    ({"choices": "all of them"}, "choices is str, not a list"),
    ({"choices": [{"index": 0, "message": {"role": "assistant", "content": 5}, "finish_reason": "stop"}]},
     "the reply's text is int, not text"),
    ({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": 7}]},
     "finish_reason is int, not text"),
    ({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": "many", "completion_tokens": 1}}, "usage.prompt_tokens 'many' is not a number"),
    ({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop",
                   "logprobs": {"content": [{"token": "hi", "logprob": "low", "top_logprobs": []}]}}]},
     "a token's logprob 'low' is not a number"),
    ({"choices": [{"index": "first", "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]},
     "a choice's index 'first' is not a number"),
])
def test_a_reply_of_the_wrong_shape_is_the_upstreams_fault(fake_server, registry_for, body, says):
    server = fake_server(MODELS)
    server.faults.append(Fault("body", body=body))
    with pytest.raises(ProviderResponseError, match="not a valid completion") as info:
        complete(provider(registry_for, server, max_retries=0), max_tokens=1)
    assert says in str(info.value)


def test_a_bug_of_ours_while_reading_a_reply_is_an_internal_error(fake_server, registry_for, monkeypatch, capsys):
    from ensemble_cli.cli.boundary import guarded
    from ensemble_cli.providers import parse

    def broken(usage):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(parse, "parse_usage", broken)
    server = fake_server(MODELS)
    p = provider(registry_for, server, max_retries=0)
    with pytest.raises(TypeError):
        complete(p, max_tokens=1)
    assert guarded(lambda: complete(p, max_tokens=1)) == 1  # exit 1, not the upstream's exit 4
    err = capsys.readouterr().err
    assert "internal error: TypeError" in err and "not a valid completion" not in err
