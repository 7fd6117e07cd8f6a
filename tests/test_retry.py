"""The retry loop: Retry-After parsing, backoff with jitter, giving up."""

from __future__ import annotations

import asyncio
import random

import pytest

from ensemble_cli.providers import retry


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers, expected):
    now = 1445412480.0  # 07:28:00 on that date
    assert retry.retry_after_seconds(headers, now=now) == expected


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(1)
    waits = [retry.backoff_seconds(attempt, rng) for attempt in range(8)]
    for attempt, wait in enumerate(waits):
        base = min(retry.INITIAL_BACKOFF_S * 2**attempt, retry.MAX_BACKOFF_S)
        assert base * (1 - retry.JITTER) <= wait <= base
    assert waits[-1] <= retry.MAX_BACKOFF_S


class Flaky(Exception):
    def __init__(self, retryable: bool, delay: float | None = None):
        self.retryable, self.delay = retryable, delay


@pytest.mark.parametrize(
    ("failures", "max_retries", "succeeds", "sleeps"),
    [
        ([], 3, True, []),
        ([Flaky(True, 2.0)], 3, True, [2.0]),
        ([Flaky(True, 120.0)], 3, True, ["backoff"]),  # above the cap: ignored, backoff used
        ([Flaky(True)] * 3, 3, True, ["backoff"] * 3),
        ([Flaky(True)] * 4, 3, False, ["backoff"] * 3),
        ([Flaky(False)], 3, False, []),
    ],
)
def test_call_with_retries(failures, max_retries, succeeds, sleeps):
    pending = list(failures)
    slept: list[float] = []

    async def call():
        if pending:
            raise pending.pop(0)
        return "ok"

    def classify(exc):
        return retry.RetryVerdict(exc.retryable, exc.delay)

    async def fake_sleep(seconds):
        slept.append(seconds)

    class GaveUp(Exception):
        pass

    async def go():
        return await retry.call_with_retries(call, classify, max_retries=max_retries,
                                             give_up=lambda exc, n: GaveUp(n), sleep=fake_sleep,
                                             rng=random.Random(0))

    if succeeds:
        result, retries = asyncio.run(go())
        assert result == "ok" and retries == len(failures)
    else:
        with pytest.raises(GaveUp):
            asyncio.run(go())
    assert len(slept) == len(sleeps)
    for actual, expected in zip(slept, sleeps):
        if expected == "backoff":
            assert 0 < actual <= retry.MAX_BACKOFF_S
        else:
            assert actual == expected
