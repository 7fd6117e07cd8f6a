"""Every extractor on ordinary and nasty replies."""

from __future__ import annotations

import pytest

from ensemble_cli.errors import ConfigError
from ensemble_cli.extraction import canonical_number, extract_number, get_extractor, read_number


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


# What a careful grader takes as "the number" of a reply (None: the reply gives no single number there).
READINGS = [
    # ranges, scores, ratios and alternatives are no single number
    ("range with a hyphen", "There are between 5-7 apples in the bag.", None),
    ("range with 'to'", "It takes 5 to 7 days.", None),
    ("range with an en dash", "Delivery takes 5–7 business days.", None),
    ("range 'between ... and'", "Expect between 5 and 7 guests.", None),
    ("range of percentages", "Rates rose 5%-10%.", None),
    ("range of dollars", "Tickets cost $5-$7.", None),
    ("score", "The final score was 3-1.", None),
    ("ratio", "The ratio of boys to girls is 3:1.", None),
    ("alternatives", "The answer is 5 or 6.", None),
    ("one value written twice", "The answer is 1/2 or 0.5.", "0.5"),
    ("unreduced expression", "The answer is 10 - 3.", None),
    ("words as operators", "That is 10 minus 4.", None),
    ("tuple", "The point is (1, 2).", None),
    ("interval", r"So $x \in [0, 1)$.", None),
    ("dimensions", "Draw a 2x3 grid.", None),
    ("a formation code after the answer", 'What is 2 + 2? 2 + 2 = 4. It reminds me of the "4-3-3" rule.', "4"),
    ("a code and a spelled answer", 'Two plus two makes four, like the "4-3-3" formation.', "4"),
    ("a range in the reasoning", "Each bag holds 5-7 apples, 6 on average, so 3 bags hold 18.", "18"),
    # identifiers are not numbers
    ("phone number", "For help, call 555-1234.", None),
    ("phone number after the answer", "The shop sells 12 apples a day; call (555) 123-4567 to order.", "12"),
    ("ISO date", "The invoice is dated 2024-01-15.", None),
    ("US date after the answer", "She had 3 apples left on 1/15/2024.", "3"),
    ("date with a month name", "On March 3, 2024 she baked 7 pies.", "7"),
    ("time", "He left at 10:30 and walked 5 km.", "5"),
    ("time with pm", "At 5 pm she still had 3 apples.", "3"),
    ("version", "Version 1.2.3 fixed 4 bugs.", "4"),
    ("step labels", "Step 1: 2 + 3 = 5.\nStep 2: Done.", "5"),
    ("numbered list", "1. Add 2 and 3 to get 5.\n2. Stop there.", "5"),
    ("a word with digits", "COVID-19 cases rose to 120.", "120"),
    # signs
    ("equals minus", "x = -3", "-3"),
    ("is minus, then a full stop", "So the answer is -4.", "-4"),
    ("minus with a unit", "The temperature is -5 degrees.", "-5"),
    ("unicode minus", "It fell to −5 °C overnight.", "-5"),
    ("en dash as a minus", "The answer is –3.", "-3"),
    ("negative in words", "The answer is negative 4.", "-4"),
    ("minus in words", "It is minus 4 degrees.", "-4"),
    ("subtraction then its result", "So 10 - 3 = 7", "7"),
    ("a bullet is no minus", "- 3 apples\n- 4 pears", "4"),
    ("negative money", "The balance is -$5.", "-5"),
    # money, grouping, decimals
    ("money with cents", "The total is $1,000.50.", "1000.5"),
    ("millions", "That is 1,000,000 grains.", "1000000"),
    ("decimal comma", "Die Antwort ist 1,5.", "1.5"),
    ("space-grouped thousands", "The population is 1 000 000.", "1000000"),
    ("Indian grouping", "It costs 1,00,000 rupees.", "100000"),
    ("a whole number written as a decimal", "The answer is 3.0", "3"),
    ("scale word", "About 2.5 million people live there.", "2500000"),
    ("k suffix", "She earns $5k a month.", "5000"),
    ("a list without spaces", "The first three are 1,2,3", "3"),
    # fractions
    ("fraction", "Half is 1/2.", "0.5"),
    ("mixed number", "Add 2 1/2 cups of flour.", "2.5"),
    ("vulgar fraction", "Use ½ cup.", "0.5"),
    ("LaTeX fraction", r"The answer is $\frac{1}{2}$.", "0.5"),
    ("negative LaTeX dfrac", r"So $x = -\dfrac{3}{4}$.", "-0.75"),
    ("LaTeX mixed number", r"It takes $2\frac{1}{2}$ hours.", "2.5"),
    ("fraction of symbols", r"So $y = \frac{x}{2}$.", None),
    ("root", r"The side is $2\sqrt{3}$.", None),
    # percent, ordinals, multipliers, units
    ("percent", "Profit rose by 10%.", "10"),
    ("ordinal", "She finished the race 3rd.", "3"),
    ("multiplier", "The new chip is 2x faster.", "2"),
    ("hyphenated unit", "He is a 5-year-old.", "5"),
    ("degrees", "It is 90° in the shade.", "90"),
    # scientific notation
    ("e notation", "That is 1e3 metres.", "1000"),
    ("times ten to the", "That is 2.5 × 10^3 joules.", "2500"),
    ("LaTeX times ten to the", r"$2.5 \times 10^{3}$", "2500"),
    ("superscript power", "About 2.5 × 10³ people.", "2500"),
    ("a power that is no scientific notation", "The answer is 2^10.", None),
    # markers, GSM8K and trailing punctuation
    ("GSM8K solution", "She eats 3 and bakes 4, so she sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * $2 = $18.\n#### 18",
     "18"),
    ("bold final answer", "**Step 1:** 12 * 3 = 36\n**Step 2:** 36 + 4 = 40\n\n**Final Answer:** 40", "40"),
    ("answer with a colon", "The answer is: 7.", "7"),
    ("exclamation", "The answer is 42!", "42"),
    ("bold negative", "Answer: **-3**", "-3"),
    ("a note after the answer", "The answer is 7.\n\nNote: this assumes 2024 prices.", "7"),
    # years
    ("a year before the answer", "In 2024 she has 5 apples.", "5"),
    ("a year after the answer", "He is 34 years old in 2024.", "34"),
    ("a year after the marker", "The answer is: in 2030 there will be 500 trees.", "500"),
    ("a year that is the answer", "It happened in 1969.", "1969"),
    # boxed
    ("the box wins over a later equation", "\\boxed{5}\n\nNote: 2 + 2 = 4.", "5"),
    ("a box with no number", r"\boxed{x^2}", None),
    ("a LaTeX fraction in a box", r"The final answer is $\boxed{\frac{3}{4}}$.", "0.75"),
    ("an equation in a box", r"\boxed{x = 5}", "5"),
    # number words
    ("spelled answer", "The answer is four.", "4"),
    ("spelled sum", "Seven plus five is twelve.", "12"),
    ("'one' as a pronoun", "She has 5 apples, one of which is red.", "5"),
    ("hyphenated spelled number", "The answer is twenty-one.", "21"),
    ("a dozen", "She bought a dozen eggs.", "12"),
    ("hundreds", "There are a hundred and five pages.", "105"),
    ("no one", "No one knows.", None),
    ("digits win over words", "The answer is 7 (seven).", "7"),
    # asides in parentheses
    ("the sum after the answer", "She makes $18 (9 × 2).", "18"),
    ("a count in an aside", "There are 3 bags (each holds 4), so 12 apples.", "12"),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in READINGS], ids=[case[0] for case in READINGS])
