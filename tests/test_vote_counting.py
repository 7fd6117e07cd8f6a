"""Vote counting rules on hand-built ballots and rankings with known winners."""

from __future__ import annotations

from ensemble_cli.strategies.vote_counting import Ballot, borda, instant_runoff, tally


def ballots(*pairs, weights=None, confidences=None):
    weights = weights or [1.0] * len(pairs)
    confidences = confidences or [None] * len(pairs)
    return [Ballot(m, a, w, c, i) for i, ((m, a), w, c) in enumerate(zip(pairs, weights, confidences))]


def test_majority_agreement_margin_abstentions():
    table = tally(ballots(("a", "42"), ("b", "42"), ("c", "7"), ("d", None)))
    assert table.winner == "42" and table.abstentions == ["d"]
    assert abs(table.agreement - 2 / 3) < 1e-9 and abs(table.margin - 1 / 3) < 1e-9
    assert table.rows[0].members == ["a", "b"]


def test_weighted_and_confidence_change_the_winner():
    base = (("a", "42"), ("b", "42"), ("c", "7"))
    assert tally(ballots(*base, weights=[1, 1, 5]), "weighted").winner == "7"
    assert tally(ballots(*base, confidences=[0.2, 0.2, 0.9]), "confidence").winner == "7"
    assert tally(ballots(*base, confidences=[0.5, 0.5, 0.9]), "confidence").winner == "42"


def test_ties_go_to_more_votes_then_confidence_then_first_given():
    assert tally(ballots(("a", "7"), ("b", "42"))).winner == "7"
    assert tally(ballots(("a", "7"), ("b", "42"), confidences=[0.2, 0.9])).winner == "42"
    weighted = tally(ballots(("a", "7"), ("b", "42"), ("c", "42"), weights=[2, 1, 1]), "weighted")
    assert weighted.winner == "42"  # equal weight 2, but two votes beat one


def test_borda_counts_rank_positions():
    votes = ballots(("a", "x"), ("b", "y"), ("c", "z"))
    rankings = [["x", "y", "z"], ["y", "x", "z"], ["y", "z", "x"]]
    table = borda(rankings, ["x", "y", "z"], votes)
    assert table.winner == "y"
    assert {r.answer: r.score for r in table.rows} == {"x": 3, "y": 5, "z": 1}


def test_instant_runoff_transfers_eliminated_preferences():
    candidates = ["x", "y", "z"]
    votes = ballots(("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "z"))
    rankings = [["x", "z"], ["x", "z"], ["y", "z"], ["y", "z"], ["z", "y"]]
    table, rounds = instant_runoff(rankings, candidates, votes)
    # round 1: x 2, y 2, z 1 -> z out; its ballot goes to y: y 3 of 5
    assert rounds[0] == {"x": 2, "y": 2, "z": 1} and rounds[1] == {"x": 2, "y": 3}
    assert table.winner == "y"
