"""`vote`'s logic on the scripted in-process provider (replies with known winners), its CLI flags, embedded runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from scripted import ScriptedProvider
from typer.testing import CliRunner

from conftest import REPO, run_strategy
from ensemble_cli.cli import app
from ensemble_cli.config import load_config
from ensemble_cli.strategies.vote import VoteSettings
from ensemble_cli.errors import ConfigError, ProviderError, StrategyError
from ensemble_cli.inputs import from_prompt
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.vote import Vote

ITEM = from_prompt("What is six times seven?")


def user(request) -> str:
    """The last user message of a request: what the member is asked."""
    return next(m.content for m in reversed(request.messages) if m.role == "user")


def replying(reply, confidence: float = 0.8, honours_n: bool = True) -> ScriptedProvider:
    """A model that answers every request with ``reply`` (a text, an exception, or a function of the request)."""
    provider = ScriptedProvider(default=reply, confidence=confidence)
    provider.capabilities = dataclasses.replace(provider.capabilities, honours_n=honours_n)
    return provider


def says(answer: str, confidence: float = 0.8, honours_n: bool = True) -> ScriptedProvider:
    return replying(f"I worked it out. The answer is {answer}.", confidence, honours_n)


def members(*pairs, weights=None, temperature=0.0):
    """Members named and bound to providers; members given one provider are on one model (their calls can be
    the same call)."""
    weights = weights or {}
    return [Member(name, provider, weight=weights.get(name, 1.0), temperature=temperature) for name, provider in pairs]


def run_vote(members, judge=None, **settings):
    return run_strategy(Vote(members, VoteSettings(**settings), judge), ITEM)


def test_majority_with_abstention():
    fortytwo = says("42")
    result = run_vote(members(("a", fortytwo), ("b", fortytwo), ("c", says("7")), ("d", replying("No idea, sorry!"))),
                      extract="number")
    details = result.details
    assert result.output == "42" and details["abstentions"] == ["d"]
    assert details["table"][0] == {"answer": "42", "votes": 2, "weight": 2.0, "members": ["a", "b"]}
    assert details["agreement"] == pytest.approx(2 / 3) and details["margin"] == pytest.approx(1 / 3)
    assert [r["answer"] for r in details["rounds"][0]["replies"]] == ["42", "42", "7", None]


def test_ranges_phone_numbers_and_scores_abstain_instead_of_voting_a_negative():
    voters = members(("a", says("42")), ("b", replying("Somewhere between 40-44, I think.")),
                     ("c", replying("Call 555-1234 and ask.")), ("d", replying('It follows the "4-3-3" rule.')))
    details = run_vote(voters, extract="number").details
    assert details["table"] == [{"answer": "42", "votes": 1, "weight": 1.0, "members": ["a"]}]
    assert details["abstentions"] == ["b", "c", "d"]


def test_weighted_and_confidence():
    unsure, sure = says("42", 0.2), says("7", 0.95)
    names = [("a", unsure), ("b", unsure), ("c", sure)]
    assert run_vote(members(*names), extract="number").output == "42"
    heavy = members(*names, weights={"c": 3.0})
    assert run_vote(heavy, extract="number", method="weighted").output == "7"
    confident = run_vote(members(*names), extract="number", method="confidence")
    assert confident.output == "7"
    replies = confident.details["rounds"][0]["replies"]
    assert replies[0]["confidence"] == pytest.approx(0.2) and replies[2]["confidence"] == pytest.approx(0.95)
    assert unsure.requests[-1].top_logprobs == 1 and sure.requests[-1].top_logprobs == 1  # it asked for logprobs
    assert unsure.requests[0].top_logprobs == 0  # majority did not


def test_tie_goes_to_the_answer_given_first():
    assert run_vote(members(("a", says("7")), ("b", says("42"))), extract="number").output == "7"
    assert run_vote(members(("a", says("42")), ("b", says("7"))), extract="number").output == "42"


def test_samples_use_n_where_honoured():
    honours = says("42")
    result = run_vote(members(("a", honours), temperature=0.5), extract="number", samples=3)
    assert [r.n for r in honours.requests] == [3] and result.details["table"][0]["votes"] == 3
    ignores = says("42", honours_n=False)
    result = run_vote(members(("a", ignores), temperature=0.5), extract="number", samples=3)
    assert [r.n for r in ignores.requests] == [1, 1, 1] and result.details["table"][0]["votes"] == 3


@pytest.mark.parametrize("honours_n", [True, False], ids=["honours-n", "ignores-n"])
def test_greedy_samples_are_one_call_counted_with_their_multiplicity(honours_n):
    provider = says("42", honours_n=honours_n)
    result = run_vote(members(("a", provider)), extract="number", samples=3)
    assert [r.n for r in provider.requests] == [1]
    assert result.details["table"][0]["votes"] == 3 and result.tally.calls == 1
    assert [r.get("copy_of") for r in result.details["rounds"][0]["replies"]] == [None, 0, 0]


def test_quorum():
    failure = "member 'c': HTTP 500: injected 500"
    fortytwo, bad = says("42"), replying(ProviderError(failure))
    names = [("a", fortytwo), ("b", fortytwo), ("c", bad)]
    result = run_vote(members(*names), extract="number")
    assert result.output == "42" and result.details["failed"] == [{"member": "c", "round": 1, "error": failure}]
    assert result.errors == [failure] and len(bad.requests) == 1  # the failure, as the provider raised it
    with pytest.raises(StrategyError, match=r"only 2 of 3 members answered, 3 needed"):
        run_vote(members(*names), extract="number", quorum=1.0)


def test_two_round_negotiation_reaches_consensus():
    fortytwo = says("42")
    persuadable = replying(lambda request: "The answer is 42." if "Other agents" in user(request) else "The answer is 7.")
    result = run_vote(members(("a", fortytwo), ("b", persuadable), ("c", fortytwo)), extract="number", rounds=3)
    assert result.details["agreement_per_round"] == [pytest.approx(2 / 3), 1.0]  # stopped after round 2
    assert result.output == "42"
    # round 1: a and c are the same call (same model, temperature 0), made once; round 2: three calls
    assert len(fortytwo.requests) == 3 and len(persuadable.requests) == 2
    second = [user(r) for r in (*fortytwo.requests[1:], *persuadable.requests[1:])]
    assert len(second) == 3
    assert all("Other agents answered" in text and "What is six times seven?" in text for text in second)
    persuaded = user(persuadable.requests[1])
    assert "Agent 1: answer: 42." in persuaded and "Agent 2: answer: 42." in persuaded  # b sees a and c
    assert "answer: 7" not in persuaded  # not its own earlier answer
    assert all("answer: 7." in text and "answer: 42." in text for text in second[:2])  # a, c: b's 7, the other's 42
    assert all("'a'" not in text and "member" not in text for text in second)


def test_borda_and_irv_use_rankings():
    def ranks(ranking: str, answer: str):
        return replying(lambda request: ranking if "Candidate" in user(request) else answer)

    voters = members(("a", ranks("1 > 2 > 3", "The answer is 42.")), ("b", ranks("1 > 2 > 3", "The answer is 9.")),
                     ("c", ranks("2 > 1 > 3", "The answer is 7.")))
    result = run_vote(voters, extract="number", method="borda")
    # candidates in reply order: 42, 9, 7; rankings 42>9>7, 42>9>7, 9>42>7
    assert result.output == "42" and result.details["rounds"][0]["rankings"][2]["ranking"] == ["9", "42", "7"]
    assert run_vote(voters, extract="number", method="irv").output == "42"


def test_usc_and_judge_extraction():
    judge_model = replying(lambda request: "1, 3\n2" if "Group the responses" in user(request) else "Response 3")
    voters = members(("a", says("42")), ("b", says("7")), ("c", replying("It is forty-two.")))
    (judge,) = members(("judge", judge_model))
    usc = run_vote(voters, judge, extract="text", method="usc")
    assert usc.output == "It is forty-two." and usc.details["rounds"][0]["usc_choice"] == 3  # in its own words
    assert usc.details["winner"] == "it is forty-two"  # the key it was counted by
    grouped = run_vote(voters, judge, extract="judge")
    assert grouped.details["winner"].startswith("#1:") and grouped.details["table"][0]["members"] == ["a", "c"]
    assert grouped.output == "I worked it out. The answer is 42."  # the winning group's first reply


def test_bad_settings_are_config_errors():
    provider = says("42")
    voters = members(("a", provider))
    with pytest.raises(ConfigError, match="vote.extract: .*unknown extractor 'digits'"):
        load_config(None, {"vote": {"extract": "digits"}})
    with pytest.raises(ConfigError, match="needs a judge member"):
        Vote(voters, VoteSettings(method="usc"))
    with pytest.raises(ConfigError, match="vote.extract: .*does not compile"):
        load_config(None, {"vote": {"extract": "regex:(["}})
    assert provider.requests == []  # refused before any call


def test_cli_bad_method_and_extractor_exit_2():
    runner = CliRunner()
    bad_method = runner.invoke(app, ["vote", "--prompt", "q", "--method", "plurality"])
    assert bad_method.exit_code == 2 and "--method: " in bad_method.stderr
    bad_extract = runner.invoke(app, ["vote", "--prompt", "q", "--extract", "regex:(["])
    assert bad_extract.exit_code == 2 and bad_extract.stderr.count("\n") == 1 and "does not compile" in bad_extract.stderr


@pytest.mark.embedded
def test_vote_config_on_the_embedded_model():
    result = CliRunner().invoke(app, ["vote", "--config", str(REPO / "configs/vote.yaml"), "--max-tokens", "12", "-o", "-"])
    record = json.loads(result.stdout.splitlines()[0])
    assert record["strategy"] == "vote" and record["status"] == "ok", record["errors"]
    details = record["details"]
    assert result.exit_code == 0 and 1 <= len(details["rounds"]) <= 2
    assert record["output"] == details["winner"] == details["table"][0]["answer"]
    assert all(len(r["replies"]) == 4 for r in details["rounds"])
    replies = details["rounds"][0]["replies"]
    assert len(replies) == 4 and {r["member"] for r in replies} == {"plain", "careful"}
    assert len({r["text"] for r in replies}) > 1  # sampled, seeded per member and sample


def test_replies_and_running_tally_are_emitted_as_they_arrive():
    from ensemble_cli.events import ReplyReceived, RoundFinished, VoteTally

    fortytwo = says("42")
    events = []
    vote = Vote(members(("a", fortytwo), ("b", says("7")), ("c", fortytwo)), VoteSettings(extract="number"))
    run_strategy(vote, ITEM, events.append)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["ReplyReceived", "VoteTally"] * 3 + ["RoundFinished"]
    tallies = [e for e in events if isinstance(e, VoteTally)]
    assert [sum(row[1] for row in t.rows) for t in tallies] == [1, 2, 3]
    assert tallies[-1].leader == "42" and isinstance(events[-1], RoundFinished)
    assert {e.answer for e in events if isinstance(e, ReplyReceived)} == {"42", "7"}


@pytest.mark.parametrize(("extract", "replies", "words", "key"), [
    ("text", ["The Answer Is FOUR.", "the answer is four", "It is five."], "The Answer Is FOUR.", "the answer is four"),
    ("line", ["Thinking...\nParis, France!", "Hmm\nparis, france", "Lyon"], "Paris, France!", "paris, france"),
    ("json:city", ['{"city": "New York"}', 'ok {"city": "new york "}', '{"city": "Boston"}'], '{"city": "New York"}',
     "new york"),  # the object as the winning reply wrote it
    ("regex:ANSWER: (.+)", ["ANSWER: Blue Sky.", "ANSWER: blue sky", "ANSWER: red"], "Blue Sky.", "blue sky"),
])
def test_vote_output_is_the_winning_reply_in_its_own_words(extract, replies, words, key):
    members = [Member(f"m{i}", ScriptedProvider(reply)) for i, reply in enumerate(replies)]
    result = asyncio.run(Vote(members, VoteSettings(extract=extract)).run(from_prompt("q")))
    details = result.details.model_dump(mode="json") if hasattr(result.details, "model_dump") else result.details
    assert result.output == words
    assert details["winner"] == key and details["winner"] != result.output
