"""Every extractor on ordinary and nasty replies."""

from __future__ import annotations

import pytest

from ensemble_cli.errors import ConfigError
from ensemble_cli.extraction import get_extractor


def value(spec: str, text: str):
    answer = get_extractor(spec)(text)
    return None if answer is None else answer.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 1,000.", "1000"),
        ("It costs $1000.00 in total", "1000"),
        ("1000.0", "1000"),
        ("We get 3/4 of the pie", "0.75"),
        ("Temperature: −5 degrees", "-5"),
        ("First 12, then 7, so the answer is 42. Done in 3 steps.", "42"),
        ("#### 18", "18"),
        ("2 + 2 = 4", "4"),
        ("x = -0.50", "-0.5"),
        ("H2O has 3 atoms", "3"),
        ("about 1,234,567 people", "1234567"),
        ("distance is 12 km", "12"),
        ("no digits here", None),
        ("", None),
        ("pi is about 3.14.", "3.14"),
        ("divide by 0/0 is undefined; answer: 7", "7"),
    ],
)
def test_number(text, expected):
    assert value("number", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (B).", "B"),
        ("answer is b", "B"),
        ("Answer: C", "C"),
        ("I think (A) is wrong, (D) is right", "D"),
        ("B) because of the reasons", "B"),
        ("After careful thought:\n**E**", "E"),
        ("I choose option c", "C"),
        ("A cat is an animal", None),
        ("", None),
    ],
)
def test_choice(text, expected):
    assert value("choice", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{42}", "42"),
        (r"\boxed{1} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{ $x^2$ }", "x^2"),
        (r"\boxed{unclosed", None),
        (r"\boxed{}", None),
        ("no box", None),
    ],
)
def test_boxed(text, expected):
    assert value("boxed", text) == expected


def test_line_and_text_normalise():
    assert value("line", "reasoning...\n\n  Paris.  \n\n") == "paris"
    assert value("text", '  "Hello,   World!"  ') == "hello,   world".replace("   ", " ")
    assert value("text", "Paris") == value("text", "paris.") == value("text", "'PARIS'!")
    assert value("line", "   \n  ") is None and value("text", "") is None


def test_json_field():
    reply = 'Sure: ```json\n{"answer": "Paris", "score": 0.5}\n``` and later {"answer": 12.0}'
    assert value("json:answer", reply) == "12"
    assert value("json:score", reply) == "0.5"
    assert value("json:a.b", '{"a": {"b": true}}') == "true"
    assert value("json:answer", "{not json} nothing") is None
    assert value("json:answer", '{"other": 1}') is None


def test_regex():
    assert value(r"regex:final:\s*(\w+)", "Final: Blue\nfinal: Green") == "green"
    assert value(r"regex:\d+", "a 1 b 22") == "22"
    assert value("regex:zzz", "abc") is None


def test_spans_point_at_the_answer():
    text = "Some reasoning. The answer is 1,000."
    answer = get_extractor("number")(text)
    assert text[answer.start:answer.end] == "1,000"


@pytest.mark.parametrize("spec", ["nope", "json:", "regex:"])
def test_unknown_extractor(spec):
    with pytest.raises(ConfigError, match="unknown extractor"):
        get_extractor(spec)


def test_bad_regex_names_the_pattern():
    with pytest.raises(ConfigError, match=r"regex '\(unclosed' does not compile"):
        get_extractor("regex:(unclosed")
