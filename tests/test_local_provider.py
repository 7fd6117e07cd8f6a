"""The embedded SmolLM2 model through the local backend (real model, no fakes)."""

from __future__ import annotations

import asyncio
import math

import pytest

from ensemble_cli.errors import ConfigError
from ensemble_cli.calls import Request, user_prompt
from ensemble_cli.providers.local import LocalProvider, engine_for

pytestmark = pytest.mark.embedded  # every test here loads the embedded model

PROMPT = user_prompt("Write one short sentence about rivers.")


def run(provider, **request):
    request.setdefault("messages", PROMPT)
    return asyncio.run(provider.complete(Request(**request)))


def test_chat_completion_with_top_logprobs(local_provider):
    (c,) = run(local_provider, max_tokens=12, top_logprobs=5)
    assert c.text and c.usage.completion_tokens == len(c.tokens) <= 12
    assert c.usage.prompt_tokens > 5 and c.provider == "local" and c.latency_s > 0
    for token in c.tokens:
        assert type(token.logprob) is float and token.logprob <= 0
        assert len(token.top) == 5
        probs = [math.exp(t.logprob) for t in token.top]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
        assert token.top[0].text == token.text  # greedy picks the top-1
    assert "".join(t.text for t in c.tokens) == c.text


def test_exact_prefix_continuation(local_provider):
    (full,) = run(local_provider, max_tokens=20)
    cut = len(full.tokens) // 2
    prefix = "".join(t.text for t in full.tokens[:cut])
    (rest,) = run(local_provider, max_tokens=20 - cut, prefix=prefix)
    assert prefix + rest.text == full.text
    assert not rest.text.startswith(prefix)


def test_seeded_sampling_is_reproducible(local_provider):
    a = run(local_provider, max_tokens=15, temperature=1.0, seed=7, n=3)
    b = run(local_provider, max_tokens=15, temperature=1.0, seed=7, n=3)
    assert [c.text for c in a] == [c.text for c in b]
    assert len({c.text for c in a}) > 1


def test_stop_string_cuts_the_reply(local_provider):
    (full,) = run(local_provider, max_tokens=20)
    word = full.text.split()[2]
    (cut,) = run(local_provider, max_tokens=20, stop=(word,))
    assert cut.finish_reason == "stop" and word not in cut.text
    assert full.text.startswith(cut.text)


def test_stream_yields_the_same_text(local_provider):
    (full,) = run(local_provider, max_tokens=15)

    async def collect():
        return [piece async for piece in local_provider.stream(Request(PROMPT, max_tokens=15))]

    *pieces, final = asyncio.run(collect())
    assert "".join(pieces) == full.text == final.text  # the stream ends with its whole Completion
    assert final.usage == full.usage and final.finish_reason == full.finish_reason


def test_one_engine_per_model_file(local_provider):
    assert LocalProvider(None).engine is local_provider.engine is engine_for("smollm2")


def test_missing_gguf_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such GGUF file"):
        LocalProvider(str(tmp_path / "missing.gguf"))


def test_a_cancelled_decode_stops_at_its_next_token(local_provider):
    """Nobody reads the reply of a caller that went away: the in-process decode stops instead of running on
    to max_tokens (the engine's thread is free again at once)."""
    import asyncio
    import time

    async def main() -> float:
        request = Request(user_prompt("Write a very long story about the sea."), max_tokens=2000, temperature=0.9,
                          seed=1)
        task = asyncio.ensure_future(local_provider.complete(request))
        await asyncio.sleep(0.5)
        task.cancel()
        started = time.perf_counter()
        await local_provider.engine.run(lambda: None)  # waits for the decode thread to be free
        return time.perf_counter() - started

    assert asyncio.run(main()) < 1.0
