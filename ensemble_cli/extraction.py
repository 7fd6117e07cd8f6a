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


# Numbers

_NUMBER = re.compile(
    r"(?P<sign>[-+−])?\s?(?P<currency>[$€£¥])?\s?(?P<sign2>[-+−])?"
    r"(?P<body>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?|\.\d+)"
    r"(?![\d.,]*\d)"
)
_ANSWER_MARKER = re.compile(r"(?:answer\s*(?:is|:)|####|final answer|result\s*(?:is|:)|=)", re.I)


def canonical_number(sign: str, body: str) -> str | None:
    body = body.replace(",", "").replace(" ", "")
    try:
        value = Fraction(body) if "/" in body else Fraction(body)
    except (ValueError, ZeroDivisionError):
        return None
    if sign in ("-", "−"):
        value = -value
    if value.denominator == 1:
        return str(value.numerator)
    decimal = f"{float(value):.10f}".rstrip("0").rstrip(".")
    return "0" if decimal in ("-0", "") else decimal


def _numbers(text: str, start: int = 0) -> list[Answer]:
    found = []
    for match in _NUMBER.finditer(text, start):
        begin = min(match.start(g) for g in ("sign", "currency", "sign2", "body") if match.group(g) is not None)
        if begin > 0 and (text[begin - 1].isalpha() or text[begin - 1] == "_"):
            continue  # part of a word such as H2O or x1
        sign = match.group("sign") or match.group("sign2") or ""
        value = canonical_number(sign, match.group("body"))
        if value is not None:
            found.append(Answer(value, begin, match.end()))
    return found


def extract_number(text: str) -> Answer | None:
    """The final number; after an 'answer is' / '####' / '=' marker if there is one."""
    markers = list(_ANSWER_MARKER.finditer(text))
    for marker in reversed(markers):
        after = _numbers(text, marker.end())
        if after:
            return after[0]
    numbers = _numbers(text)
    return numbers[-1] if numbers else None


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


def token_span(token_texts: list[str], start: int, end: int) -> list[int]:
    """Indices of the tokens whose text overlaps characters [start, end) of their concatenation."""
    indices, offset = [], 0
    for index, text in enumerate(token_texts):
        token_end = offset + len(text)
        if token_end > start and offset < end:
            indices.append(index)
        offset = token_end
    return indices
