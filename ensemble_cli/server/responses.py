"""Records become OpenAI response bodies: ``chat.completion``, ``chat.completion.chunk`` and usage.

``usage`` is the sum over every member call of the request (the record's tally); the ``ensemble``
extension object says what the ensemble did: strategy, calls, agreement or confidence, cost where
priced, and the members. A committee's ``logprobs`` are its merged distribution, step by step.
"""

from __future__ import annotations

import math
from typing import Any

from ..records import output_text

LOGPROB_FLOOR = -9999.0
"""The log-probability reported for a probability that rounded to zero (JSON has no -infinity)."""




def usage_of(record: dict[str, Any]) -> dict[str, int]:
    usage = record.get("usage") or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _get(details: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(details, dict):
            return None
        details = details.get(key)
    return details


def measure(strategy: str, details: dict[str, Any]) -> dict[str, Any]:
    """How sure the ensemble is: agreement (committee, vote) or confidence (cot-decode, verbalize)."""
    if strategy == "committee":
        return {"agreement": _get(details, "summary", "mean_agreement")}
    if strategy == "vote":
        return {"agreement": details.get("agreement"), "margin": details.get("margin")}
    if strategy == "cot-decode":
        winner = details.get("winner")
        path = next((p for p in details.get("paths") or [] if p.get("rank_first") == winner), None)
        return {"confidence": None if path is None else path.get("confidence")}
    if strategy == "verbalize":
        draws = details.get("draws") or []
        table = details.get("candidates") or []
        if len(draws) == 1 and 0 <= draws[0].get("index", -1) < len(table):
            return {"confidence": table[draws[0]["index"]].get("final_probability")}
    return {}


def extension(record: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The ``ensemble`` object of a response: what the ensemble did for this request."""
    usage = record.get("usage") or {}
    strategy = str(record.get("strategy"))
    ext: dict[str, Any] = {
        "strategy": strategy,
        "request_id": request_id,
        "run_id": record.get("run_id"),
        "calls": usage.get("calls"),
        "failed_calls": usage.get("failed_calls"),
        "retries": usage.get("retries"),
        "wall_s": usage.get("wall_s"),
        **measure(strategy, record.get("details") or {}),
        "members": [{k: m.get(k) for k in ("name", "role", "provider", "model") if k in m}
                    for m in record.get("members") or []],
    }
    degraded = (record.get("details") or {}).get("degraded")
    if degraded:
        ext["degraded"] = True  # the answer is a fallback's (moa.fallback), not the strategy's own
        ext["degraded_reason"] = degraded.get("reason")
        ext["degraded_fallback"] = degraded.get("fallback")
    if "cost_usd" in usage:
        ext["cost_usd"] = usage["cost_usd"]
    if usage.get("by_model"):
        ext["model_usage"] = usage["by_model"]  # calls, tokens and cost of every model called
    per_member = member_usage(strategy, record.get("details") or {})
    if per_member:
        ext["member_usage"] = per_member
    return ext


def member_usage(strategy: str, details: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Token usage per member where the strategy records it per reply (moa proposers)."""
    found: dict[str, dict[str, int]] = {}
    if strategy == "moa":
        for layer in details.get("layers") or []:
            for answer in layer.get("answers") or []:
                mine = found.setdefault(str(answer.get("member")), {"prompt_tokens": 0, "completion_tokens": 0})
                for key in mine:
                    mine[key] += int((answer.get("usage") or {}).get(key) or 0)
    return found


def _lp(p: float) -> float:
    return math.log(p) if p > 0 else LOGPROB_FLOOR


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def committee_logprobs(details: dict[str, Any], top: int) -> dict[str, Any]:
    """OpenAI ``logprobs.content`` from a committee's steps: each chosen token with its merged log-probability
    and (``top``) the merged top-k, both exactly as the record holds them."""
    content = []
    for step in details.get("steps") or []:
        token = step.get("token")
        if token is None:
            continue
        logprob = step.get("logprob")
        entry = _entry(token, _lp(float(step.get("p") or 0.0)) if logprob is None else float(logprob))
        merged = [(t, float(lp)) for t, lp in step.get("merged") or [] if t is not None]
        entry["top_logprobs"] = [_entry(t, lp) for t, lp in merged[:top]] if top else []
        content.append(entry)
    return {"content": content, "refusal": None}


def completion(record: dict[str, Any], model: str, request_id: str, created: int, logprobs: bool,
               top_logprobs: int) -> dict[str, Any]:
    """A whole ``chat.completion`` for a finished record."""
    details = record.get("details") or {}
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": output_text(record.get("output")), "refusal": None},
        "finish_reason": finish_reason(record),
        "logprobs": committee_logprobs(details, top_logprobs) if logprobs else None,
    }
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": created, "model": model,
            "choices": [choice], "usage": usage_of(record), "system_fingerprint": record.get("fingerprint"),
            "ensemble": extension(record, request_id)}


FINISH_REASONS = ("stop", "length", "content_filter")


def finish_reason(record: dict[str, Any]) -> str:
    """The strategy's own finish reason (every strategy's details carry one): ``length`` where the answer
    was cut at its token limit."""
    reason = _get(record.get("details"), "finish_reason")
    return reason if reason in FINISH_REASONS else "stop"


def chunk(request_id: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None,
          logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}]}


def usage_chunk(record: dict[str, Any], request_id: str, model: str, created: int) -> dict[str, Any]:
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage_of(record)}
