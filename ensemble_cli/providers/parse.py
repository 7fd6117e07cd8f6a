"""Typed openai-SDK responses (and provider variants of them) into normalised ``Completion``s.

The SDK's models are read directly. Where a provider's field is not in the SDK's types (Together's
chat logprobs as ``tokens``/``token_logprobs``/``top_logprobs``), that one field is read from
``model_extra``: the SDK keeps unknown fields there rather than dropping them.
"""

from __future__ import annotations

import json
from typing import Any

from ..calls import Completion, TokenLogprob, TopToken, Usage
from .presets import END_MARKERS, normalise_finish


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None) or {}
        value = extra.get(name)
    return value


def top_token(text: str, logprob: Any) -> TopToken:
    return TopToken(text=text, logprob=float(logprob), is_end=text in END_MARKERS)


def _alternatives(top: Any) -> tuple[TopToken, ...]:
    """One position's alternatives: OpenAI's list of ``{token, logprob}`` (kept in the server's order) or a
    ``{token: logprob}`` map (unordered, so sorted best first)."""
    if not top:
        return ()
    if isinstance(top, dict):
        return tuple(sorted((top_token(t, v) for t, v in top.items() if v is not None), key=lambda t: -t.logprob))
    pairs = ((_get(t, "token"), _get(t, "logprob")) for t in top)
    return tuple(top_token(t, v) for t, v in pairs if t is not None and v is not None)


def parse_logprobs(logprobs: Any) -> tuple[TokenLogprob, ...]:
    """Both logprob shapes: chat ``content`` entries, and parallel ``tokens``/``token_logprobs``/``top_logprobs``
    lists (raw completions; Together chat), where ``top_logprobs`` may be one object instead of a list of them."""
    if not logprobs:
        return ()
    if isinstance(logprobs, str):
        logprobs = json.loads(logprobs)
    if isinstance(logprobs, list):  # Ollama native: a bare list of content entries
        logprobs = {"content": logprobs}
    content = _get(logprobs, "content")
    if content is not None:
        return tuple(
            TokenLogprob(text=_get(e, "token"), logprob=float(_get(e, "logprob")),
                         top=_alternatives(_get(e, "top_logprobs")))
            for e in content
        )
    tokens = list(_get(logprobs, "tokens") or [])
    token_logprobs = list(_get(logprobs, "token_logprobs") or [])
    tops = _get(logprobs, "top_logprobs")
    if isinstance(tops, dict):
        # Together documents one map, not one per position: it can only be placed when there is one token
        tops = [tops] if len(tokens) == 1 else [None] * len(tokens)
    tops = list(tops or [None] * len(tokens))
    return tuple(
        TokenLogprob(text=text, logprob=float(lp if lp is not None else 0.0), top=_alternatives(top))
        for text, lp, top in zip(tokens, token_logprobs, tops + [None] * (len(tokens) - len(tops)))
    )


def parse_usage(usage: Any) -> Usage:
    if not usage:
        return Usage()
    return Usage(int(_get(usage, "prompt_tokens") or 0), int(_get(usage, "completion_tokens") or 0))


def parse_choices(response: Any, *, chat: bool, latency: float, retries: int, provider: str, model: str) -> list[Completion]:
    """A chat or raw completion (SDK model) into one ``Completion`` per choice; usage counted on the first."""
    choices = _get(response, "choices")
    if not choices:
        raise ValueError("no choices in the reply")
    usage = parse_usage(_get(response, "usage"))
    completions = []
    for position, choice in enumerate(sorted(choices, key=lambda c: _get(c, "index") or 0)):
        text = _get(_get(choice, "message"), "content") if chat else _get(choice, "text")
        if chat and text is None:
            text = _get(choice, "text")  # Together also puts the text on the choice
        completions.append(Completion(
            text=text or "",
            tokens=parse_logprobs(_get(choice, "logprobs")),
            finish_reason=normalise_finish(_get(choice, "finish_reason")),
            usage=usage if position == 0 else Usage(),
            latency_s=latency, provider=provider, model=model, retries=retries,
        ))
    return completions


def parse_ollama_generate(body: dict[str, Any], *, latency: float, retries: int, provider: str, model: str) -> Completion:
    """Ollama's native ``/api/generate`` reply (``response``, ``done_reason``, eval counts, ``logprobs``)."""
    if "response" not in body:
        raise ValueError("no 'response' in the reply")
    return Completion(
        text=body.get("response") or "",
        tokens=parse_logprobs(body.get("logprobs")),
        finish_reason=normalise_finish(body.get("done_reason")),
        usage=Usage(int(body.get("prompt_eval_count") or 0), int(body.get("eval_count") or 0)),
        latency_s=latency, provider=provider, model=model, retries=retries,
    )
