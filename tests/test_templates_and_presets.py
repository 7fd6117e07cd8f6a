"""Client-side chat templates and provider presets."""

from __future__ import annotations

from ensemble_cli.calls import Message
from ensemble_cli.providers.openai_compat import parse_logprobs
from ensemble_cli.providers.presets import END_MARKERS, PRESETS
from ensemble_cli.providers.templates import render_prompt


def test_chatml_and_custom_templates():
    messages = (Message("system", "S"), Message("user", "U"))
    assert render_prompt(messages, "chatml", "The") == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nThe"
    )
    custom = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant] "
    assert render_prompt(messages, custom, "Hi") == "[system] S\n[user] U\n[assistant] Hi"


def test_presets_say_what_each_backend_can_do():
    assert PRESETS["openai"].prefix_mode == "none" and PRESETS["openai"].api_key_env == "OPENAI_API_KEY"
    assert PRESETS["deepseek"].base_url.endswith("/beta") and PRESETS["deepseek"].prefix_mode == "deepseek"
    assert PRESETS["vllm"].prefix_mode == "vllm" and PRESETS["llamacpp"].prefix_mode == "raw"
    assert PRESETS["together"].logprobs_style == "integer" and PRESETS["together"].prefix_mode == "raw"
    assert dict(PRESETS["llamacpp"].extra_body) == {"repeat_penalty": 1.0, "cache_prompt": False}
    assert dict(PRESETS["vllm"].extra_body) == {"repetition_penalty": 1.0, "top_k": -1, "min_p": 0.0}
    assert PRESETS["llamacpp"].chat_template == "server" and PRESETS["ollama"].raw_api == "ollama"
    assert PRESETS["openai"].token_field == "max_completion_tokens"


def test_end_markers_are_recognised_in_logprobs():
    parsed = parse_logprobs({"content": [{"token": "a", "logprob": -0.1, "top_logprobs": [
        {"token": "<|im_end|>", "logprob": -0.5}, {"token": "a", "logprob": -0.1}]}]})
    assert parsed[0].top[0].is_end and not parsed[0].top[1].is_end
    assert "<|eot_id|>" in END_MARKERS


def test_server_chat_template_renders_in_the_sandbox():
    from ensemble_cli.providers.templates import render_chat_template

    source = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}" \
             "{% if add_generation_prompt %}<assistant>{% endif %}"
    rendered = render_chat_template(source, (Message("user", "U"),), "Hi", bos_token="<s>", eos_token="</s>")
    assert rendered == "<user>U</s><assistant>Hi"


def test_finish_reasons_are_normalised():
    from ensemble_cli.providers.presets import normalise_finish

    assert normalise_finish("eos") == "stop" and normalise_finish(None) == "stop"
    assert normalise_finish("length") == "length" and normalise_finish("max_tokens") == "length"


def test_server_template_keeps_a_bos_the_server_does_not_add():
    """SmolLM2's BOS is <|im_start|>, which its server does not add: dropping it broke every raw prompt."""
    import asyncio

    from ensemble_cli.providers.server_template import ServerTemplate, render

    template = "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    messages = (Message("user", "hi"),)
    kept = asyncio.run(render(ServerTemplate("props", template, "<s>", "</s>", adds_bos=False), None, "", messages, "A"))
    dropped = asyncio.run(render(ServerTemplate("props", template, "<s>", "</s>", adds_bos=True), None, "", messages, "A"))
    assert kept == "<s><|im_start|>user\nhi<|im_end|>\nA" and dropped == kept[len("<s>"):]
