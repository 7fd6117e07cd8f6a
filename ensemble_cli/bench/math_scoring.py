"""The ``math`` scoring: a gold answer and an output compared by HuggingFace's math-verify, so that
``1/2``, ``0.5`` and ``\\frac{1}{2}`` agree, and so do ``x^2+1`` and ``1+x^2``, ``(1,2)`` and ``(1, 2)``.

math-verify (with sympy) is the ``math`` extra; it is imported on first use, never when the CLI starts.
It bounds each parse and comparison with ``signal.alarm``, which works in the main thread only; elsewhere
the calls run without that bound.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

from ..errors import ConfigError

INSTALL = "pip install 'ensemble-cli[math]'"
TIMEOUT_S = 5


def check_available() -> None:
    """A config error naming the install command where math-verify is missing."""
    if importlib.util.find_spec("math_verify") is None:
        raise ConfigError(f"score: math compares answers with math-verify, which is not installed; {INSTALL}")


def _timeout() -> int | None:
    return TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def _parse(text: str) -> list[Any]:
    check_available()
    from math_verify import parse

    return parse(text, parsing_timeout=_timeout())


def _as_math(text: str) -> str:
    """A bare answer ('x^2+1', '\\sqrt{2}') as inline math, which is how math-verify finds it."""
    return text if "$" in text or "\\boxed" in text else f"${text}$"


def parse_gold(answer: str) -> list[Any]:
    return _parse(_as_math(answer.strip()))


def parse_output(output: str, bare: bool) -> list[Any]:
    """The answer math-verify finds in an output: a whole reply, or (``bare``) an answer an extractor took
    out of one, such as a \\boxed{} content."""
    return _parse(_as_math(output.strip()) if bare else output)


def shown(parsed: list[Any]) -> str | None:
    """The extracted answer as the text wrote it (math-verify returns the parsed value, then that text)."""
    return str(parsed[-1]) if parsed else None


def equivalent(gold: list[Any], predicted: list[Any]) -> bool:
    from math_verify import verify

    return bool(gold) and bool(predicted) and bool(verify(gold, predicted, timeout_seconds=_timeout()))
