"""Answer extraction shared by vote and cot-decode: find the answer in a reply and normalise it.

Each extractor returns an ``Answer`` (the normalised value and its character span in the reply) or
``None`` when the reply holds no answer (an abstention, never a vote).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from .errors import ConfigError
from .number_reading import BLOCK, CONTEXT, NUMBER, WORD, NumberToken, canonical, number_tokens

EXTRACTORS = ("number", "choice", "boxed", "line", "text", "json:FIELD", "regex:PATTERN")


@dataclass(frozen=True)
class Answer:
    value: str
    """The normalised key that answers are counted by."""
    start: int
    end: int

    def words(self, text: str) -> str:
        """The answer as the reply wrote it (its span, trimmed)."""
        return text[self.start:self.end].strip()


def in_own_words(spec: str) -> bool:
    """Whether an extractor's key is a normalised text (lower-cased, trimmed), which no one should be shown
    as the answer: the output is then the winning reply's own words. Numbers, choices and boxed answers
    are shown as their canonical value."""
    return spec in ("text", "line", "judge") or spec.startswith(("json:", "regex:"))


Extractor = Callable[[str], "Answer | None"]

_END_PUNCTUATION = ".!?;:,"
_QUOTES = "\"'`“”‘’"


def normalise_text(text: str) -> str:
    """Case, whitespace, surrounding quotes and end punctuation do not make answers differ."""
    flat = " ".join(text.split()).strip()
    previous = None
    while flat != previous:
        previous = flat
        flat = flat.strip(_QUOTES).rstrip(_END_PUNCTUATION).strip()
    return flat.lower()


# Numbers (what counts as a number: number_reading.py)

_ANSWER_MARKER = re.compile(r"answer[\s*_]*(?:is|:)|####|final answer|result\s*(?:is|:)|(?<![<>!=])=(?!=)", re.I)


def canonical_number(sign: str, body: str) -> str | None:
    """The key a number is counted by, from a sign and a body Python's Fraction reads ('1000', '3/4', '1e3');
    commas and spaces in the body are dropped."""
    body = body.replace(",", "").replace(" ", "")
    try:
        value = Fraction(body)
    except (ValueError, ZeroDivisionError):
        return None
    return canonical(-value if sign in ("-", "−") else value)


def _answer(token: NumberToken) -> Answer | None:
    """A block (a range, a score, an expression) where the answer should be is no answer."""
    if token.value is None:
        return None
    return Answer(canonical(token.value), token.start, token.end)


def _pick(tokens: list[NumberToken], first: bool) -> Answer | None:
    """The first (after a marker) or last number; number words and context years only where no number is."""
    primary = [t for t in tokens if t.kind in (NUMBER, BLOCK)]
    if not first:
        primary = [t for t in primary if not t.aside] or primary
    for group in (primary, [t for t in tokens if t.kind == WORD], [t for t in tokens if t.kind == CONTEXT]):
        if group:
            return _answer(group[0] if first else group[-1])
    return None


def _choose(tokens: list[NumberToken], markers: list[tuple[int, int]]) -> Answer | None:
    for _, marker_end in reversed(markers):
        after = [t for t in tokens if t.start >= marker_end]
        if after:
            return _pick(after, first=True)
    return _pick(tokens, first=False)


def extract_number(text: str) -> Answer | None:
    """The answer number as a grader reads it: within the last \\boxed{...} if there is one; else the first
    number after the last answer marker ('answer is', 'answer:', '####', 'final answer', '=') that has one
    after it; else the reply's last number. A range, score, expression or other block where the answer
    should be gives no answer."""
    tokens = number_tokens(text)
    markers = [m.span() for m in _ANSWER_MARKER.finditer(text)]
    box = extract_boxed(text)
    if box is not None:
        tokens = [t for t in tokens if box.start <= t.start and t.end <= box.end]
        markers = [(s, e) for s, e in markers if box.start <= s and e <= box.end]
    return _choose(tokens, markers)


def read_number(text: str) -> str | None:
    """A text that is one number and nothing else (a gold answer: '1,200', '$18', '-3', '1/2', '10%',
    '$\\frac{1}{2}$'), as its canonical key; None for anything else."""
    body = text.strip()
    if len(body) > 1 and body.startswith("$") and body.endswith("$"):
        body = body[1:-1].strip()
    body = body.rstrip(".").rstrip()
    tokens = number_tokens(body)
    if len(tokens) != 1 or tokens[0].value is None or tokens[0].start != 0:
        return None
    if not re.fullmatch(r"\s*(?:\\?%)?\s*", body[tokens[0].end:]):
        return None
    return canonical(tokens[0].value)


# Multiple choice

_CHOICE_PATTERNS = [
    re.compile(r"answer\s*(?:is|:)?\s*(?:option\s*)?[\(\[]?\**\s*([A-J])\b\s*[\)\]]?", re.I),
    re.compile(r"\(([A-J])\)"),
    re.compile(r"(?:^|\n)\s*\**([A-J])[\).:]\s", re.M),
    re.compile(r"\b(?:option|choice)\s+([A-J])\b", re.I),
    re.compile(r"(?:^|\s)\**([A-J])\**[.!]?\s*$"),
]


def extract_choice(text: str) -> Answer | None:
    """A multiple-choice letter: from 'answer is b', '(B)', 'B)' at a line start, or a bare final 'B'."""
    for pattern in _CHOICE_PATTERNS:
        matches = list(pattern.finditer(text))
        if matches:
            match = matches[-1]
            return Answer(match.group(1).upper(), match.start(1), match.end(1))
    return None


# LaTeX boxed

def extract_boxed(text: str) -> Answer | None:
    """The content of the last \\boxed{...}, braces balanced."""
    start = text.rfind("\\boxed{")
    while start != -1:
        depth, i = 0, start + len("\\boxed")
        for i in range(start + len("\\boxed"), len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    inner_start = start + len("\\boxed{")
                    value = " ".join(text[inner_start:i].split()).strip("$ ")
                    return Answer(value, inner_start, i) if value else None
        start = text.rfind("\\boxed{", 0, start)
    return None


# Lines and text

def extract_line(text: str) -> Answer | None:
    """The last non-empty line."""
    end = len(text.rstrip())
    if end == 0:
        return None
    start = text.rfind("\n", 0, end) + 1
    value = normalise_text(text[start:end])
    return Answer(value, start, end) if value else None


def extract_text(text: str) -> Answer | None:
    """The whole reply, normalised."""
    value = normalise_text(text)
    if not value:
        return None
    start = len(text) - len(text.lstrip())
    return Answer(value, start, len(text.rstrip()))


# JSON field and regex

def _json_objects(text: str) -> list[tuple[dict, int, int]]:
    decoder = json.JSONDecoder()
    objects = []
    index = text.find("{")
    while index != -1:
        try:
            obj, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        if isinstance(obj, dict):
            objects.append((obj, index, end))
        index = text.find("{", end)
    return objects


def json_field(path: str) -> Extractor:
    keys = path.split(".")

    def extract(text: str) -> Answer | None:
        for obj, start, end in reversed(_json_objects(text)):
            value: object = obj
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                continue
            if isinstance(value, bool):
                return Answer(str(value).lower(), start, end)
            if isinstance(value, (int, float)):
                return Answer(canonical_number("", repr(value)) or str(value), start, end)
            normalised = normalise_text(value if isinstance(value, str) else json.dumps(value, sort_keys=True))
            return Answer(normalised, start, end) if normalised else None
        return None

    return extract


def regex(pattern: str) -> Extractor:
    try:
        compiled = re.compile(pattern, re.I | re.S)
    except re.error as exc:
        raise ConfigError(f"extract: regex {pattern!r} does not compile: {exc}") from None

    def extract(text: str) -> Answer | None:
        matches = list(compiled.finditer(text))
        if not matches:
            return None
        match = matches[-1]
        group = 1 if compiled.groups else 0
        value = normalise_text(match.group(group) or "")
        return Answer(value, match.start(group), match.end(group)) if value else None

    return extract


_SIMPLE: dict[str, Extractor] = {
    "number": extract_number,
    "choice": extract_choice,
    "boxed": extract_boxed,
    "line": extract_line,
    "text": extract_text,
}


def get_extractor(spec: str) -> Extractor:
    """The extractor a ``--extract`` value names; an unknown one is a config error."""
    if spec in _SIMPLE:
        return _SIMPLE[spec]
    if spec.startswith("json:") and spec[5:]:
        return json_field(spec[5:])
    if spec.startswith("regex:") and spec[6:]:
        return regex(spec[6:])
    raise ConfigError(f"extract: unknown extractor {spec!r}; choose one of {', '.join(EXTRACTORS)} or judge")


def checked_extractor(spec: str, judge: bool = False) -> str:
    """An ``extract`` setting that names a known extractor (a regex must compile), for a settings model's
    validator; ``judge`` allows vote's judge grouping."""
    if not (judge and spec == "judge"):
        try:
            get_extractor(spec)
        except ConfigError as exc:
            raise ValueError(exc.template.removeprefix("extract: ")) from None
    return spec


def token_span(token_texts: list[str], start: int, end: int) -> list[int]:
    """Indices of the tokens whose text overlaps characters [start, end) of their concatenation."""
    indices, offset = [], 0
    for index, text in enumerate(token_texts):
        token_end = offset + len(text)
        if token_end > start and offset < end:
            indices.append(index)
        offset = token_end
    return indices
