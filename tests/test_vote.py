"""`vote` on the fake server (hand-built replies with known winners) and on the embedded model."""

from __future__ import annotations

import json

import pytest
from fake_server import ReplyModel
from typer.testing import CliRunner

from conftest import REPO, run_strategy
from ensemble_cli.cli import app
from ensemble_cli.config import MemberConfig, load_config
from ensemble_cli.strategies.vote import VoteSettings
from ensemble_cli.errors import ConfigError, StrategyError
from ensemble_cli.inputs import from_prompt
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.vote import Vote

ITEM = from_prompt("What is six times seven?")


def says(answer: str, confidence: float = 0.8) -> ReplyModel:
    return ReplyModel(lambda ctx: f"I worked it out. The answer is {answer}.", confidence)


def ranker(ctx) -> str:
    if "Candidate answers" in ctx.user:
        return "1 > 2 > 3"
    return "The answer is 42."


def members_for(registry_for, server, names, provider="vllm", weights=None, temperature=0.0, **run):
    registry = registry_for(max_retries=0, **run)
    weights = weights or {}
    return [Member(name, registry.provider_for(MemberConfig(name=name, provider=provider, model=model,
                                                            base_url=server.base_url)), weight=weights.get(name, 1.0),
                   temperature=temperature)
            for name, model in names]


def run_vote(members, judge=None, **settings):
    return run_strategy(Vote(members, VoteSettings(**settings), judge), ITEM)


def test_majority_with_abstention(fake_server, registry_for):
    server = fake_server({"42": says("42"), "7": says("7"), "none": ReplyModel(lambda ctx: "No idea, sorry!")})
    result = run_vote(members_for(registry_for, server, [("a", "42"), ("b", "42"), ("c", "7"), ("d", "none")]),
                      extract="number")
    details = result.details
    assert result.output == "42" and details["abstentions"] == ["d"]
    assert details["table"][0] == {"answer": "42", "votes": 2, "weight": 2.0, "members": ["a", "b"]}
    assert details["agreement"] == pytest.approx(2 / 3) and details["margin"] == pytest.approx(1 / 3)
    assert [r["answer"] for r in details["rounds"][0]["replies"]] == ["42", "42", "7", None]


def test_ranges_phone_numbers_and_scores_abstain_instead_of_voting_a_negative(fake_server, registry_for):
    replies = {"42": says("42"), "range": ReplyModel(lambda ctx: "Somewhere between 40-44, I think."),
               "phone": ReplyModel(lambda ctx: "Call 555-1234 and ask."),
               "code": ReplyModel(lambda ctx: 'It follows the "4-3-3" rule.')}
    server = fake_server(replies)
    members = members_for(registry_for, server, [("a", "42"), ("b", "range"), ("c", "phone"), ("d", "code")])
    details = run_vote(members, extract="number").details
    assert details["table"] == [{"answer": "42", "votes": 1, "weight": 1.0, "members": ["a"]}]
    assert details["abstentions"] == ["b", "c", "d"]


def test_weighted_and_confidence(fake_server, registry_for):
    server = fake_server({"42": says("42", 0.2), "7": says("7", 0.95)})
    names = [("a", "42"), ("b", "42"), ("c", "7")]
    assert run_vote(members_for(registry_for, server, names), extract="number").output == "42"
    heavy = members_for(registry_for, server, names, weights={"c": 3.0})
    assert run_vote(heavy, extract="number", method="weighted").output == "7"
    confident = run_vote(members_for(registry_for, server, names), extract="number", method="confidence")
    assert confident.output == "7"
    replies = confident.details["rounds"][0]["replies"]
    assert replies[0]["confidence"] == pytest.approx(0.2) and replies[2]["confidence"] == pytest.approx(0.95)


def test_tie_goes_to_the_answer_given_first(fake_server, registry_for):
    server = fake_server({"42": says("42"), "7": says("7")})
    assert run_vote(members_for(registry_for, server, [("a", "7"), ("b", "42")]), extract="number").output == "7"
    assert run_vote(members_for(registry_for, server, [("a", "42"), ("b", "7")]), extract="number").output == "42"


def test_samples_use_n_where_honoured(fake_server, registry_for):
    server = fake_server({"42": says("42")})
    sampled = {"temperature": 0.5}
    result = run_vote(members_for(registry_for, server, [("a", "42")], **sampled), extract="number", samples=3)
    assert server.calls == 1 and result.details["table"][0]["votes"] == 3
    assert server.requests[0]["body"]["n"] == 3
    server.reset_counters()
    result = run_vote(members_for(registry_for, server, [("a", "42")], provider="llamacpp", **sampled),
                      extract="number", samples=3)
    assert server.calls == 3 and result.details["table"][0]["votes"] == 3


@pytest.mark.parametrize("provider", ["vllm", "llamacpp"])
def test_greedy_samples_are_one_call_counted_with_their_multiplicity(fake_server, registry_for, provider):
    server = fake_server({"42": says("42")})
    result = run_vote(members_for(registry_for, server, [("a", "42")], provider=provider), extract="number", samples=3)
    assert server.calls == 1 and "n" not in server.requests[0]["body"]
    assert result.details["table"][0]["votes"] == 3 and result.tally.calls == 1
    assert [r.get("copy_of") for r in result.details["rounds"][0]["replies"]] == [None, 0, 0]


