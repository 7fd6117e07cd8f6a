"""Reading the numbers in a reply as a careful grader would, for the ``number`` extractor.

``number_tokens`` finds every number-like thing in a text and says what it is:

- a **number**: ``42``, ``-3``, ``−5``, ``1,000``, ``1,5`` (a decimal comma), ``$1,000.50``, ``3/4``,
  ``2 1/2``, ``½``, ``\\frac{1}{2}``, ``10%``, ``3rd``, ``2x``, ``12 km``, ``1e3``, ``2.5 × 10^3``,
  ``5k``, ``2.5 million``;
- a **word** number: ``four``, ``twenty-one``, ``a hundred and five``, ``a dozen``;
- a **context** year: ``in 2024``, ``since 1990``, which a reply mentions more often than it answers;
- a **block**: something that holds numbers but is not one number, so that no number in it is the
  answer: a range (``5-7``, ``5–7``, ``5 to 7``, ``between 5 and 7``), a score or ratio (``3-1``, ``3:1``),
  alternatives (``5 or 6``), an unreduced expression (``10 - 3``, ``2^10``), a tuple (``(1, 2)``), a
  number times a root, π or a variable (``2\\sqrt{3}``), a fraction of symbols (``\\frac{x}{2}``).

Identifiers are not tokens at all: dates (``2024-01-15``, ``1/15/2024``, ``March 3, 2024``), clock times
(``10:30``, ``5 pm``), phone numbers (``555-1234``), versions and addresses (``1.2.3``), codes of three or
more hyphenated parts (``4-3-3``), labels (``Step 2``) and the numbers of a numbered list.
Digits are ASCII digits; European dotted thousands (``1.000.000``) are not read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

NUMBER, WORD, CONTEXT, BLOCK = "number", "word", "context", "block"
MAX_EXPONENT = 400


@dataclass(frozen=True)
class NumberToken:
    kind: str
    """number, word, context (a year after 'in', 'since', ...) or block (not one number)."""
    value: Fraction | None
    start: int
    end: int
    aside: bool = False
    """Inside parentheses after an earlier number: '12 (3 × 4)'."""


def canonical(value: Fraction) -> str:
    """The string answers are keyed by: an integer, or a decimal of at most 10 places."""
    if value.denominator == 1:
        return str(value.numerator)
    try:
        decimal = f"{float(value):.10f}".rstrip("0").rstrip(".")
    except OverflowError:
        return f"{value.numerator}/{value.denominator}"
    return "0" if decimal in ("-0", "") else decimal


# Identifiers: spans whose digits are never read

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
          r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DAY = r"(?:[12][0-9]|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_LABELS = r"(?i:step|case|part|question|problem|example|method|section|chapter|figure|fig\.|table|equation|eq\.)"
_IDENTIFIERS = [re.compile(pattern) for pattern in (
    r"(?<![\w.,/-])[12][0-9]{3}([-/.])(?:1[0-2]|0?[1-9])\1(?:[12][0-9]|3[01]|0?[1-9])(?![\w/-]|[.,][0-9])",
    r"(?<![\w.,/-])[12][0-9]{3}-(?:0[1-9]|1[0-2])(?![\w/-]|[.,][0-9])",
    rf"\b{_MONTH}\s+{_DAY}\b(?:,?\s+[0-9]{{4}}\b)?",
    rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+[0-9]{{4}}\b)?",
    rf"\b{_MONTH}\s+[0-9]{{4}}\b",
    r"(?<![\w.:])(?:[01]?[0-9]|2[0-4]):[0-5][0-9](?::[0-5][0-9])?(?:\s?[AaPp]\.?[Mm]\b\.?)?(?![\w:])",
    r"(?<![\w.:])(?:1[0-2]|0?[1-9])\s?[AaPp]\.?[Mm]\.?(?![A-Za-z])",
    r"(?<![\w.-])(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?![\w-])",
    r"(?<![\w.-])[2-9][0-9]{2}-[0-9]{4}(?![\w-])",
    r"(?<![\w.])[0-9]+(?:\.[0-9]+){2,}",
    r"(?<![\w.])[0-9]+(?:[-–][0-9]+){2,}(?!\w)",
    rf"\b{_LABELS}\s*[0-9]+[a-z]?\b",
)]
_SLASH_DATE = re.compile(r"(?<![\w.,/-])([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})(?![\w/-]|[.,][0-9])")
_ENUMERATOR = re.compile(r"^[ \t]*[0-9]{1,2}[.)](?=[ \t]+\S)", re.M)


def identifier_spans(text: str) -> list[tuple[int, int]]:
    """Dates, times, phone numbers, versions, codes, labels and list numbers: never read as numbers."""
    spans = [m.span() for pattern in _IDENTIFIERS for m in pattern.finditer(text)]
    for match in _SLASH_DATE.finditer(text):
        first, second = int(match.group(1)), int(match.group(3))
        if 1 <= min(first, second) <= 12 and max(first, second) <= 31:
            spans.append(match.span())
    enumerators = [m.span() for m in _ENUMERATOR.finditer(text)]
    if len(enumerators) >= 2:  # a numbered list, not one line that starts with '18. '
        spans += enumerators
    return spans


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < s_end and s_start < end for s_start, s_end in spans)


# Atoms: one written number with its sign, currency, scale and suffix

_ATOM = re.compile(
    r"(?P<sign>[-+−–])?(?P<cur>\\?[$€£¥₹][ \t]?)?(?P<sign2>[-+−–])?"
    r"(?:(?P<whole>[0-9]+) (?P<mnum>[0-9]+)/(?P<mden>[0-9]+)(?![0-9/]|[.,][0-9])"
    r"|(?P<vwhole>[0-9]*)(?P<vulgar>[¼½¾⅐⅑⅒⅓⅔⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞])"
    r"|(?<![(\[{])(?<![0-9],)(?P<dc>[0-9]+,(?:[0-9]{1,2}|[0-9]{4,}))(?![0-9]|,[0-9]|[)\]}])"
    r"|(?P<num>(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,2}(?:,[0-9]{2})+,[0-9]{3}"  # 1,000,000 and 1,00,000
    r"|[0-9]{1,3}(?:[\u00a0\u2009\u202f][0-9]{3})+|[0-9]{1,3}(?:(?: [0-9]{3}){2,}| 0[0-9]{2}))"  # 1 000 000
    r"(?![0-9]|[,\u00a0\u2009\u202f ][0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)"
    r"(?P<exp>[eE][-+]?[0-9]{1,3}(?![0-9]))?"
    r"(?:[ \t]*/[ \t]*(?P<den>[0-9]+(?:\.[0-9]+)?)(?![0-9/]|[.,][0-9]))?"
    r"(?P<sup>⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)?)"
)
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12,
                "dozen": 12}
_SCALE = re.compile(r"[ \t]+(hundred|thousand|million|billion|trillion|dozen)\b", re.I)
_MONEY_SCALES = {"k": 1000, "K": 1000, "m": 10**6, "M": 10**6, "mn": 10**6, "b": 10**9, "B": 10**9,
                 "bn": 10**9}
_SYMBOLIC = re.compile(
    r"\s*(?:[π√∞]|\\(?:sqrt|pi|infty|sin|cos|tan|cot|sec|csc|log|ln|exp|alpha|beta|gamma|delta|epsilon"
    r"|varepsilon|zeta|eta|theta|vartheta|lambda|mu|nu|xi|rho|sigma|tau|phi|varphi|chi|psi|omega|Gamma|Delta"
    r"|Theta|Lambda|Sigma|Phi|Psi|Omega|mathrm\{i\}|imath)(?![A-Za-z]))")
_WORD_SIGN = re.compile(r"\b(negative|minus)[ \t]+$", re.I)
_EXPONENT_BEFORE = re.compile(r"\^[ \t]*\{?[ \t]*$")


def _window(text: str, at: int, size: int = 40) -> str:
    """The text just before ``at``, for the look-behind tests (signs, years, 'between')."""
    return text[max(0, at - size):at]


@dataclass(frozen=True)
class _Atom:
    value: Fraction | None  # None: a number that is not one (5², 2√3)
    start: int
    end: int  # the end of what the value was read from
    tail: int  # the end of the suffix too (%, 3rd, a unit letter run)
    plain: str  # the digits as written, for 10 in 2.5 × 10^3
    exponent: bool  # written after '^'
    power_of_ten: int | None = None  # 10³ (superscript), so that 2.5 × 10³ reads


def _unary(text: str, index: int) -> bool:
    """Whether the sign at text[index] is a sign (-3, = -3, is -3) and not a minus between numbers (5-7, 10 - 3)."""
    before = _window(text, index).rstrip(" \t")
    if index == 0 or not before or before[-1] in "\n\r":
        return True
    if text[index - 1] not in " \t":
        return not (before[-1].isalnum() or before[-1] in ")]}%_.")
    return not (before[-1].isdigit() or before[-1] in ")]}%")


def _body_value(match: re.Match[str]) -> Fraction | None:
    if match.group("whole") is not None:
        numerator, denominator = int(match.group("mnum")), int(match.group("mden"))
        if not 0 < numerator < denominator:
            return None
        return int(match.group("whole")) + Fraction(numerator, denominator)
    if match.group("vulgar") is not None:
        whole = int(match.group("vwhole") or 0)
        return whole + Fraction(str(unicodedata.numeric(match.group("vulgar")))).limit_denominator(10)
    body = match.group("dc").replace(",", ".") if match.group("dc") else match.group("num")
    body = re.sub(r"[, \u00a0\u2009\u202f]", "", body) + (match.group("exp") or "")
    value = Fraction(body)
    if match.group("den") is not None:
        value /= Fraction(match.group("den"))
    return value


def _suffix(text: str, end: int, money: bool) -> tuple[int, int, int]:
    """(multiplier, end of the value's span, end of the suffix) after a number ending at ``end``."""
    if text.startswith(("%", "\\%"), end):
        return 1, end, end + (1 if text[end] == "%" else 2)
    letters = re.match(r"[A-Za-z]+", text[end:end + 40])
    if letters and not re.match(r"[xX][0-9]", text[end:end + 2]):  # 2x3 is a dimension, joined later
        run = letters.group()
        if run in _MONEY_SCALES and (money or run in ("k", "K")):
            return _MONEY_SCALES[run], end + len(run), end + len(run)
        return 1, end, end + len(run)
    scale = _SCALE.match(text, end)
    if scale:
        return _SCALE_WORDS[scale.group(1).lower()], scale.end(), scale.end()
    return 1, end, end


_CLOSING_DOLLAR = re.compile(r"(?<=\S)\$(?![0-9])")


def _opens_math(text: str, at: int) -> bool:
    """Whether the '$' at ``at`` opens LaTeX math ($18$, $2.5 \\times 10^{3}$) rather than a dollar amount."""
    if text[at] != "$":
        return False
    line_end = text.find("\n", at)
    return _CLOSING_DOLLAR.search(text, at + 1, len(text) if line_end == -1 else line_end) is not None


def _signed_start(text: str, match: re.Match[str], body_start: int) -> tuple[int, bool] | None:
    """Where the number starts (its sign or currency) and whether it is negative; None where the digits are
    part of a word (H2O, x1, COVID-19)."""
    sign_at = next((match.start(g) for g in ("sign2", "sign") if match.group(g)), None)
    negative = False
    money = bool(match.group("cur")) and not _opens_math(text, match.start("cur"))
    start = match.start("cur") if money else (match.start("sign2") if match.group("sign2") else body_start)
    if sign_at is not None and _unary(text, sign_at):
        negative, start = text[sign_at] != "+", min(start, sign_at)
    previous, before_previous = text[start - 1:start], text[start - 2:start - 1]
    dimension = previous in ("x", "X") and before_previous.isdigit()  # the 3 of 2x3
    if not money and (previous.isalnum() or previous == "_") and not dimension:
        return None
    if previous == "-" and before_previous.isalpha():
        return None
    word_sign = _WORD_SIGN.search(_window(text, start))
    if sign_at is None and word_sign:
        at = start - len(word_sign.group())
        if word_sign.group(1).lower() == "negative" or _unary(text, at):
            negative, start = True, at
    return start, negative


def _power_of_ten(match: re.Match[str]) -> int | None:
    """k for 10 written with a superscript k (10³); None for any other base (5² is no number read here)."""
    power = int(match.group("sup").translate(_SUPERSCRIPTS))
    ten = match.group("num") == "10" and not match.group("exp") and match.group("den") is None
    return power if ten and abs(power) <= MAX_EXPONENT else None


def _atom(text: str, match: re.Match[str]) -> _Atom | None:
    """The number a match of _ATOM is (value None: not one number, as 5² or 2√3), or None where it is no
    number at all: part of a word, or a division by zero."""
    body_start = match.start("whole") if match.group("whole") is not None else min(
        match.start(g) for g in ("vwhole", "vulgar", "dc", "num") if match.group(g) is not None)
    signed = _signed_start(text, match, body_start)
    if signed is None:
        return None
    start, negative = signed
    try:
        value = _body_value(match)
    except (ValueError, ZeroDivisionError):
        return None
    power = _power_of_ten(match) if match.group("sup") else None
    if match.group("sup"):
        value = None if power is None else Fraction(10) ** power
    if text[start - 1:start] == "√" or _SYMBOLIC.match(text, match.end()):
        value = None
    multiplier, end, tail = _suffix(text, match.end(), bool(match.group("cur")))
    if value is not None:
        value = -value * multiplier if negative else value * multiplier
    exponent = bool(_EXPONENT_BEFORE.search(_window(text, start)))
    return _Atom(value, start, end, tail, text[body_start:match.end()], exponent, power)


def _atoms(text: str, masked: list[tuple[int, int]]) -> list[_Atom]:
    found, position = [], 0
    while (match := _ATOM.search(text, position)) is not None:
        if _inside(match.start(), match.end(), masked):
            # read on after the identifier, or from the next character ("Step 3 1/2" still has its 1/2)
            ends = [end for start, end in masked if start <= match.start() < end]
            position = max(ends) if ends else match.start() + 1
            continue
        atom = _atom(text, match)
        if atom is not None:
            found.append(atom)
        position = match.end()
    return found


# LaTeX fractions and roots

_FRAC = re.compile(r"\\[dt]?frac\s*")
_ROOT = re.compile(r"\\sqrt\s*(?:\[[^\]]*\])?\s*")
_PLAIN_NUMBER = re.compile(r"\s*([-+−]?)\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*")


def _argument(text: str, at: int) -> tuple[str, int] | None:
    """One LaTeX argument starting at ``at``: a braced group (balanced) or a single character."""
    if at >= len(text):
        return None
    if text[at] != "{":
        return (text[at], at + 1) if not text[at].isspace() else None
    depth = 0
    for index in range(at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[at + 1:index], index + 1
    return None


def _plain(argument: str) -> Fraction | None:
    match = _PLAIN_NUMBER.fullmatch(argument)
    if not match:
        return None
    value = Fraction(match.group(2))
    return -value if match.group(1) in ("-", "−") else value


def latex_tokens(text: str) -> Iterator[tuple[Fraction | None, int, int]]:
    """(value or None, start, end) of each \\frac{a}{b} (a value where both parts are numbers) and \\sqrt{...}."""
    for match in _FRAC.finditer(text):
        top = _argument(text, match.end())
        bottom = _argument(text, top[1]) if top else None
        if top and bottom:
            numerator, denominator = _plain(top[0]), _plain(bottom[0])
            value = numerator / denominator if numerator is not None and denominator else None
            yield value, match.start(), bottom[1]
    for match in _ROOT.finditer(text):
        argument = _argument(text, match.end())
        if argument:
            yield None, match.start(), argument[1]


def _latex_atoms(text: str) -> list[_Atom]:
    found = []
    for value, start, end in latex_tokens(text):
        if value is not None and start > 0 and _unary(text, start - 1) and text[start - 1] in "-−–":
            value, start = -value, start - 1
        found.append(_Atom(value, start, end, end, text[start:end], False))
    return found


# Joining atoms written together: ranges, scores, expressions, scientific notation

_JOIN = re.compile(
    r"(?:\\?%|°[CF]?|[ \t]?[A-Za-z]{1,3}\.?)?"
    r"(?P<op>[ \t]*(?:[-–−+*/×·⋅÷±]|\\times|\\cdot|\\div|\\pm)[ \t]*|—|[ \t]*\^[ \t]*\{?[ \t]*"
    r"|[ \t]+(?:x|to|or|and|plus|minus|times|divided[ \t]+by)[ \t]+|[:xX])"
)
_MULTIPLY = re.compile(r"\s*(?:[x*×·⋅]|\\times|\\cdot)\s*")
_BETWEEN = re.compile(r"\bbetween[ \t]+(?:\S+[ \t]+)?$", re.I)


def _joins(text: str, left: _Atom, right: _Atom, group_start: int) -> str | None:
    """The operator joining two atoms written as one thing (5-7, 5 to 7, 2 x 3, 10^3), or None."""
    gap = text[left.tail:right.start]
    match = _JOIN.fullmatch(gap)
    if not match:
        return None
    op = match.group("op").strip(" \t{")
    if op == "and" and not _BETWEEN.search(_window(text, group_start)):
        return None
    return op


def _scientific(group: list[_Atom], ops: list[str]) -> Fraction | None:
    """The value of 10^3, 2.5 × 10^3 or 2.5 × 10³; None for any other joined group (no single number)."""
    first, last = group[0].value, group[-1].value
    if first is None or last is None or any(atom.value is None for atom in group):
        return None
    if ops == ["^"] and group[0].plain == "10" and first == 10 and last.denominator == 1:
        return Fraction(10) ** int(last) if abs(last) <= MAX_EXPONENT else None
    if not ops or _MULTIPLY.fullmatch(ops[0]) is None:
        return None
    if ops[1:] == ["^"]:
        power = _scientific(group[1:], ops[1:])
        return first * power if power is not None else None
    if len(ops) == 1 and group[1].power_of_ten is not None:
        return first * Fraction(10) ** group[1].power_of_ten
    return None


def _same(group: list[_Atom], ops: list[str]) -> Fraction | None:
    """'1/2 or 0.5' is one answer written twice; '5 or 6' is two answers."""
    values = {atom.value for atom in group}
    return values.pop() if set(ops) == {"or"} and len(values) == 1 else None


def _groups(text: str, atoms: list[_Atom]) -> list[tuple[list[_Atom], list[str]]]:
    groups: list[tuple[list[_Atom], list[str]]] = []
    for atom in atoms:
        if groups:
            last, ops = groups[-1]
            op = _joins(text, last[-1], atom, last[0].start)
            if op is not None:
                last.append(atom)
                ops.append(op)
                continue
        groups.append(([atom], []))
    return groups


def _joined_tokens(text: str, atoms: list[_Atom]) -> list[NumberToken]:
    tokens = []
    for group, ops in _groups(text, atoms):
        first = group[0]
        if len(group) == 1:
            if first.exponent:
                continue  # x^2: an exponent of something that is not a number
            tokens.append(NumberToken(NUMBER if first.value is not None else BLOCK, first.value, first.start,
                                      first.end))
            continue
        value = _scientific(group, ops) if "or" not in ops else _same(group, ops)
        end = group[-1].end
        if ops[-1] == "^" and "{" in text[group[-2].tail:group[-1].start] and text.startswith("}", end):
            end += 1  # 10^{3}
        tokens.append(NumberToken(NUMBER if value is not None else BLOCK, value, first.start, end))
    return tokens


def _mixed_latex(text: str, atoms: list[_Atom]) -> list[_Atom]:
    """2\\frac{1}{2} is two and a half."""
    merged: list[_Atom] = []
    for atom in atoms:
        previous = merged[-1] if merged else None
        if (previous is not None and previous.end == atom.start and text.startswith("\\", atom.start)
                and previous.value is not None and previous.value.denominator == 1 and atom.value is not None
                and 0 < atom.value < 1):
            merged[-1] = _Atom(previous.value + atom.value, previous.start, atom.end, atom.end, "", False)
        else:
            merged.append(atom)
    return merged


# Tuples, years, asides

_OPENERS = ("\\left(", "\\left[", "\\left\\{", "\\{", "(", "[", "{")
_CLOSER = re.compile(r"[ \t]*(?:\\right\\?[)\]}]|\\\}|[)\]}])")


def _opened(text: str, at: int) -> int | None:
    """Where the bracket that opens just before ``at`` starts (not LaTeX's \\( or \\[ math delimiters)."""
    before = _window(text, at, 12).rstrip(" \t")
    for opener in _OPENERS:
        if before.endswith(opener) and not (len(opener) == 1 and before[:-1].endswith("\\")):
            return at - len(_window(text, at, 12)) + len(before) - len(opener)
    return None


def _closed(text: str, at: int) -> int | None:
    """Where the bracket that closes just after ``at`` ends."""
    match = _CLOSER.match(text, at)
    return match.end() if match else None


def _tuples(text: str, tokens: list[NumberToken]) -> list[NumberToken]:
    """(1, 2), [0, 1), \\{1, 2, 3\\}: a tuple, interval or set is a block."""
    result: list[NumberToken] = []
    index = 0
    while index < len(tokens):
        run = index
        while run + 1 < len(tokens) and re.fullmatch(r"[ \t]*,[ \t]*", text[tokens[run].end:tokens[run + 1].start]):
            run += 1
        opened, closed = _opened(text, tokens[index].start), _closed(text, tokens[run].end)
        if run > index and opened is not None and closed is not None:
            result.append(NumberToken(BLOCK, None, opened, closed))
        else:
            result.extend(tokens[index:run + 1])
        index = run + 1
    return result


_YEAR_BEFORE = re.compile(r"\b(?:in|since|until|till|during|year|circa)[ \t]+$", re.I)


def _years(text: str, tokens: list[NumberToken]) -> list[NumberToken]:
    """A year after 'in', 'since', ... is context: the answer is another number if the reply has one."""
    result = []
    for token in tokens:
        written = text[token.start:token.end]
        if (token.kind == NUMBER and re.fullmatch(r"[12][0-9]{3}", written) and 1000 <= int(written) <= 2100
                and _YEAR_BEFORE.search(_window(text, token.start))):
            token = NumberToken(CONTEXT, token.value, token.start, token.end)
        result.append(token)
    return result


def _parentheses(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    stack: list[int] = []
    for index, char in enumerate(text):
        if char in "\n":
            stack.clear()
        elif char == "(" and text[index - 1:index] != "\\":
            stack.append(index)
        elif char == ")" and text[index - 1:index] != "\\" and stack:
            spans.append((stack.pop(), index))
    return spans


def _asides(text: str, tokens: list[NumberToken]) -> list[NumberToken]:
    """A number in parentheses after an earlier number is an aside: '12 (3 × 4)', '5 apples (3 red)'."""
    spans = _parentheses(text)
    first_end = min((t.end for t in tokens if t.kind in (NUMBER, BLOCK)), default=None)
    result = []
    for token in tokens:
        if first_end is not None and any(first_end <= open_ < token.start and token.end <= close
                                         for open_, close in spans):
            token = NumberToken(token.kind, token.value, token.start, token.end, aside=True)
        result.append(token)
    return result


# Number words

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_VALUES = {**{w: i for i, w in enumerate(_UNITS)}, **{w: 20 + 10 * i for i, w in enumerate(_TENS)}, "a": 1}
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
_TENS_UNIT = rf"(?:(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_UNITS[1:10])}))?|{_UNIT})"
_WORDS = re.compile(
    rf"\b(?:(?P<negative>negative)\s+)?(?:(?P<hundreds>a|{'|'.join(_UNITS[1:10])})\s+hundred"
    rf"(?:\s+(?:and\s+)?(?P<rest>{_TENS_UNIT}))?|(?<!half )(?P<dozens>a|{_UNIT})\s+dozen|(?P<tu>{_TENS_UNIT}))\b",
    re.I)
_NOT_ONE = re.compile(r"\b(?:no|the|this|that|which|each|every|any|another)\s+$", re.I)
_ONE_OF = re.compile(r"\s+(?:of|another|by)\b", re.I)


def _word_value(words: str) -> int:
    return sum(_WORD_VALUES[part] for part in re.split(r"[- ]", words.lower()))


def _spelled(match: re.Match[str]) -> int:
    if match.group("tu") is not None:
        return _word_value(match.group("tu"))
    if match.group("dozens") is not None:
        return 12 * _word_value(match.group("dozens"))
    rest = _word_value(match.group("rest")) if match.group("rest") else 0
    return 100 * _word_value(match.group("hundreds")) + rest


def _pronoun(text: str, match: re.Match[str]) -> bool:
    """'one' in 'no one', 'the one', 'one of them', 'one another'."""
    return (match.group("tu") is not None and match.group("tu").lower() == "one"
            and bool(_NOT_ONE.search(_window(text, match.start("tu"))) or _ONE_OF.match(text, match.end())))


def word_tokens(text: str, masked: list[tuple[int, int]]) -> list[NumberToken]:
    """Spelled numbers up to 999 and dozens; 'one' as a pronoun is not a number."""
    tokens = []
    for match in _WORDS.finditer(text):
        if not _inside(match.start(), match.end(), masked) and not _pronoun(text, match):
            value = _spelled(match)
            tokens.append(NumberToken(WORD, Fraction(-value if match.group("negative") else value),
                                      match.start(), match.end()))
    return tokens


def number_tokens(text: str) -> list[NumberToken]:
    """Every number-like thing in ``text``, in order (see the module docstring)."""
    masked = identifier_spans(text)
    latex = _latex_atoms(text)
    atoms = _atoms(text, masked + [(atom.start, atom.end) for atom in latex])
    ordered = _mixed_latex(text, sorted(atoms + latex, key=lambda atom: atom.start))
    tokens = _years(text, _tuples(text, _joined_tokens(text, ordered)))
    words = word_tokens(text, masked + [(t.start, t.end) for t in tokens])
    return _asides(text, sorted(tokens + words, key=lambda token: token.start))
