"""Parsing verbalized distributions: tagged responses, JSON, or numbered lists with probabilities.

Candidate texts are data: tags or instructions inside a candidate's text never change how the other
candidates or the probabilities are read (a ``<probability>`` inside ``<text>`` stays text).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction

from ..extraction import normalise_text


@dataclass
class Candidate:
    text: str
    raw_probability: str | None
    probability: float | None
    note: str = ""


_RESPONSE = re.compile(r"<response\b[^>]*>(.*?)(?:</response>|(?=<response\b)|\Z)", re.S | re.I)
_TEXT = re.compile(r"<text>(.*?)</text>", re.S | re.I)
_PROB = re.compile(r"<probability>(.*?)(?:</probability>|\Z)", re.S | re.I)
_NUMBERED = re.compile(
    r"^\s*(?:\d+[.)]|[-*•])\s+(?P<text>.+?)\s*"
    r"(?:[\(\[]\s*(?:p(?:robability)?\s*[=:]?\s*)?(?P<p1>[-\d./%\s]+?)\s*[\)\]]"
    r"|[-—–:]\s*(?:p(?:robability)?\s*[=:]?\s*)(?P<p2>[-\d./%]+))\s*$",
    re.I | re.M,
)


def parse_probability(raw: str | None) -> tuple[float | None, str]:
    """0.2, .2, 20%, 1/5 -> 0.2. Over 1 but at most 100 without % is read as a percentage (noted);
    negative, over 100, or not a number -> None (noted)."""
    if raw is None:
        return None, "missing"
    text = raw.strip().rstrip(".").replace(" ", "")
    if not text:
        return None, "missing"
    percent = text.endswith("%")
    text = text.rstrip("%")
    try:
        value = float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        return None, f"not a number: {raw.strip()[:20]!r}"
    if math.isnan(value) or math.isinf(value):
        return None, f"not a number: {raw.strip()[:20]!r}"
    if percent:
        value /= 100.0
    elif value > 1.0:
        if value > 100.0:
            return None, f"out of range: {raw.strip()[:20]!r}"
        return value / 100.0, "read as a percentage"
    if value < 0:
        return None, f"negative: {raw.strip()[:20]!r}"
    if value > 1.0:
        return None, f"out of range: {raw.strip()[:20]!r}"
    return value, ""


def _candidate(text: str, raw: str | None) -> Candidate | None:
    text = text.strip()
    if not text:
        return None
    probability, note = parse_probability(raw)
    return Candidate(text, raw.strip() if raw is not None else None, probability, note)


def parse_tagged(reply: str) -> list[Candidate]:
    found = []
    for block in _RESPONSE.finditer(reply):
        body = block.group(1)
        text_match = _TEXT.search(body)
        if text_match is None:
            continue
        outside = body[: text_match.start()] + body[text_match.end():]
        prob_match = _PROB.search(outside)
        candidate = _candidate(text_match.group(1), prob_match.group(1) if prob_match else None)
        if candidate:
            found.append(candidate)
    return found


def _json_lists(reply: str) -> list[list]:
    decoder = json.JSONDecoder()
    lists: list[list] = []
    index = 0
    while True:
        starts = [i for i in (reply.find("[", index), reply.find("{", index)) if i != -1]
        if not starts:
            return lists
        start = min(starts)
        try:
            value, end = decoder.raw_decode(reply, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        if isinstance(value, dict):
            value = next((v for v in value.values() if isinstance(v, list)), None)
        if isinstance(value, list):
            lists.append(value)
        index = end


def parse_json(reply: str) -> list[Candidate]:
    for items in reversed(_json_lists(reply)):
        found = []
        for item in items:
            if not isinstance(item, dict):
                continue
            text = next((item[k] for k in ("text", "response", "content", "answer") if isinstance(item.get(k), str)), None)
            raw = next((item[k] for k in ("probability", "prob", "p", "likelihood") if k in item), None)
            if text is None:
                continue
            candidate = _candidate(text, None if raw is None else str(raw))
            if candidate:
                found.append(candidate)
        if found:
            return found
    return []


def parse_numbered(reply: str) -> list[Candidate]:
    found = []
    for match in _NUMBERED.finditer(reply):
        candidate = _candidate(match.group("text").strip(" \"'"), match.group("p1") or match.group("p2"))
        if candidate:
            found.append(candidate)
    return found


PARSERS = (("tagged", parse_tagged), ("json", parse_json), ("numbered", parse_numbered))


def parse_reply(reply: str) -> tuple[str, list[Candidate]]:
    """The first format that yields candidates, and its name; ("none", []) when none does."""
    for name, parser in PARSERS:
        candidates = parser(reply)
        if candidates:
            return name, candidates
    return "none", []


def merge_duplicates(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per normalised text; probabilities of duplicates are added."""
    merged: dict[str, Candidate] = {}
    for candidate in candidates:
        key = normalise_text(candidate.text)
        if key not in merged:
            merged[key] = Candidate(candidate.text, candidate.raw_probability, candidate.probability, candidate.note)
            continue
        kept = merged[key]
        if candidate.probability is not None:
            kept.probability = (kept.probability or 0.0) + candidate.probability
        kept.note = (kept.note + "; " if kept.note else "") + "merged a duplicate"
    return list(merged.values())


def normalise(candidates: list[Candidate]) -> tuple[list[float], str]:
    """Probabilities summing to 1, and how they were obtained.

    All missing or zero -> uniform. Some missing -> those get the mean of the given ones ("imputed").
    """
    given = [c.probability for c in candidates if c.probability is not None]
    if not given or sum(given) <= 0:
        return [1.0 / len(candidates)] * len(candidates), "uniform"
    mean = sum(given) / len(given)
    values = [c.probability if c.probability is not None else mean for c in candidates]
    total = sum(values)
    return [v / total for v in values], ("imputed" if len(given) < len(candidates) else "given")


def filter_min_prob(probabilities: list[float], min_prob: float | None, min_keep: int) -> list[int]:
    """Indices kept: those at or above ``min_prob``, but at least the ``min_keep`` most probable."""
    order = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])
    if min_prob is None:
        return order
    kept = [i for i in order if probabilities[i] >= min_prob]
    for i in order:
        if len(kept) >= min_keep:
            break
        if i not in kept:
            kept.append(i)
    return sorted(kept, key=lambda i: -probabilities[i])
