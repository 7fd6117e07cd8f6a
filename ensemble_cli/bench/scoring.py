"""Scoring one record against its gold answer with the shared extractors.

``number`` and ``choice`` extract from the record's output with the extractors vote and cot-decode use
(a gold number is read by the same rules, ``gold_number``); ``math`` compares the gold answer and the
output with math-verify (``math_scoring.py``); ``exact`` compares normalised texts; ``contains`` looks for
the normalised gold inside the output;
``judge`` keeps the verdict a judge member gave on free text (``bench/judge.py``). An
output with no extractable answer is wrong and counted apart (``extracted: false``), as is an error
record whose strategy ran and found no answer to give (vote or cot-decode with no extractable reply: its
record holds the replies in ``details``); an error record with no details is a failed item (``failed``:
the calls failed), wrong too.
"""

from __future__ import annotations

from typing import Any, Literal

from ..errors import ConfigError
from ..extraction import canonical_number, get_extractor, in_own_words, normalise_text, read_number
from . import math_scoring

SCORINGS = ("number", "choice", "math", "exact", "contains", "judge")
Scoring = Literal["number", "choice", "math", "exact", "contains", "judge"]


def gold_number(answer: str) -> str | None:
    """A gold answer read as one number by the number extractor's rules ('1,200', '$18', '−3', '1/2', '10%');
    failing that, as Python's Fraction reads it once commas and spaces are dropped; None if neither reads it."""
    return read_number(answer) or canonical_number("", answer.strip().replace(",", ""))


def gold_key(answer: str, scoring: str) -> str:
    """The gold answer as the extracted answer is keyed."""
    if scoring == "number":
        return gold_number(answer) or answer.strip()
    if scoring == "choice":
        return answer.strip().upper()
    return normalise_text(answer)


def predicted(output: Any, scoring: str) -> str | None:
    """The answer extracted from a record's output, or None where there is none."""
    if output is None:
        return None
    text = output if isinstance(output, str) else str(output)
    if scoring in ("number", "choice"):
        found = get_extractor(scoring)(text)
        return None if found is None else found.value
    if scoring in ("exact", "contains"):
        value = normalise_text(text)
        return value or None
    if scoring in ("judge", "math"):
        return text.strip() or None
    raise ConfigError(f"score: unknown scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")


def score_record(record: dict[str, Any], answer: str, scoring: str) -> dict[str, Any]:
    """The ``score`` field of a bench record: what was extracted, and whether it is right."""
    errored = record.get("status") != "ok"
    failed = errored and not record.get("details")
    value = None if errored else predicted(record.get("output"), scoring)
    if scoring == "judge":
        # a judge member's verdict (bench/judge.py) is kept; until it is given the answer counts as wrong
        earlier = record.get("score") or {}
        judged = bool(earlier.get("judged")) and value is not None
        return {"method": scoring, "predicted": value, "correct": judged and bool(earlier.get("correct")),
                "extracted": value is not None, "failed": failed, "judged": judged,
                **({"judge_reply": earlier.get("judge_reply")} if judged else {})}
    if scoring == "math":
        return _math_score(record, answer, value, failed)
    gold = gold_key(answer, scoring)
    if value is None:
        correct = False
    elif scoring == "contains":
        correct = bool(gold) and gold in value
    else:
        correct = value == gold
    return {"method": scoring, "predicted": value, "correct": correct, "extracted": value is not None,
            "failed": failed}


def _math_score(record: dict[str, Any], answer: str, output: str | None, failed: bool) -> dict[str, Any]:
    """math-verify's reading of the output (a reply, or the value an extractor took from one) against the gold."""
    extract = (record.get("details") or {}).get("extract")
    bare = isinstance(extract, str) and not in_own_words(extract)
    parsed = [] if output is None else math_scoring.parse_output(output, bare=bare)
    value = math_scoring.shown(parsed)
    correct = value is not None and math_scoring.equivalent(math_scoring.parse_gold(answer), parsed)
    return {"method": "math", "predicted": value, "correct": correct, "extracted": value is not None, "failed": failed}
