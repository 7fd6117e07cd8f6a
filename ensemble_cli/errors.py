"""Typed errors and the exit-code enum; the CLI turns these into exit codes in one place."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 3
    PROVIDER = 4
    PARTIAL = 5
    INTERRUPTED = 130


class EnsembleError(Exception):
    """Base of every error this package raises on purpose; the message names the fix."""

    exit_status = ExitStatus.ERROR


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

    def __init__(self, message: str, retries: int = 0) -> None:
        super().__init__(message)
        self.retries = retries


class AuthError(ProviderError):
    """A missing or rejected API key."""

    exit_status = ExitStatus.AUTH


class ProviderResponseError(ProviderError):
    """A provider answered with something that is not a usable completion."""


class RetriesExhaustedError(ProviderError):
    """Retryable failures went on past the retry budget."""


class StrategyError(EnsembleError):
    """A strategy could not produce a result (no quorum, unparseable replies, ...).

    ``details`` carries what was gathered before the failure (raw replies), for the record.
    """

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class BudgetExceeded(EnsembleError):
    """The next call would take the run's spending past ``--budget``: the run stops before making it.

    Not a ``ProviderError``: no strategy may catch it as one member's failure. The session records the
    prompt it stopped, runs no further prompt, and the run exits 5 (partial) with what was recorded.
    """

    exit_status = ExitStatus.PARTIAL

    def __init__(self, budget: float, spent: float, estimate: float) -> None:
        super().__init__(f"budget of ${budget:.4f} reached: ${spent:.4f} spent or held by calls in flight, and the "
                         f"next call could cost up to ${estimate:.4f}")
        self.budget = budget
        self.spent = spent
        self.estimate = estimate
