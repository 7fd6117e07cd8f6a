"""Client-side chat templates, for backends continued through raw completion."""

from __future__ import annotations

from typing import Sequence

from ..calls import Message

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "<|im_start|>assistant\n"
)
PLAIN = (
    "{% for m in messages %}"
    "{% if m.role == 'system' %}{{ m.content }}\n\n"
    "{% elif m.role == 'user' %}Question: {{ m.content }}\n"
    "{% else %}Answer: {{ m.content }}\n\n{% endif %}"
    "{% endfor %}Answer:"
)
"""The plain completion form, for base models without a chat template: the system text and a blank line,
each user turn as ``Question: ...``, each earlier reply as ``Answer: ...``, then ``Answer:`` to continue."""
PLAIN_NAME = "plain"
PLAIN_STOP = "\nQuestion:"
"""Where a base model's reply in the plain form ends: it has begun the next question."""
BUILTIN_TEMPLATES = {"chatml": CHATML, PLAIN_NAME: PLAIN}


def render_prompt(messages: Sequence[Message], template: str = "chatml", prefix: str = "") -> str:
    """Render ``messages`` with a generation prompt, then the assistant ``prefix`` (no end of turn).

    ``template`` is a built-in name or a Jinja2 template over ``messages`` that ends with the
    assistant generation prompt.
    """
    import jinja2

    source = BUILTIN_TEMPLATES.get(template, template)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    rendered = env.from_string(source).render(messages=[m.as_dict() for m in messages])
    return rendered + prefix


def render_chat_template(source: str, messages: Sequence[Message], prefix: str = "", bos_token: str = "",
                         eos_token: str = "", server_adds_bos: bool = True) -> str:
    """A model's own (Hugging Face style) chat template, rendered in Jinja2's sandbox with a generation
    prompt, then ``prefix``. A leading ``bos_token`` is dropped where the server adds it when it tokenizes
    (SmolLM2's "BOS" is ``<|im_start|>``, which its server does not add: there it stays)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(f"chat template: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    rendered = env.from_string(source).render(
        messages=[m.as_dict() for m in messages], add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
    )
    if server_adds_bos and bos_token and rendered.startswith(bos_token):
        rendered = rendered[len(bos_token):]
    return rendered + prefix
