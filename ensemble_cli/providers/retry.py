"""The one retry loop: exponential backoff with jitter, honouring Retry-After, with a cap."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, TypeVar

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
DEFAULT_MAX_RETRIES = 4
INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 60.0
JITTER = 0.25

T = TypeVar("T")


@dataclass(frozen=True)
class RetryVerdict:
    """How a failure should be treated: retried (after ``delay_s`` if the server said) or not."""

    retry: bool
    delay_s: float | None = None
    reason: str = ""


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """The server's requested wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - (now if now is not None else time.time()))


def backoff_seconds(attempt: int, rng: random.Random) -> float:
    """Exponential backoff for retry number ``attempt`` (0-based), minus up to 25% jitter."""
    base = min(INITIAL_BACKOFF_S * (2**attempt), MAX_BACKOFF_S)
    return base * (1.0 - JITTER * rng.random())


def wait_for(verdict: RetryVerdict, attempt: int, rng: random.Random) -> float:
    if verdict.delay_s is not None and verdict.delay_s <= MAX_RETRY_AFTER_S:
        return verdict.delay_s
    return backoff_seconds(attempt, rng)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    classify: Callable[[BaseException], RetryVerdict],
    *,
    max_retries: int,
    give_up: Callable[[BaseException, int], BaseException],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """Run ``call`` until it succeeds; returns its result and the number of retries it took.

    ``classify`` says whether an exception is worth retrying; ``give_up`` builds the error raised
    when it is not, or when ``max_retries`` retries are spent.
    """
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await call(), attempt
        except Exception as exc:  # classified below; anything not retryable is re-raised typed
            verdict = classify(exc)
            if not verdict.retry or attempt >= max_retries:
                raise give_up(exc, attempt) from exc
            await sleep(wait_for(verdict, attempt, rng))
            attempt += 1
