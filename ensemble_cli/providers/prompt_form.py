"""How chat messages become an in-process model's prompt text, from what its GGUF says.

A model with a chat template (``tokenizer.chat_template``) gets it, rendered with its BOS/EOS texts and a
generation prompt. A model without one (a pretrained base model) is never given a chat format it was not
trained on: its prompt is the *plain completion form* (``templates.PLAIN``): the system text, a blank line,
then ``Question: ...`` and ``Answer:`` lines. A member's ``template:`` (a built-in name, ``chatml`` or
``plain``, or Jinja2 source over ``messages``) replaces either. Where the tokenizer adds BOS itself
(``add_bos``), a rendered BOS at the start is dropped, so the prompt never starts with two.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

from ..calls import Message
from ..errors import ProviderError
from .templates import BUILTIN_TEMPLATES, PLAIN_NAME, render_prompt

PLAIN_FORM = "the plain completion form (the system text, then 'Question: ...' and 'Answer:')"


@dataclass(frozen=True)
class PromptForm:
    """The prompt facts of one model (its chat template or none, BOS/EOS texts, add_bos) and a member's
    own ``template`` (None: the model's, or the plain form where it has none)."""

    chat_template: str | None
    bos: str = ""
    eos: str = ""
    add_bos: bool = False
    template: str | None = None

    @property
    def plain(self) -> bool:
        """The model has no chat template and the member chose none: the plain completion form."""
        return self.template is None and not self.chat_template

    def describe(self) -> str:
        if self.template is not None:
            return f"template '{self.template}'" if self.template in BUILTIN_TEMPLATES else "the member's template"
        return "the model's chat template" if self.chat_template else PLAIN_FORM

    def render(self, messages: Sequence[Message], prefix: str = "") -> str:
        """The prompt for ``messages`` with the assistant's turn begun, then ``prefix`` (no end of turn)."""
        if self.template is not None:
            return render_prompt(messages, self.template, prefix)
        if not self.chat_template:
            return render_prompt(messages, PLAIN_NAME, prefix)
        rendered = _compiled(self.chat_template).render(
            messages=[m.as_dict() for m in messages], add_generation_prompt=True, bos_token=self.bos,
            eos_token=self.eos)
        if self.add_bos and self.bos and rendered.startswith(self.bos):
            rendered = rendered[len(self.bos):]
        return rendered + prefix


def chat_template_of(metadata: Mapping[str, Any]) -> str | None:
    """The chat template a GGUF's metadata holds; none where it is missing or blank (a base model)."""
    source = metadata.get("tokenizer.chat_template")
    return source if isinstance(source, str) and source.strip() else None


def from_metadata(metadata: Mapping[str, Any], bos: str, eos: str, add_bos: bool,
                  template: str | None = None) -> PromptForm:
    """The form of a model whose GGUF metadata is ``metadata`` (BOS/EOS texts empty where it has none)."""
    return PromptForm(chat_template_of(metadata), bos, eos, add_bos, template)


@lru_cache(maxsize=8)
def _compiled(source: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ProviderError(f"the model's chat template refused the messages: {message}")

    env.globals["raise_exception"] = raise_exception
    return env.from_string(source)
