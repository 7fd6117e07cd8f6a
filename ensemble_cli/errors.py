"""Typed errors and the exit-code enum; the CLI turns these into exit codes in one place.

A message names the setting to change with ``setting("vote.extract")``, a run-config key path; each
front end shows it in its own words (the CLI as ``--extract``, the server as ``ensemble.extract``, the
``llm`` plugin as ``-o extract``), and ``str(error)``, which records and library callers see, as the
config key itself. ``render`` does that for any text that may hold such keys (errors, run notes).
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any, Callable

SETTING = re.compile(r"\u27e6([^\u27e6\u27e7]+)\u27e7")
"""A setting named in a message: ⟦key.path⟧ (never shown as such: ``render`` replaces it)."""

Namer = Callable[[str], str]
"""How a front end names a run-config key path (``vote.extract`` -> ``--extract``)."""


def setting(path: str) -> str:
    """The run-config key ``path`` named in a message, for each front end to show in its own words."""
    return f"\u27e6{path}\u27e7"


def config_key(path: str) -> str:
    """The neutral name of a setting: its run-config key path, as a YAML file and a record say it."""
    return path


def render(text: str, namer: Namer = config_key) -> str:
    """``text`` with every setting it names shown by ``namer`` (default: the config key path)."""
    return SETTING.sub(lambda match: namer(match.group(1)), text)


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 3
    PROVIDER = 4
    PARTIAL = 5
    INTERRUPTED = 130


class EnsembleError(Exception):
    """Base of every error this package raises on purpose; the message names the fix.

    ``template`` is the message with its settings still named as keys (``setting``), for a front end
    to ``render``; ``str()`` shows them as config keys. ``details`` is what the failed prompt had
    gathered when the error came (rounds, layers, steps, paths, turns), for its record.
    """

    exit_status = ExitStatus.ERROR

    def __init__(self, message: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(render(message))
        self.template = message
        self.details: dict[str, Any] = details or {}

    def text(self, namer: Namer = config_key) -> str:
        """The message with its settings named by ``namer``."""
        return render(self.template, namer)


class ConfigError(EnsembleError):
    """A malformed config file, an unknown key, a wrong type or a bad flag value."""

    exit_status = ExitStatus.USAGE


class InputError(EnsembleError):
    """An input file or prompt that cannot be read."""

    exit_status = ExitStatus.USAGE


class CapabilityError(EnsembleError):
    """A member's provider lacks what the strategy needs (logprobs, prefix continuation, ...)."""

    exit_status = ExitStatus.USAGE


class ProviderError(EnsembleError):
    """A provider call failed for good (after retries where retrying made sense).

    ``retries`` counts the retries spent on the call before it failed, so that the prompt's record
    still counts them.
    """

    exit_status = ExitStatus.PROVIDER

    def __init__(self, message: str, retries: int = 0, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.retries = retries


class AuthError(ProviderError):
    """A missing or rejected API key."""

    exit_status = ExitStatus.AUTH


class ProviderResponseError(ProviderError):
    """A provider answered with something that is not a usable completion."""


class RetriesExhaustedError(ProviderError):
    """Retryable failures went on past the retry budget."""


class ContextLengthError(ProviderError):
    """The prompt (with room for the reply) does not fit the model's context: the caller's mistake, which
    no retry fixes (exit 2; HTTP 400 ``context_length_exceeded`` from the server)."""

    exit_status = ExitStatus.USAGE


class StrategyError(EnsembleError):
    """A strategy could not produce a result (no quorum, unparseable replies, ...).

    ``details`` carries what was gathered before the failure (raw replies), for the record.
    """


class NoAnswerError(StrategyError):
    """The strategy ran, but no reply held an answer its extractor could find (vote, cot-decode)."""


class BudgetExceeded(EnsembleError):
    """The next call would take the run's spending past ``--budget``: the run stops before making it.

    Not a ``ProviderError``: no strategy may catch it as one member's failure. The session records the
    prompt it stopped, runs no further prompt, and the run exits 5 (partial) with what was recorded.
    """

    exit_status = ExitStatus.PARTIAL

    def __init__(self, budget: float, spent: float, estimate: float) -> None:
        from .formatting import usd

        super().__init__(f"budget of {usd(budget)} reached: {usd(spent)} spent or held by calls in flight, and "
                         f"the next call could cost up to {usd(estimate)}")
        self.budget = budget
        self.spent = spent
        self.estimate = estimate


def within(error: EnsembleError, where: str) -> EnsembleError:
    """``error`` with the part of the run it came from (``tier 2 (vote)``) before its message."""
    error.template = f"{where}: {error.template}"
    error.args = (render(error.template),)
    return error


def attach(error: EnsembleError, details: dict[str, Any]) -> EnsembleError:
    """``error`` carrying ``details`` (what its prompt gathered): keys it already carries are kept (a
    nearer ``attach`` knew more), the others are added."""
    error.details = {**details, **error.details}
    return error
