"""The llama.cpp wrapper: numerics helpers, forked sequences, batched logits, context limits."""

from __future__ import annotations

import os
import numpy as np
import pytest

from ensemble_cli.errors import ContextLengthError
from ensemble_cli.calls import user_prompt
from ensemble_cli.numeric import log_softmax, top2_probabilities, top_k
from ensemble_cli.providers.llama_engine import SequenceBatch

pytestmark = pytest.mark.embedded  # every test here loads the embedded model


def test_log_softmax_and_top_k_ties():
    logits = np.array([1.0, 3.0, 3.0, -2.0], dtype=np.float32)
    logprobs = log_softmax(logits)
    assert np.exp(logprobs).sum() == pytest.approx(1.0)
    best = top_k(logprobs, 3)
    assert best.ids.tolist() == [1, 2, 0]  # the tie goes to the lower id, as argmax does
    token, p1, p2 = top2_probabilities(logits.copy())
    assert token == 1 and p1 == pytest.approx(np.exp(logprobs[1])) and p2 == pytest.approx(np.exp(logprobs[2]))


def test_forked_sequences_match_independent_ones(local_provider):
    engine = local_provider.engine
    prompt = engine.prompt_tokens(user_prompt("Count to three."))

    def run():
        forked = SequenceBatch(engine, 2, 512)
        first = forked.feed({0: prompt})[0]
        forked.copy_sequence(0, 1)
        nxt = int(np.argmax(first))
        both = forked.feed({0: [nxt], 1: [nxt]})
        alone = SequenceBatch(engine, 1, 512)
        single = alone.feed({0: prompt + [nxt]})[0]
        forked.close()
        alone.close()
        return both, single

    both, single = engine.run_sync(run)
    assert np.allclose(both[0], both[1], atol=1e-3)
    assert int(np.argmax(both[0])) == int(np.argmax(single))
    assert np.allclose(both[0], single, atol=0.05)


def test_full_context_is_a_clear_error(local_provider):
    engine = local_provider.engine

    def overflow():
        batch = SequenceBatch(engine, 1, 256)
        try:
            batch.feed({0: [1] * 300})
        finally:
            batch.close()

    with pytest.raises(ContextLengthError, match="do not fit the local model's context"):
        engine.run_sync(overflow)


def test_chat_template_and_end_tokens(local_provider):
    engine = local_provider.engine
    rendered = engine.render(user_prompt("Hi", system="Be brief."), prefix="Hello")
    assert rendered.endswith("<|im_start|>assistant\nHello")
    assert "<|im_start|>system\nBe brief.<|im_end|>" in rendered
    end = engine.tokenize("<|im_end|>", add_bos=False)
    assert len(end) == 1 and engine.is_end(end[0]) and not engine.is_end(engine.tokenize("Hi", add_bos=False)[0])


@pytest.mark.embedded
def test_llama_cpp_log_lines_reach_stderr_only_with_verbose():
    """llama.cpp logs every context it makes (and, for models with sliding-window attention, a
    `llama_kv_cache_iswa: ...` line): none of it reaches stderr unless `--verbose` asks."""
    import subprocess
    import sys

    run = [sys.executable, "-m", "ensemble_cli", "committee", "-p", "hi", "--max-tokens", "2", "-q", "-o", os.devnull]
    quiet = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = subprocess.run([run[0], *run[1:3], "--verbose", *run[3:]], capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0 and "llama.cpp: INFO: llama_context: constructing llama_context" in loud.stderr
