"""Recount vote records with another method from the replies they hold: zero calls.

A vote record keeps every reply of its last round (member, sample, text, extracted answer, confidence)
and, for borda and irv, each member's ranking of the answers. ``revote_record`` counts those again
with another method and returns a new record: the same replies, usage and id, a new winner, and
``details.revote`` saying what it was recounted from. Only the last round is recounted: the rounds
before it were debate, and whether they stopped early cannot be known without new calls.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InputError
from ..extraction import in_own_words
from ..records import fingerprint
from .vote_counting import Ballot, borda, instant_runoff, tally

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
