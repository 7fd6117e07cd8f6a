"""Typed openai-SDK responses (and provider variants of them) into normalised ``Completion``s.

The SDK's models are read directly. Where a provider's field is not in the SDK's types (Together's
chat logprobs as ``tokens``/``token_logprobs``/``top_logprobs``), that one field is read from
``model_extra``: the SDK keeps unknown fields there rather than dropping them.

A value of the wrong type or shape in a reply raises ``ReplyShapeError``, the upstream's fault; any other
exception raised while parsing is a bug of ours.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..calls import Completion, TokenLogprob, TopToken, Usage
from ..inputs import json_problem
from .presets import END_MARKERS, normalise_finish


class ReplyShapeError(ValueError):
    """A reply whose values have the wrong type or shape (the upstream's fault, not ours)."""


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ReplyShapeError(f"{what} is {type(value).__name__}, not a number")
    try:
        return float(value)
    except ValueError:
        raise ReplyShapeError(f"{what} {value!r} is not a number") from None


def _count(value: Any, what: str) -> int:
    number = _number(value or 0, what)
    if not math.isfinite(number) or number != int(number):
        raise ReplyShapeError(f"{what} {value!r} is not a whole number")
    return int(number)


def text_of(value: Any, what: str) -> str | None:
    """A text field of a reply (None where absent)."""
    if value is not None and not isinstance(value, str):
        raise ReplyShapeError(f"{what} is {type(value).__name__}, not text")
    return value


def finish_of(value: Any) -> str:
    """A choice's finish reason, normalised."""
    return normalise_finish(text_of(value, "finish_reason"))


def _sequence(value: Any, what: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ReplyShapeError(f"{what} is {type(value).__name__}, not a list")
    return list(value)


def loads(data: str | bytes, what: str = "the reply") -> Any:
    """JSON text of a reply; text that is not JSON is the upstream's fault."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReplyShapeError(f"{what} is not JSON ({json_problem(exc)})") from None
    except ValueError as exc:  # bytes that are not UTF-8
        raise ReplyShapeError(f"{what} is not JSON ({exc})") from None


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None) or {}
        value = extra.get(name)
    return value


def top_token(text: str, logprob: Any) -> TopToken:
    text = text_of(text, "a top_logprobs token") or ""
    return TopToken(text=text, logprob=_number(logprob, "a top_logprobs logprob"), is_end=text in END_MARKERS)


def _alternatives(top: Any) -> tuple[TopToken, ...]:
    """One position's alternatives: OpenAI's list of ``{token, logprob}`` (kept in the server's order) or a
    ``{token: logprob}`` map (unordered, so sorted best first)."""
    if not top:
        return ()
    if isinstance(top, dict):
        return tuple(sorted((top_token(t, v) for t, v in top.items() if v is not None), key=lambda t: -t.logprob))
    pairs = ((_get(t, "token"), _get(t, "logprob")) for t in _sequence(top, "top_logprobs"))
    return tuple(top_token(t, v) for t, v in pairs if t is not None and v is not None)


def parse_logprobs(logprobs: Any) -> tuple[TokenLogprob, ...]:
    """Both logprob shapes: chat ``content`` entries, and parallel ``tokens``/``token_logprobs``/``top_logprobs``
    lists (raw completions; Together chat), where ``top_logprobs`` may be one object instead of a list of them."""
    if not logprobs:
        return ()
    if isinstance(logprobs, str):
        logprobs = loads(logprobs, "logprobs")
    if isinstance(logprobs, list):  # Ollama native: a bare list of content entries
        logprobs = {"content": logprobs}
    content = _get(logprobs, "content")
    if content is not None:
        return tuple(
            TokenLogprob(text=text_of(_get(e, "token"), "a logprobs token") or "",
                         logprob=_number(_get(e, "logprob"), "a token's logprob"),
                         top=_alternatives(_get(e, "top_logprobs")))
            for e in _sequence(content, "logprobs.content")
        )
    tokens = [text_of(t, "a logprobs token") or "" for t in _sequence(_get(logprobs, "tokens") or [], "logprobs.tokens")]
    token_logprobs = _sequence(_get(logprobs, "token_logprobs") or [], "logprobs.token_logprobs")
    tops = _get(logprobs, "top_logprobs")
    if isinstance(tops, dict):
        # Together documents one map, not one per position: it can only be placed when there is one token
        tops = [tops] if len(tokens) == 1 else [None] * len(tokens)
    tops = _sequence(tops or [None] * len(tokens), "logprobs.top_logprobs")
    return tuple(
        TokenLogprob(text=text, logprob=_number(lp if lp is not None else 0.0, "a token's logprob"),
                     top=_alternatives(top))
        for text, lp, top in zip(tokens, token_logprobs, tops + [None] * (len(tokens) - len(tops)))
    )


def parse_usage(usage: Any) -> Usage:
    if not usage:
        return Usage()
    return Usage(_count(_get(usage, "prompt_tokens"), "usage.prompt_tokens"),
                 _count(_get(usage, "completion_tokens"), "usage.completion_tokens"))


def parse_choices(response: Any, *, chat: bool, latency: float, retries: int, provider: str, model: str) -> list[Completion]:
    """A chat or raw completion (SDK model) into one ``Completion`` per choice; usage counted on the first."""
    choices = _get(response, "choices")
    if not choices:
        raise ReplyShapeError("no choices in the reply")
    choices = _sequence(choices, "choices")
    usage = parse_usage(_get(response, "usage"))
    completions = []
    for position, choice in enumerate(sorted(choices, key=lambda c: _count(_get(c, "index"), "a choice's index"))):
        text = _get(_get(choice, "message"), "content") if chat else _get(choice, "text")
        if chat and text is None:
            text = _get(choice, "text")  # Together also puts the text on the choice
        completions.append(Completion(
            text=text_of(text, "the reply's text") or "",
            tokens=parse_logprobs(_get(choice, "logprobs")),
            finish_reason=finish_of(_get(choice, "finish_reason")),
            usage=usage if position == 0 else Usage(),
            latency_s=latency, provider=provider, model=model, retries=retries,
        ))
    return completions


def parse_ollama_generate(body: dict[str, Any], *, latency: float, retries: int, provider: str, model: str) -> Completion:
    """Ollama's native ``/api/generate`` reply (``response``, ``done_reason``, eval counts, ``logprobs``)."""
    if not isinstance(body, dict) or "response" not in body:
        raise ReplyShapeError("no 'response' in the reply")
    return Completion(
        text=text_of(body.get("response"), "the reply's response") or "",
        tokens=parse_logprobs(body.get("logprobs")),
        finish_reason=finish_of(body.get("done_reason")),
        usage=Usage(_count(body.get("prompt_eval_count"), "prompt_eval_count"), _count(body.get("eval_count"), "eval_count")),
        latency_s=latency, provider=provider, model=model, retries=retries,
    )
