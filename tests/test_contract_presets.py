"""Contract tests: the exact request body each preset sends (captured by the fake server) against the
shape its provider documents, and documented response examples parsed into the right ``Completion``.

Documentation followed (dates in ``presets.py`` and the README): OpenAI chat/completions reference
(2026-04), DeepSeek thinking mode and chat prefix completion (2026-04-27), Together chat completions
(openapi 2025-06-18), vLLM OpenAI-compatible server (2025-12), Ollama /api/generate (2025-11),
llama.cpp server README (/props, /apply-template, 2025-11).
"""

from __future__ import annotations

import asyncio
import math

import pytest
from fake_server import ScriptedModel

from ensemble_cli.config import MemberConfig
from ensemble_cli.errors import ProviderError
from ensemble_cli.calls import Completion, Request, user_prompt
from ensemble_cli.providers.parse import parse_choices, parse_ollama_generate
from ensemble_cli.providers.presets import PRESETS
from ensemble_cli.providers.registry import ProviderRegistry
from ensemble_cli.config import RunConfig
from openai.types import Completion as RawCompletion
from openai.types.chat import ChatCompletion

MODELS = {m: ScriptedModel("The sky is blue today", confidence=0.8) for m in ("toy", "gpt-4.1", "o3-mini", "gpt-5")}
KEYS = {"OPENAI_API_KEY": "sk-test-openai-000000", "DEEPSEEK_API_KEY": "sk-test-deepseek-0000",
        "TOGETHER_API_KEY": "tgp-test-together-000"}
ASK = user_prompt("colour?")


def calls(server, preset, requests, model="toy", **member):
    registry = ProviderRegistry(RunConfig(max_retries=0), environ=KEYS)
    p = registry.provider_for(MemberConfig(name="a", provider=preset, model=model, base_url=server.base_url, **member))

    async def go():
        out = []
        try:
            for request in requests:
                if request == "stream":
                    out.append([x async for x in p.stream(Request(ASK, max_tokens=2))])
                else:
                    out.append(await p.complete(request))
        finally:
            await registry.aclose()
        return out

    return p, asyncio.run(go())


def bodies(server, path_end):
    return [r["body"] for r in server.requests if r["path"].endswith(path_end)]


CHAT = Request(ASK, max_tokens=2, temperature=0.0)
LOGPROBS = Request(ASK, max_tokens=2, top_logprobs=3)
PREFIX = Request(ASK, max_tokens=2, prefix="The sky")


def test_openai_chat_uses_max_completion_tokens(fake_server):
    server = fake_server(MODELS)
    _, (chat, logprob, streamed) = calls(server, "openai", [CHAT, LOGPROBS, "stream"], model="gpt-4.1")
    first, second, third = bodies(server, "/chat/completions")
    assert first == {"model": "gpt-4.1", "max_completion_tokens": 2, "temperature": 0.0, "top_p": 1.0,
                     "messages": [{"role": "user", "content": "colour?"}]}
    assert second["logprobs"] is True and second["top_logprobs"] == 3 and "max_tokens" not in second
    assert third["stream"] is True and third["stream_options"] == {"include_usage": True}
    assert streamed[-1].usage.completion_tokens == 2


def test_openai_raw_completions_cap_logprobs_at_5(fake_server):
    server = fake_server(MODELS)
    calls(server, "openai", [Request((), max_tokens=1, top_logprobs=20, prompt="Q: 1+1?\nA:")], model="gpt-4.1")
    (body,) = bodies(server, "/v1/completions")
    assert body["logprobs"] == 5 and body["max_tokens"] == 1


@pytest.mark.parametrize("model", ["o3-mini", "gpt-5", "o1", "o4-mini"])
def test_openai_reasoning_models_leave_out_sampling_and_refuse_logprobs(fake_server, model):
    server = fake_server({**MODELS, model: ScriptedModel("ok")})
    p, _ = calls(server, "openai", [CHAT], model=model)
    (body,) = bodies(server, "/chat/completions")
    assert "temperature" not in body and "top_p" not in body and "logprobs" not in body
    assert p.capabilities.max_top_logprobs == 0 and p.capabilities.prefix_continuation is False
    with pytest.raises(ProviderError, match="reasoning model gives no logprobs"):
        calls(server, "openai", [LOGPROBS], model=model)


