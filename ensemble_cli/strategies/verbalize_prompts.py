"""Our instruction texts for Verbalized Sampling: ask for k responses with probabilities, repair, more."""

from __future__ import annotations

from ..formatting import count

FORMAT = "<response><text>the response</text><probability>0.25</probability></response>"
PREFILL = "<response><text>"

STANDARD = (
    "Write {responses} to the request below, and say for each how likely you would be to give "
    "it: a probability between 0 and 1 over everything you might say.{tail} Put each in its own block, "
    "exactly like this:\n" + FORMAT + "\nWrite only the {blocks}.\n\nRequest:\n{request}"
)
TAIL = " Take the responses from the tails of that distribution: each one's probability must be below {tail}."
COT = (
    "Think first, briefly, about the range of different responses the request allows, inside "
    "<thinking></thinking>. Then write {responses} with the probability that you would give "
    "each (between 0 and 1 over everything you might say).{tail} Put each in its own block, exactly like "
    "this:\n" + FORMAT + "\n\nRequest:\n{request}"
)
MORE = (
    "Write {more} to the same request, each different from all of the responses so far, in "
    "the same format with their probabilities. Write only the new blocks."
)
MISSING = (
    "That gives {have}; {k} were asked for. Write {missing} more, each different from "
    "all of the responses so far, in the same format with their probabilities. Write only the new blocks."
)
REPAIR = (
    "Your reply above could not be read. Rewrite the same responses in exactly this format, one block per "
    "response, and nothing else:\n" + FORMAT
)


def first_request(variant: str, request: str, k: int, tail: float | None, instruction: str | None) -> str:
    tail_text = TAIL.format(tail=tail) if tail is not None else ""
    template = instruction or (COT if variant == "cot" else STANDARD)
    return template.format(k=k, responses=count(k, "different response"), blocks=count(k, "block"),
                           request=request, tail=tail_text)


def more_request(k: int) -> str:
    return MORE.format(more=count(k, "more response"))


def missing_request(have: int, wanted: int) -> str:
    return MISSING.format(have=count(have, "different response"), k=wanted, missing=wanted - have)