def test_quorum(fake_server, registry_for):
    server = fake_server({"42": says("42"), "bad": says("1")})
    server.fail_when = lambda body: body["model"] == "bad"
    names = [("a", "42"), ("b", "42"), ("c", "bad")]
    result = run_vote(members_for(registry_for, server, names), extract="number")
    assert result.output == "42" and result.details["failed"][0]["member"] == "c"
    assert "HTTP 500" in result.errors[0]
    with pytest.raises(StrategyError, match=r"only 2 of 3 members answered, 3 needed"):
        run_vote(members_for(registry_for, server, names), extract="number", quorum=1.0)


def test_two_round_negotiation_reaches_consensus(fake_server, registry_for):
    persuadable = ReplyModel(lambda ctx: "The answer is 42." if "Other agents" in ctx.user else "The answer is 7.")
    server = fake_server({"42": says("42"), "p": persuadable})
    members = members_for(registry_for, server, [("a", "42"), ("b", "p"), ("c", "42")])
    result = run_vote(members, extract="number", rounds=3)
    assert result.details["agreement_per_round"] == [pytest.approx(2 / 3), 1.0]  # stopped after round 2
    assert result.output == "42"
    # round 1: a and c are the same call (same model, temperature 0), made once; round 2: three calls
    assert len(server.requests) == 5
    second = {r["body"]["model"] + str(i): r["body"]["messages"][-1]["content"] for i, r in enumerate(server.requests[2:])}
    assert len(second) == 3
    assert all("Other agents answered" in text and "What is six times seven?" in text for text in second.values())
    persuaded = next(text for key, text in second.items() if key.startswith("p"))
    assert "Agent 1: answer: 42." in persuaded and "Agent 2: answer: 42." in persuaded  # b sees a and c
    assert "answer: 7" not in persuaded  # not its own earlier answer
    assert all("'a'" not in text and "member" not in text for text in second.values())


def test_borda_and_irv_use_rankings(fake_server, registry_for):
    server = fake_server({"r": ReplyModel(ranker), "x": ReplyModel(lambda c: "1 > 2 > 3" if "Candidate" in c.user else "The answer is 9."),
                          "y": ReplyModel(lambda c: "2 > 1 > 3" if "Candidate" in c.user else "The answer is 7.")})
    members = members_for(registry_for, server, [("a", "r"), ("b", "x"), ("c", "y")])
    result = run_vote(members, extract="number", method="borda")
    # candidates in reply order: 42, 9, 7; rankings 42>9>7, 42>9>7, 9>42>7
    assert result.output == "42" and result.details["rounds"][0]["rankings"][2]["ranking"] == ["9", "42", "7"]
    assert run_vote(members, extract="number", method="irv").output == "42"


def test_usc_and_judge_extraction(fake_server, registry_for):
    judge_model = ReplyModel(lambda c: "1, 3\n2" if "Group the responses" in c.user else "Response 3")
    server = fake_server({"42": says("42"), "7": says("7"), "j": judge_model,
                          "forty-two": ReplyModel(lambda c: "It is forty-two.")})
    members = members_for(registry_for, server, [("a", "42"), ("b", "7"), ("c", "forty-two")])
    (judge,) = members_for(registry_for, server, [("judge", "j")])
    usc = run_vote(members, judge, extract="text", method="usc")
    assert usc.output == "It is forty-two." and usc.details["rounds"][0]["usc_choice"] == 3  # in its own words
    assert usc.details["winner"] == "it is forty-two"  # the key it was counted by
    grouped = run_vote(members, judge, extract="judge")
    assert grouped.details["winner"].startswith("#1:") and grouped.details["table"][0]["members"] == ["a", "c"]
    assert grouped.output == "I worked it out. The answer is 42."  # the winning group's first reply


def test_bad_settings_are_config_errors(fake_server, registry_for):
    server = fake_server({"42": says("42")})
    members = members_for(registry_for, server, [("a", "42")])
    with pytest.raises(ConfigError, match="vote.extract: .*unknown extractor 'digits'"):
        load_config(None, {"vote": {"extract": "digits"}})
    with pytest.raises(ConfigError, match="needs a judge member"):
        Vote(members, VoteSettings(method="usc"))
    with pytest.raises(ConfigError, match="vote.extract: .*does not compile"):
        load_config(None, {"vote": {"extract": "regex:(["}})


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


def test_replies_and_running_tally_are_emitted_as_they_arrive(fake_server, registry_for):
    from ensemble_cli.events import ReplyReceived, RoundFinished, VoteTally

    server = fake_server({"42": says("42"), "7": says("7")})
    events = []
    vote = Vote(members_for(registry_for, server, [("a", "42"), ("b", "7"), ("c", "42")]), VoteSettings(extract="number"))
    run_strategy(vote, ITEM, events.append)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["ReplyReceived", "VoteTally"] * 3 + ["RoundFinished"]
    tallies = [e for e in events if isinstance(e, VoteTally)]
    assert [sum(row[1] for row in t.rows) for t in tallies] == [1, 2, 3]
    assert tallies[-1].leader == "42" and isinstance(events[-1], RoundFinished)
    assert {e.answer for e in events if isinstance(e, ReplyReceived)} == {"42", "7"}
