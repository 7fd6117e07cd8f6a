"""Records become OpenAI response bodies: ``chat.completion``, ``chat.completion.chunk`` and usage.

What a strategy's result means is its spec's to say (``strategies/spec.py``): its finish reason, how
sure it is, its token distribution, its usage per member; this module only formats. ``usage`` is the
sum over every member call of the request (the record's tally); the ``ensemble`` extension object says
what the ensemble did: strategy, calls, agreement or confidence, cost where priced, and the members.
"""

from __future__ import annotations

import math
from typing import Any

from .. import catalog
from ..records import output_text
from ..strategies.spec import StrategySpec

LOGPROB_FLOOR = -9999.0
"""The log-probability reported for a probability that rounded to zero (JSON has no -infinity)."""


def spec_of(record: dict[str, Any]) -> StrategySpec:
    return catalog.spec(str(record.get("strategy")))


def usage_of(record: dict[str, Any]) -> dict[str, int]:
    usage = record.get("usage") or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def extension(record: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The ``ensemble`` object of a response: what the ensemble did for this request."""
    usage = record.get("usage") or {}
    details = record.get("details") or {}
    spec = spec_of(record)
    ext: dict[str, Any] = {
        "strategy": spec.name,
        "request_id": request_id,
        "run_id": record.get("run_id"),
        "calls": usage.get("calls"),
        "failed_calls": usage.get("failed_calls"),
        "retries": usage.get("retries"),
        "wall_s": usage.get("wall_s"),
        **spec.measure(details),
        "members": [{k: m.get(k) for k in ("name", "role", "provider", "model") if k in m}
                    for m in record.get("members") or []],
    }
    degraded = details.get("degraded")
    if degraded:
        ext["degraded"] = True  # the answer is a fallback's, not the strategy's own
        ext["degraded_reason"] = degraded.get("reason")
        ext["degraded_fallback"] = degraded.get("fallback")
    if "cost_usd" in usage:
        ext["cost_usd"] = usage["cost_usd"]
    if usage.get("by_model"):
        ext["model_usage"] = usage["by_model"]  # calls, tokens and cost of every model called
    per_member = spec.member_usage(details) if spec.member_usage is not None else {}
    if per_member:
        ext["member_usage"] = per_member
    return ext


def entry(token: str, logprob: float) -> dict[str, Any]:
    """One token of OpenAI ``logprobs.content``."""
    shown = logprob if math.isfinite(logprob) else LOGPROB_FLOOR
    return {"token": token, "logprob": shown, "bytes": list(token.encode("utf-8"))}


def logprobs(record: dict[str, Any], top: int) -> dict[str, Any]:
    """OpenAI ``logprobs`` from the strategy's token distribution (every chosen token, ``top`` alternatives)."""
    spec = spec_of(record)
    assert spec.distribution is not None, "requests for logprobs are refused where there is no distribution"
    content = []
    for token, logprob, alternatives in spec.distribution(record.get("details") or {}, top):
        content.append({**entry(token, logprob), "top_logprobs": [entry(t, lp) for t, lp in alternatives]})
    return {"content": content, "refusal": None}


def completion(record: dict[str, Any], model: str, request_id: str, created: int, wants_logprobs: bool,
               top_logprobs: int) -> dict[str, Any]:
    """A whole ``chat.completion`` for a finished record."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": output_text(record.get("output")), "refusal": None},
        "finish_reason": finish_reason(record),
        "logprobs": logprobs(record, top_logprobs) if wants_logprobs else None,
    }
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": created, "model": model,
            "choices": [choice], "usage": usage_of(record), "system_fingerprint": record.get("fingerprint"),
            "ensemble": extension(record, request_id)}


def finish_reason(record: dict[str, Any]) -> str:
    return spec_of(record).finish_reason(record.get("details"))


def chunk(request_id: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None,
          logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}]}


def usage_chunk(record: dict[str, Any], request_id: str, model: str, created: int) -> dict[str, Any]:
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage_of(record)}