def test_reasoning_table_is_overridable_per_member():
    from ensemble_cli.providers.presets import PRESETS as table

    assert table["openai"].is_reasoning("gpt-5-mini") and not table["openai"].is_reasoning("gpt-5-chat-latest")
    assert not table["openai"].is_reasoning("gpt-4.1")


def test_deepseek_disables_thinking_and_continues_a_prefix(fake_server):
    server = fake_server(MODELS)
    calls(server, "deepseek", [CHAT, LOGPROBS, PREFIX, "stream"])
    chat, logprob, prefix, streamed = bodies(server, "/chat/completions")
    for body in (chat, logprob, prefix, streamed):
        assert body["thinking"] == {"type": "disabled"}
    assert logprob["logprobs"] is True and logprob["top_logprobs"] == 3
    assert prefix["messages"][-1] == {"role": "assistant", "content": "The sky", "prefix": True}
    assert streamed["stream_options"] == {"include_usage": True}
    assert "n" not in chat


def test_deepseek_default_model_is_v4(fake_server):
    server = fake_server({"deepseek-v4-flash": ScriptedModel("hi")})
    p, _ = calls(server, "deepseek", [CHAT], model=None)
    assert p.model == "deepseek-v4-flash" and PRESETS["deepseek"].base_url.endswith("/beta")


def test_deepseek_thinks_only_when_opted_in_and_sampling():
    from ensemble_cli.providers.openai_compat import MemberOptions, OpenAICompatibleProvider
    from ensemble_cli.providers.endpoint import Endpoint

    endpoint = Endpoint(PRESETS["deepseek"], "http://x/beta", "k", None, timeout_s=1, max_retries=0,
                        max_concurrency=1, transport_for=lambda: None)  # type: ignore[arg-type,return-value]
    thinker = OpenAICompatibleProvider(endpoint, "deepseek-v4-pro", "m", "deepseek", None, MemberOptions(thinking=True))
    assert thinker._extra(Request(ASK, temperature=0.7))["thinking"] == {"type": "enabled"}
    assert thinker._extra(Request(ASK, temperature=0.0))["thinking"] == {"type": "disabled"}
    assert thinker._extra(Request(ASK, temperature=0.7, top_logprobs=2))["thinking"] == {"type": "disabled"}


def test_vllm_sends_neutral_sampling(fake_server):
    server = fake_server(MODELS)
    calls(server, "vllm", [CHAT, PREFIX])
    chat, prefix = bodies(server, "/chat/completions")
    for body in (chat, prefix):
        assert body["repetition_penalty"] == 1.0 and body["top_k"] == -1 and body["min_p"] == 0.0
        assert body["max_tokens"] == 2
    assert prefix["continue_final_message"] is True and prefix["add_generation_prompt"] is False


def test_together_integer_logprobs_and_raw_prefix(fake_server):
    server = fake_server(MODELS)
    p, (_, (c,)) = calls(server, "together", [LOGPROBS, PREFIX])
    (chat,) = bodies(server, "/chat/completions")
    (raw,) = bodies(server, "/v1/completions")
    assert chat["logprobs"] == 3 and "top_logprobs" not in chat
    assert raw["prompt"].endswith("<|im_start|>assistant\nThe sky") and c.text == " is blue"
    assert p.capabilities.prefix_continuation and p.template_source == "client-side ChatML"


def test_llamacpp_renders_with_the_template_from_props(fake_server):
    template = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    props = {"chat_template": template, "bos_token": "<s>", "eos_token": "<|im_end|>", "total_slots": 1}
    server = fake_server(MODELS, props=props)
    p, ((c,),) = calls(server, "llamacpp", [PREFIX])
    (raw,) = bodies(server, "/v1/completions")
    assert raw["prompt"] == "<|im_start|>user\ncolour?<|im_end|>\n<|im_start|>assistant\nThe sky"  # bos left to the server
    assert raw["cache_prompt"] is False and raw["repeat_penalty"] == 1.0 and c.text == " is blue"
    assert p.template_source == "server chat template (GET /props, rendered client-side)"
    assert p.capabilities.embeddings is False


