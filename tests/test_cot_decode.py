"""`cot-decode`: the confidence formula, answer spans, selection, follow-up, k auto, refusal on the scripted
in-process provider (its decoder), and embedded runs; its CLI over HTTP is in test_exit_codes.py."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from fake_server import Context
from scripted import ScriptedProvider, max_in_flight, pieces, steps
from typer.testing import CliRunner

from conftest import REPO, run_strategy
from ensemble_cli.calls import END as END_KEY
from ensemble_cli.calls import Completion
from ensemble_cli.cli import app
from ensemble_cli.config import MemberConfig
from ensemble_cli.strategies.cot_decode import CotDecodeSettings
from ensemble_cli.errors import CapabilityError
from ensemble_cli.inputs import from_prompt
from ensemble_cli.calls import Request
from ensemble_cli.providers.base import Capabilities
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.cot_decode import CotDecode, path_confidence
from ensemble_cli.strategies.cot_paths import Step, first_tokens

ITEM = from_prompt("How many legs do two cats have?")


class BranchModel:
    """First token from ``firsts``; after it, the branch's script, each token with probability ``p``.

    ``follow_ups`` maps a prefix ending in the answer prompt to its follow-up text. It answers the
    scripted provider (called with a request) and the fake server (``generate``) alike.
    """

    def __init__(self, firsts, branches, follow_ups=None):
        self.firsts = firsts
        self.branches = branches
        self.follow_ups = follow_ups or {}

    def steps(self, prefix: str, max_tokens: int):
        """(token, probability, top alternatives) after ``prefix``, and the finish reason."""
        if not prefix:
            first, p = self.firsts[0]
            return [(first, p, self.firsts)], "length"
        for prompt, reply in self.follow_ups.items():
            if prefix.endswith(prompt):
                return [(w, 0.7, [(w, 0.7), (" x", 0.2)]) for w in pieces(reply)], "stop"
        script, p = self.branches[pieces(prefix)[0]]
        done = len(pieces(prefix)) - 1
        return [(w, p, [(w, p), (" um", (1 - p) / 2)]) for w in pieces(script)[done:][:max_tokens]], "stop"

    def __call__(self, request) -> Completion:
        return steps(*self.steps(request.prefix, request.max_tokens))

    def generate(self, ctx: Context, max_tokens: int):
        found, finish = self.steps(ctx.prefix, max_tokens)
        return [(t, math.log(p), [(a, math.log(q)) for a, q in top]) for t, p, top in found], finish


def member_on(model, **options):
    provider = ScriptedProvider(default=model, model="m", **options)
    return provider, Member("m", provider)


def member_on_server(fake_server, registry_for, model):
    server = fake_server({"m": model})
    registry = registry_for(max_retries=0)
    return server, Member("m", registry.provider_for(MemberConfig(name="m", provider="vllm", model="m", base_url=server.base_url)))


def decode(member, **settings):
    return run_strategy(CotDecode([member], CotDecodeSettings(**settings), 32), ITEM)


def test_confidence_is_mean_top1_minus_top2_over_the_answer_span():
    steps = [Step("The", 0.9, 0.05, 0.9), Step(" answer", 0.8, 0.1, 0.8), Step(" is", 0.6, 0.3, 0.6),
             Step(" 4", 0.7, 0.2, 0.7), Step("2", 0.5, 0.4, 0.5), Step(".", 0.99, 0.0, 0.99)]
    text = "".join(s.text for s in steps)
    start = text.index("42")
    confidence, margins = path_confidence(steps, start, start + 2)
    assert margins == pytest.approx([0.5, 0.1]) and confidence == pytest.approx(0.3)
    branching = Step("So", 0.6, 0.3, 0.3)  # a non-greedy first token: p(it) - p(best other)
    assert branching.margin == pytest.approx(-0.3)


def test_k_auto_branches_less_when_one_token_dominates():
    dominant = [("A", 0.95), ("B", 0.03), ("C", 0.02)]
    flat = [(t, 0.1) for t in "ABCDEFGHIJ"]
    assert [t for t, _ in first_tokens(dominant, "auto", 10, 0.9)] == ["A", "B"]
    assert len(first_tokens(flat, "auto", 6, 0.9)) == 6
    assert [t for t, _ in first_tokens([(END_KEY, 0.5), ("A", 0.3), ("B", 0.2)], 5, 5, 0.9)] == ["A", "B"]


BRANCHES = {
    "Two": (" cats have 8 legs.", 0.6),
    "Each": (" cat has 4 legs, so 8 legs.", 0.95),
    "Cats": (" have 4 legs.", 0.9),
    "Hmm": (" let me think about it.", 0.8),
}
FIRSTS = [("Two", 0.4), ("Each", 0.3), ("Cats", 0.2), ("Hmm", 0.1)]


def test_picks_the_most_confident_path_and_aggregates():
    provider, member = member_on(BranchModel(FIRSTS, BRANCHES, {" So the answer is": " 8."}))
    result = decode(member, k=4)
    paths = {p["first_token"]: p for p in result.details["paths"]}
    assert paths["Each"]["confidence"] == pytest.approx(0.95 - 0.025)
    assert paths["Cats"]["answer"] == "4" and paths["Two"]["answer"] == "8"
    assert result.output == "8" and result.details["winner"] == 2 and result.details["selection"] == "max"
    assert paths["Each"]["margins"] == [pytest.approx(0.925)]
    # the path with no number got the follow-up and its answer from it
    assert paths["Hmm"]["follow_up"] == " 8." and paths["Hmm"]["answer"] == "8"
    assert paths["Hmm"]["confidence"] == pytest.approx(0.5)
    assert provider.requests[0].prefix == "" and provider.requests[0].top_logprobs >= 4
    assert {"Two", "Each", "Cats", "Hmm"} <= {r.prefix for r in provider.requests[1:]}


def test_aggregate_sums_confidences_by_answer():
    branches = {"A": (" it is 5.", 0.9), "B": (" maybe 7.", 0.7), "C": (" I say 7.", 0.7)}
    _, member = member_on(BranchModel([("A", 0.5), ("B", 0.3), ("C", 0.2)], branches))
    assert decode(member, k=3).output == "5"
    aggregated = decode(member, k=3, aggregate=True)
    # 5: 0.9 - 0.05 = 0.85 once; 7: (0.7 - 0.15) twice = 1.1
    assert aggregated.output == "7" and aggregated.details["answer_totals"]["7"] == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("extract", "script", "answer", "span"),
    [
        ("choice", " the answer is (C) clearly", "C", ["C"]),
        ("boxed", r" so \boxed{12} done", "12", [r" so \boxed{12}"]),
        ("line", " first\nfinal line here", "final line here", ["final", " line", " here"]),
        ("regex:ans=(\\w+)", " ans=blue ok", "blue", [" ans=blue"]),
        ("number", " it takes 5-7 days, so 2.5 × 10^3 in all", "2500", [" 2.5", " ×", " 10^3"]),
        ("number", " costs $1,000.50 now", "1000.5", [" $1,000.50"]),
    ],
)
def test_answer_span_for_each_extractor(extract, script, answer, span):
    model = BranchModel([("X", 0.9), ("Y", 0.1)], {"X": (script, 0.9), "Y": (" nothing", 0.9)})
    _, member = member_on(model)
    result = decode(member, k=2, extract=extract, answer_prompt=None)
    path = next(p for p in result.details["paths"] if p["first_token"] == "X")
    assert path["answer"] == answer.lower() if extract == "line" else path["answer"] == answer
    assert len(path["margins"]) == len(span)


def test_a_path_that_ends_on_a_range_gets_the_follow_up():
    """'5-7' is no answer (not -7): the path is unanswered and the follow-up gives its number."""
    branches = {"A": (" it is 8.", 0.9), "B": (" between 5-7 I guess", 0.8)}
    model = BranchModel([("A", 0.6), ("B", 0.4)], branches, {" So the answer is": " 6."})
    _, member = member_on(model)
    paths = {p["first_token"]: p for p in decode(member, k=2).details["paths"]}
    assert paths["A"]["answer"] == "8" and paths["A"]["follow_up"] is None
    assert paths["B"]["follow_up"] == " 6." and paths["B"]["answer"] == "6" and paths["B"]["answer_words"] == "6"


def test_incapable_provider_is_refused_before_any_call():
    # that plain OpenAI cannot continue a prefix is test_openai_provider.py's test_plain_openai_refuses_a_prefix
    no_prefix = Capabilities(max_top_logprobs=5, prefix_continuation=False, honours_n=True)
    provider = ScriptedProvider(default=BranchModel(FIRSTS, BRANCHES), model="m", capabilities=no_prefix)
    member = Member("gpt", provider)
    with pytest.raises(CapabilityError, match="member 'gpt' .* cannot continue an assistant prefix"):
        CotDecode([member])

    class OneAlternative:
        name, model = "stub", "stub"
        capabilities = Capabilities(max_top_logprobs=1, prefix_continuation=True, honours_n=False)

        def key(self):
            return "stub"

        async def complete(self, request: Request):
            raise AssertionError("no call may be made")

    with pytest.raises(CapabilityError, match="member 'one' .* at most 1 top log-probabilities; cot-decode needs 2"):
        CotDecode([Member("one", OneAlternative())])
    assert provider.requests == []


@pytest.mark.embedded
def test_top_path_on_the_embedded_model_is_greedy_decoding(local_provider):
    # one branch decodes alone, so its numerics match single-sequence greedy decoding exactly; with
    # several branches in one batch, llama.cpp's batched kernels may round near-ties differently
    member = Member("local", local_provider)
    single = CotDecode([member], CotDecodeSettings(k=1, answer_prompt=None, extract="text"), 24)
    (greedy,) = asyncio.run(local_provider.complete(single.base_request(ITEM).but(max_tokens=24)))
    assert run_strategy(single, ITEM).details["paths"][0]["text"] == greedy.text
    three = run_strategy(CotDecode([member], CotDecodeSettings(k=3, answer_prompt=None, extract="text"), 24), ITEM)
    paths = sorted(three.details["paths"], key=lambda p: p["rank_first"])
    assert len({p["first_token"] for p in paths}) == 3 and greedy.text.startswith(paths[0]["first_token"])


@pytest.mark.embedded
def test_cot_decode_config_and_batch_on_the_embedded_model(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps({"id": f"q{i}", "prompt": f"What is {i} plus {i}?"}) for i in (2, 3)) + "\n")
    runner = CliRunner()
    single = runner.invoke(app, ["cot-decode", "--config", str(REPO / "configs/cot-decode.yaml"), "--max-tokens", "24",
                                 "--k", "auto", "--k-max", "4", "-o", "-"])
    assert single.exit_code == 0, single.stderr
    record = json.loads(single.stdout)
    assert record["status"] == "ok" and 2 <= record["details"]["k"] <= 4
    assert record["output"] == record["details"]["answer"]
    batch = runner.invoke(app, ["cot-decode", "--config", str(REPO / "configs/cot-decode.yaml"), "--input", str(questions),
                                "--max-tokens", "16", "--k", "3", "-o", "-", "-q"])
    assert batch.exit_code in (0, 5), batch.stderr
    assert sorted(json.loads(line)["id"] for line in batch.stdout.splitlines()) == ["q2", "q3"]


@pytest.mark.embedded
def test_raw_template_on_both_backends(fake_server, registry_for, local_provider):
    server, member = member_on_server(fake_server, registry_for, BranchModel(FIRSTS, BRANCHES))
    result = decode(member, k=2, raw=True, answer_prompt=None)
    assert result.output == "8"
    assert all(r["path"] == "/v1/completions" for r in server.requests)
    assert server.requests[0]["body"]["prompt"] == "Q: How many legs do two cats have?\nA:"
    strategy = CotDecode([Member("local", local_provider)], CotDecodeSettings(k=1, raw=True, extract="text",
                                                                             answer_prompt=None), 12)
    raw = run_strategy(strategy, ITEM)
    (greedy,) = asyncio.run(local_provider.complete(Request((), max_tokens=12, prompt="Q: How many legs do two cats have?\nA:")))
    assert next(p for p in raw.details["paths"] if p["rank_first"] == 1)["text"] == greedy.text


def test_provider_that_returns_no_logprobs_is_a_clear_error():
    # over HTTP (a server that ignores logprobs): test_openai_provider.py's test_decoder_names_a_server_without_logprobs
    def without_logprobs(request):
        return Completion(text=BranchModel(FIRSTS, BRANCHES)(request).text)

    _, member = member_on(without_logprobs)
    with pytest.raises(CapabilityError, match="no top log-probabilities came back"):
        decode(member, k=2)


def test_follow_ups_of_several_paths_run_concurrently():
    branches = {"A": (" hmm.", 0.9), "B": (" well.", 0.9), "C": (" so.", 0.9)}
    model = BranchModel([("A", 0.5), ("B", 0.3), ("C", 0.2)], branches, {" So the answer is": " 3."})
    provider, member = member_on(model)
    result = decode(member, k=3)
    assert [p["answer"] for p in result.details["paths"]] == ["3", "3", "3"]
    follow_ups = [(event, r) for event, r in provider.timeline if r.prefix.endswith(" So the answer is")]
    assert len(follow_ups) == 6  # three calls, each started and ended
    assert max_in_flight(follow_ups) == 3  # all in flight at once
