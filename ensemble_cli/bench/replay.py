"""Settings a bench did not run, replayed from the records it wrote: zero calls.

Three kinds, each giving, per item, whether it would have been right and what it would have cost:

- ``adaptive``: a fixed-budget vote arm stopped by the Beta rule at a ``stop_confidence``
  (``vote_recount.restop_record``: the replies an adaptive vote would have drawn; tokens and cost scaled
  by the share of replies kept).
- ``tiers``: a cascade of a cheaper arm first, a better arm where the first one's confidence (its spec's
  ``confidence``) is below ``accept``; an escalated item costs both arms, as a live cascade would.
- ``weights``: a vote arm of several members recounted ``weighted`` with member weights fitted on the
  tuning items: the log-odds of each member's accuracy (the optimal weights for independent voters),
  floored at ``MIN_WEIGHT`` so that a member below even odds keeps a voice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .. import catalog
from ..errors import InputError
from ..strategies.vote_recount import restop_record, revote_record
from ..strategies.vote_recount import restoppable as restoppable_record
from .scoring import score_record

STOP_CONFIDENCES = (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99)
ACCEPTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
MIN_WEIGHT = 0.05

Records = Mapping[str, dict[str, Any]]
"""An arm's records by item id."""


@dataclass(frozen=True)
class Outcome:
    """One item under one setting."""

    correct: bool
    cost_usd: float | None
    tokens: float
    tier: int | None = None
    """The cascade tier that answered (1 or 2)."""


@dataclass
class Setting:
    """One setting: what it is, how to write it as a run config, and its outcome on each item."""

    name: str
    kind: str
    """``arm`` (ran as it is), ``adaptive``, ``tiers`` (a two-tier cascade) or ``weights``."""
    params: dict[str, Any]
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def _correct(record: dict[str, Any]) -> bool:
    return bool((record.get("score") or {}).get("correct"))


def _cost(record: dict[str, Any]) -> tuple[float | None, float]:
    usage = record.get("usage") or {}
    cost = usage.get("cost_usd")
    return (None if cost is None else float(cost)), float(usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0))


def _rescored(record: dict[str, Any], scoring: str) -> dict[str, Any]:
    gold = record.get("gold") or {}
    if "answer" not in gold:
        raise InputError(f"record {record.get('id')}: holds no gold answer; tune reads a bench's records")
    return {**record, "score": score_record(record, str(gold["answer"]), scoring)}


def as_ran(name: str, records: Records) -> Setting:
    setting = Setting(name, "arm", {"arm": name})
    for key, record in records.items():
        cost, tokens = _cost(record)
        setting.outcomes[key] = Outcome(_correct(record), cost, tokens)
    return setting


def restoppable(records: Records) -> bool:
    """Every record a one-round, fixed-budget vote counted without extra calls, with more than one reply per item."""
    if not all(restoppable_record(r) for r in records.values() if r.get("status") == "ok"):
        return False
    replies = [len((r.get("details") or {}).get("rounds", [{}])[0].get("replies") or []) for r in records.values()]
    return bool(replies) and max(replies) > 1


def adaptive(name: str, records: Records, scoring: str, stop_confidence: float, min_samples: int = 2,
             step: int = 1) -> Setting:
    setting = Setting(f"{name}@adaptive:{stop_confidence:g}", "adaptive",
                      {"arm": name, "stop_confidence": stop_confidence, "min_samples": min_samples, "step": step})
    for key, record in records.items():
        replayed = _rescored(restop_record(record, stop_confidence, min_samples, step, f"{name}:{key}"), scoring)
        cost, tokens = _cost(replayed)
        setting.outcomes[key] = Outcome(_correct(replayed), cost, tokens)
    return setting


def confidence_of(record: dict[str, Any]) -> float | None:
    """A record's confidence in its answer, as its strategy measures it (None: it has no measure)."""
    spec = catalog.find(str(record.get("strategy")))
    if spec is None or spec.confidence is None or record.get("status") != "ok":
        return None
    return spec.confidence(record.get("details") or {})


def measurable(records: Records) -> bool:
    """Every ok record of the arm says how sure it is (it can be a cascade's first tier)."""
    ok = [r for r in records.values() if r.get("status") == "ok"]
    return bool(ok) and all(confidence_of(r) is not None for r in ok)


def cascade(first: str, first_records: Records, then: str, then_records: Records, accept: float) -> Setting:
    setting = Setting(f"{first}>{then}@{accept:g}", "tiers", {"tiers": [first, then], "accept": accept})
    for key, record in first_records.items():
        if key not in then_records:
            continue
        cost, tokens = _cost(record)
        sure = confidence_of(record)
        if sure is not None and sure >= accept:
            setting.outcomes[key] = Outcome(_correct(record), cost, tokens, tier=1)
            continue
        fallback = then_records[key]
        more_cost, more_tokens = _cost(fallback)
        total = None if cost is None or more_cost is None else cost + more_cost
        setting.outcomes[key] = Outcome(_correct(fallback), total, tokens + more_tokens, tier=2)
    return setting


def _members(records: Iterable[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for record in records:
        for member in record.get("members") or []:
            if member.get("role", "member") == "member":
                names.setdefault(str(member.get("name")), None)
    return list(names)


def fitted_weights(records: Records, scoring: str, tune_ids: Sequence[str]) -> dict[str, float]:
    """Each member's weight: the log-odds of its replies' accuracy on the tuning items (smoothed by one
    right and one wrong reply), floored at MIN_WEIGHT."""
    right: dict[str, int] = {}
    asked: dict[str, int] = {}
    for key in tune_ids:
        record = records.get(key)
        if record is None or record.get("status") != "ok":
            continue
        gold = str((record.get("gold") or {}).get("answer", ""))
        for reply in (record.get("details") or {}).get("rounds", [{}])[-1].get("replies") or []:
            member = str(reply.get("member"))
            asked[member] = asked.get(member, 0) + 1
            probe = {"status": "ok", "output": reply.get("answer"), "details": record.get("details")}
            if reply.get("answer") is not None and score_record(probe, gold, scoring).get("correct"):
                right[member] = right.get(member, 0) + 1
    weights = {}
    for member in _members(records.values()):
        accuracy = (right.get(member, 0) + 1) / (asked.get(member, 0) + 2)
        weights[member] = round(max(math.log(accuracy / (1 - accuracy)), MIN_WEIGHT), 4)
    return weights


def weighted(name: str, records: Records, scoring: str, weights: Mapping[str, float]) -> Setting:
    setting = Setting(f"{name}@weights", "weights", {"arm": name, "weights": dict(weights)})
    for key, record in records.items():
        reweighed = {**record, "members": [{**m, "weight": weights.get(str(m.get("name")), m.get("weight", 1.0))}
                                           for m in record.get("members") or []]}
        fresh = _rescored(revote_record(reweighed, "weighted", f"{name}:{key}"), scoring)
        cost, tokens = _cost(fresh)
        setting.outcomes[key] = Outcome(_correct(fresh), cost, tokens)
    return setting


def several_members(records: Records) -> bool:
    return len(_members(records.values())) > 1
