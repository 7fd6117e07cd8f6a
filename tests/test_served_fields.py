"""What `ensemble serve` and the llm plugin fill from a strategy's result, for every strategy: the finish
reason (``length`` where the answer was cut), usage, and the committee's logprobs (one number, one source)."""

from __future__ import annotations

import math

import openai
import pytest
from fake_server import ReplyModel, ScriptedModel
from serve_helpers import serve

LONG = "The answer is 4 because two and two make four , as everyone learns at school ."
VERBALIZED = ("<response><text>Joke one about the cat.</text><probability>0.6</probability></response>\n"
              "<response><text>Joke two about the dog.</text><probability>0.4</probability></response>")


class AnyStrategy:
    """Tagged candidates when asked to verbalize (continuing the prefix), else LONG piece by piece."""

    scripted = ScriptedModel(LONG)

    def generate(self, ctx, max_tokens):
        if "<probability>" in ctx.user or "<response>" in ctx.user:
            rest = VERBALIZED[len(ctx.prefix):] if VERBALIZED.startswith(ctx.prefix) else VERBALIZED
            return ReplyModel(lambda _: rest, confidence=0.9).generate(ctx, max_tokens)
        return self.scripted.generate(ctx, max_tokens)


STRATEGIES = {
    "committee": {"members": [{"name": "a"}, {"name": "b", "system": "Be brief."}]},
    "vote": {"n": 2, "temperature": 0.5, "vote": {"extract": "text"}},
    "moa": {"n": 2, "moa": {"layers": 1}},
    "cot-decode": {"cot-decode": {"k": 2, "extract": "number", "answer_prompt": None}},
    "verbalize": {"verbalize": {"k": 2}},
    "cascade": {"temperature": 0.5, "cascade": {"tiers": [{"strategy": "vote", "n": 2}, {"strategy": "cot-decode",
                                                          "cot-decode": {"k": 2, "answer_prompt": None}}]}},
}


@pytest.fixture
def served(fake_server, tmp_path):
    upstream = fake_server({"any": AnyStrategy()})
    base = {"provider": "vllm", "model": "any", "base_url": upstream.base_url, "max_retries": 0, "seed": 1}
    configs = {name: {**base, "strategy": name, **extra} for name, extra in STRATEGIES.items()}
    with serve(tmp_path / "ensembles", configs) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def ask(client, model: str, max_tokens: int, stream: bool = False):
    messages = [{"role": "user", "content": "Tell me what 2 + 2 is."}]
    if not stream:
        return client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens)
    return list(client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, stream=True))


CUT = {"committee": 5, "vote": 5, "moa": 5, "cot-decode": 5, "verbalize": 7, "cascade": 5}
WHOLE = {"committee": 64, "vote": 64, "moa": 64, "cot-decode": 64, "verbalize": 256, "cascade": 64}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_cut_answer_finishes_with_length_and_a_whole_one_with_stop(served, strategy):
    cut = ask(served, strategy, CUT[strategy])
    assert cut.choices[0].finish_reason == "length", cut.model_extra
    whole = ask(served, strategy, WHOLE[strategy])
    assert whole.choices[0].finish_reason == "stop", whole.model_extra
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens > 0


@pytest.mark.parametrize("strategy", ["committee", "moa", "vote", "cascade"])
def test_a_streamed_cut_answer_finishes_with_length_too(served, strategy):
    chunks = ask(served, strategy, CUT[strategy], stream=True)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]


def test_the_chosen_token_logprob_is_its_own_entry_in_top_logprobs(served):
    reply = served.chat.completions.create(model="committee", max_tokens=6, logprobs=True, top_logprobs=3,
                                           messages=[{"role": "user", "content": "Tell me what 2 + 2 is."}])
    content = reply.choices[0].logprobs.content
    assert content
    for token in content:
        own = [t.logprob for t in token.top_logprobs if t.token == token.token]
        assert own == [token.logprob]  # the very same number, not a recomputed one
        assert all(math.isfinite(t.logprob) for t in token.top_logprobs)
    streamed = served.chat.completions.create(model="committee", max_tokens=6, logprobs=True, stream=True,
                                              messages=[{"role": "user", "content": "Tell me what 2 + 2 is."}])
    streamed_lps = [c.choices[0].logprobs.content[0].logprob for c in streamed
                    if c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content]
    assert streamed_lps == [t.logprob for t in content]


@pytest.mark.parametrize("stop", [" two", " two and", "because two"])
def test_a_streamed_committee_never_sends_its_stop_string(served, stop):
    messages = [{"role": "user", "content": "Tell me what 2 + 2 is."}]
    whole = served.chat.completions.create(model="committee", messages=messages, max_tokens=64, stop=[stop])
    chunks = list(served.chat.completions.create(model="committee", messages=messages, max_tokens=64,
                                                 stop=[stop], stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content == LONG[:LONG.index(stop)]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_an_adaptive_vote_through_the_server_stops_once_the_answer_is_settled(served):
    messages = [{"role": "user", "content": "Tell me what 2 + 2 is."}]
    fixed = served.chat.completions.create(model="vote", messages=messages, max_tokens=64,
                                           extra_body={"ensemble": {"samples": 8}})
    adaptive = served.chat.completions.create(model="vote", messages=messages, max_tokens=64,
                                              extra_body={"ensemble": {"samples": 8, "adaptive": True}})
    assert adaptive.choices[0].message.content == fixed.choices[0].message.content
    # unanimous replies: Beta(k+1, 1) passes 0.95 at the fourth sample of the 16 the cap allows
    assert adaptive.model_extra["ensemble"]["confidence"] == pytest.approx(1 - 0.5 ** 5)
    assert adaptive.usage.completion_tokens * 4 == fixed.usage.completion_tokens
