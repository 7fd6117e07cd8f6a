"""Recount vote records with another method, or stop them again adaptively, from the replies they hold: zero calls.

A vote record keeps every reply of its last round (member, sample, text, extracted answer, confidence)
and, for borda and irv, each member's ranking of the answers. ``revote_record`` counts those again
with another method and returns a new record: the same replies, usage and id, a new winner, and
``details.revote`` saying what it was recounted from. Only the last round is recounted: the rounds
before it were debate, and whether they stopped early cannot be known without new calls.

``restop_record`` replays a fixed-budget vote as an adaptive one would have run it: its replies taken
in the order an adaptive vote draws them (round-robin over members, by sample index), stopped by the
Beta rule of ``vote_stopping``. The new record keeps the replies drawn, says where it stopped, and
scales its usage and cost by the share of replies drawn (``details.revote.usage_scaled``).
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InputError
from ..extraction import in_own_words
from ..records import fingerprint
from .vote_counting import Ballot, borda, instant_runoff, tally
from .vote_stopping import draw_order, replay

SPEC_NAME = "vote"
ADAPTIVE_METHODS = ("majority", "weighted", "confidence")

METHODS = ("majority", "weighted", "confidence", "borda", "irv")


def revote_record(record: dict[str, Any], method: str, where: str = "record") -> dict[str, Any]:
    """``record`` (a vote record) counted again by ``method``; an InputError names what is missing."""
    if method not in METHODS:
        raise InputError(f"--method: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if record.get("strategy") != "vote":
        raise InputError(f"{where}: a {record.get('strategy')!r} record, not a vote record; revote recounts vote records")
    details = record.get("details") or {}
    rounds = details.get("rounds") or []
    if record.get("status") != "ok" and not rounds:
        return copy.deepcopy(record)  # a failed record with no replies stays as it was
    if not rounds or not isinstance(rounds[-1].get("replies"), list):
        raise InputError(f"{where}: the record holds no replies (details.rounds[].replies) to recount")
    last = rounds[-1]
    weights = {m.get("name"): float(m.get("weight", 1.0)) for m in record.get("members", [])}
    replies = last["replies"]
    ballots = [Ballot(r.get("member", "?"), r.get("answer"), weights.get(r.get("member"), 1.0), r.get("confidence"), i)
               for i, r in enumerate(replies)]
    extra: dict[str, Any] = {}
    if method in ("majority", "weighted", "confidence"):
        if method == "confidence" and not any(r.get("confidence") is not None for r in replies):
            raise InputError(f"{where}: no reply holds a confidence (the vote did not ask for log-probabilities); "
                             "--method confidence needs a vote run with --method confidence")
        table = tally(ballots, method)  # type: ignore[arg-type]
    else:
        candidates = list(dict.fromkeys(r.get("answer") for r in replies if r.get("answer") is not None))
        raw = last.get("rankings")
        if raw is None:
            raise InputError(f"{where}: the record holds no rankings (it was counted by {details.get('method')}); "
                             f"{method} needs each member's ranking, which costs calls: run `ensemble vote --method {method}`")
        rankings = [entry["ranking"] for entry in raw if entry.get("ranking")]
        if len(candidates) < 2:
            table = tally(ballots, "majority")
        elif method == "borda":
            table = borda(rankings, candidates, ballots)
        else:
            table, irv_rounds = instant_runoff(rankings, candidates, ballots)
            extra["irv_rounds"] = irv_rounds
        extra["rankings"] = raw
    new = copy.deepcopy(record)
    new_details = new["details"]
    new_last = new_details["rounds"][-1]
    new_last.update({**table.as_dict(), **extra})
    previous_method = details.get("method")
    new_details.update({
        "method": method,
        "winner": table.winner,
        "agreement": round(table.agreement, 6),
        "margin": round(table.margin, 6),
        "table": [r.as_dict() for r in table.rows],
        "abstentions": table.abstentions,
        "agreement_per_round": [*details.get("agreement_per_round", [])[:-1], round(table.agreement, 6)],
        "revote": {"from_method": previous_method, "from_run_id": record.get("run_id"),
                   "round": last.get("round", len(rounds)), "new_calls": 0},
    })
    output: Any = table.winner
    if table.winner is not None and in_own_words(str(details.get("extract", ""))):
        first = next(r for r in replies if r.get("answer") == table.winner)
        output = str(first.get("text", "")).strip()
        new_details["winner_reply"] = output
    new["output"] = output
    if table.winner is None:
        new["status"] = "error"
        new["errors"] = [*record.get("errors", []), "revote: no reply had an extractable answer"]
    settings = new.get("settings") or {}
    if isinstance(settings.get("vote"), dict):
        settings["vote"]["method"] = method
        new["fingerprint"] = fingerprint("vote", settings, new.get("members", []))
    return new


def restoppable(record: dict[str, Any]) -> bool:
    """Whether ``record`` is a one-round, fixed-budget vote counted without extra calls (``restop_record`` takes it)."""
    details = record.get("details") or {}
    return (record.get("strategy") == SPEC_NAME and not details.get("stopping")
            and len(details.get("rounds") or []) == 1 and details.get("method") in ADAPTIVE_METHODS)


def restop_record(record: dict[str, Any], stop_confidence: float, min_samples: int = 2, step: int = 1,
                  where: str = "record") -> dict[str, Any]:
    """A one-round fixed-budget vote ``record`` stopped as an adaptive vote with these settings would have."""
    if record.get("strategy") != SPEC_NAME:
        raise InputError(f"{where}: a {record.get('strategy')!r} record, not a vote record; only votes stop early")
    details = record.get("details") or {}
    rounds = details.get("rounds") or []
    if record.get("status") != "ok":
        return copy.deepcopy(record)
    if len(rounds) != 1 or not isinstance(rounds[0].get("replies"), list):
        raise InputError(f"{where}: only a one-round vote's replies can be stopped again (this one has "
                         f"{len(rounds)} rounds)")
    method = details.get("method", "majority")
    if method not in ADAPTIVE_METHODS:
        raise InputError(f"{where}: counted by {method}, which an adaptive vote cannot count after each step")
    members = [m.get("name") for m in record.get("members", []) if m.get("role", "member") == "member"]
    weights = {m.get("name"): float(m.get("weight", 1.0)) for m in record.get("members", [])}
    replies = rounds[0]["replies"]
    at = {(r.get("member"), r.get("sample")): r for r in replies}
    per_member = max((int(r.get("sample", 0)) + 1 for r in replies), default=0)
    ordered = [at[slot] for slot in draw_order(members, per_member) if slot in at]
    ballots = [Ballot(r.get("member", "?"), r.get("answer"), weights.get(r.get("member"), 1.0), r.get("confidence"), i)
               for i, r in enumerate(ordered)]
    replayed = replay(ballots, method, stop_confidence, min_samples, step)
    table, kept = replayed.table, ordered[:replayed.drawn]
    share = len(kept) / len(replies) if replies else 1.0
    stopping = {"drawn": replayed.drawn, "cap": len(ordered), "reason": replayed.reason,
                "posterior": replayed.checks[-1].as_dict()["posterior"] if replayed.checks else 0.0,
                "steps": [c.as_dict() for c in replayed.checks]}
    new = copy.deepcopy(record)
    new_details = new["details"]
    new_details["rounds"][0].update({**table.as_dict(), "replies": copy.deepcopy(kept), "stopping": stopping})
    new_details.update({
        "winner": table.winner,
        "agreement": round(table.agreement, 6),
        "margin": round(table.margin, 6),
        "table": [r.as_dict() for r in table.rows],
        "abstentions": table.abstentions,
        "agreement_per_round": [round(table.agreement, 6)],
        "stopping": stopping,
        "samples_drawn": replayed.drawn,
        "revote": {"from_method": method, "from_run_id": record.get("run_id"), "round": 1, "new_calls": 0,
                   "stop_confidence": stop_confidence, "usage_scaled": round(share, 6)},
    })
    output: Any = table.winner
    if table.winner is not None and in_own_words(str(details.get("extract", ""))):
        output = str(next(r for r in kept if r.get("answer") == table.winner).get("text", "")).strip()
        new_details["winner_reply"] = output
    new["output"] = output
    new["usage"] = _scaled(record.get("usage") or {}, share)
    settings = new.get("settings") or {}
    if isinstance(settings.get("vote"), dict):
        settings["vote"].update({"adaptive": True, "stop_confidence": stop_confidence, "min_samples": min_samples,
                                 "step": step})
        new["fingerprint"] = fingerprint("vote", settings, new.get("members", []))
    return new


SCALED = ("prompt_tokens", "completion_tokens", "cost_usd", "cpu_s")
"""What an adaptive vote would have spent less of; calls and latencies depend on its steps, so stay as they were."""


def _scaled(usage: dict[str, Any], share: float) -> dict[str, Any]:
    """Tokens and cost times ``share`` (the replies an adaptive vote would have drawn): an estimate, which
    ``details.revote.usage_scaled`` says."""
    scaled: dict[str, Any] = {}
    for key, value in usage.items():
        if isinstance(value, dict):
            scaled[key] = _scaled(value, share)
        elif key in SCALED and isinstance(value, (int, float)) and not isinstance(value, bool):
            scaled[key] = round(value * share, 8) if isinstance(value, float) else round(value * share)
        else:
            scaled[key] = value
    return scaled