def test_llamacpp_falls_back_to_apply_template(fake_server):
    def apply(messages):
        return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"

    server = fake_server(MODELS, apply_template=apply)
    p, ((c,),) = calls(server, "llamacpp", [PREFIX])
    assert c.text == " is blue" and p.template_source == "server chat template (POST /apply-template)"
    assert [r["path"] for r in server.requests] == ["/props", "/apply-template", "/apply-template", "/v1/completions"]


def test_ollama_continues_a_prefix_through_native_generate(fake_server):
    server = fake_server(MODELS)
    p, ((c,), streamed) = calls(server, "ollama", [PREFIX.but(top_logprobs=2), "stream"])
    (body,) = bodies(server, "/api/generate")
    assert body["raw"] is True and body["stream"] is False and body["prompt"].endswith("assistant\nThe sky")
    assert body["options"]["num_predict"] == 2 and body["options"]["repeat_penalty"] == 1.0
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert c.text == " is blue" and c.tokens[0].top[0].text == " is" and c.usage.completion_tokens == 2
    assert isinstance(streamed[-1], Completion) and streamed[-1].text == "The sky"


# Documented response examples, in each provider's own shape


def test_openai_chat_example_parses():
    example = {"id": "chatcmpl-123", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop",
                            "logprobs": {"content": [{"token": "Hello", "logprob": -0.31, "bytes": [72],
                                                      "top_logprobs": [{"token": "Hello", "logprob": -0.31, "bytes": [72]},
                                                                       {"token": "Hi", "logprob": -1.3, "bytes": [72]}]}],
                                         "refusal": None}}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}
    (c,) = parse_choices(ChatCompletion.construct(**example), chat=True, latency=0, retries=0, provider="openai", model="m")
    assert c.text == "Hello" and c.tokens[0].logprob == -0.31 and [t.text for t in c.tokens[0].top] == ["Hello", "Hi"]
    assert c.usage.prompt_tokens == 9


def test_together_chat_example_with_eos_and_token_lists():
    example = {"id": "x", "object": "chat.completion", "created": 1, "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
               "prompt": [], "choices": [{"index": 0, "finish_reason": "eos", "seed": 1,
                                          "message": {"role": "assistant", "content": "Blue"},
                                          "logprobs": {"tokens": ["Blue"], "token_logprobs": [-0.05], "token_ids": [1],
                                                       "top_logprobs": {"Blue": -0.05, "Red": -3.1}}}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
    (c,) = parse_choices(ChatCompletion.construct(**example), chat=True, latency=0, retries=0, provider="together", model="m")
    assert c.finish_reason == "stop" and c.text == "Blue"
    assert c.tokens[0].logprob == -0.05 and [t.text for t in c.tokens[0].top] == ["Blue", "Red"]


def test_raw_completion_example_with_per_position_maps():
    example = {"id": "x", "object": "text_completion", "created": 1, "model": "m",
               "choices": [{"index": 0, "text": " 4", "finish_reason": "length",
                            "logprobs": {"tokens": [" 4"], "token_logprobs": [-0.2], "text_offset": [0],
                                         "top_logprobs": [{" 4": -0.2, " four": -2.0}]}}]}
    (c,) = parse_choices(RawCompletion.construct(**example), chat=False, latency=0, retries=0, provider="p", model="m")
    assert c.text == " 4" and c.finish_reason == "length" and c.tokens[0].top[1].text == " four"


def test_ollama_generate_example():
    example = {"model": "gemma3", "created_at": "2025-11-20T00:00:00Z", "response": "Hello", "done": True,
               "done_reason": "stop", "prompt_eval_count": 12, "eval_count": 1,
               "logprobs": [{"token": "Hello", "logprob": -0.1, "bytes": [72],
                             "top_logprobs": [{"token": "Hello", "logprob": -0.1}, {"token": "Hi", "logprob": -2.5}]}]}
    c = parse_ollama_generate(example, latency=0, retries=0, provider="ollama", model="gemma3")
    assert c.text == "Hello" and c.usage.prompt_tokens == 12 and math.isclose(c.tokens[0].top[1].logprob, -2.5)


def test_deepseek_thinking_example_keeps_only_the_answer():
    example = {"id": "x", "object": "chat.completion", "created": 1, "model": "deepseek-v4-flash",
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "9.8", "reasoning_content": "compare digits"}}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}
    (c,) = parse_choices(ChatCompletion.construct(**example), chat=True, latency=0, retries=0, provider="deepseek", model="m")
    assert c.text == "9.8"