def test_number_as_a_grader_reads_it(text, expected):
    assert value("number", text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("The total is $1,000.50.", "$1,000.50"),
        ("It fell to −5 °C overnight.", "−5"),
        (r"The answer is $-\frac{1}{2}$.", r"-\frac{1}{2}"),
        ("That is 2.5 × 10^3 joules.", "2.5 × 10^3"),
        (r"$2.5 \times 10^{3}$", r"2.5 \times 10^{3}"),
        ("The answer is four.", "four"),
        ("About 2.5 million people.", "2.5 million"),
        ("Profit rose by 10%.", "10"),
        ("Add 2 1/2 cups.", "2 1/2"),
        ("The answer is negative 4.", "negative 4"),
    ],
)
def test_number_spans_are_the_number_as_written(text, words):
    answer = extract_number(text)
    assert answer is not None and answer.words(text) == words == text[answer.start:answer.end]


def test_span_of_the_first_number_after_the_marker():
    text = "Between 5-7 people came; 2 + 3 = 5, so the answer is 5 (not 7)."
    answer = extract_number(text)
    assert answer.value == "5" and answer.start == text.rindex("5 (") and answer.end == answer.start + 1


@pytest.mark.parametrize(
    ("gold", "key"),
    [("1,200", "1200"), ("$18", "18"), ("−3", "-3"), ("1/2", "0.5"), ("0.50", "0.5"), ("10%", "10"),
     ("18.", "18"), (r"$\frac{1}{2}$", "0.5"), ("1e3", "1000"), ("3.0", "3"), ("four", "4"),
     ("5-7", None), ("2024-01-15", None), ("18 apples", None), ("x^2", None), ("", None)],
)
def test_read_number_takes_a_text_that_is_one_number(gold, key):
    assert read_number(gold) == key


def test_canonical_number_keeps_its_keys():
    assert [canonical_number("", b) for b in ("1000", "1,000", "3/4", "1e3", "0.50", "1 000", "x")] == \
        ["1000", "1000", "0.75", "1000", "0.5", "1000", None]
    assert canonical_number("-", "3") == canonical_number("−", "3") == "-3" and canonical_number("-", "0") == "0"
    assert canonical_number("", "1/3") == "0.3333333333"


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
