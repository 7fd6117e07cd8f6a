"""Committee merge rules on hand-built distributions with known winners."""

from __future__ import annotations

import math

import pytest

from ensemble_cli.calls import END
from ensemble_cli.strategies.committee_merge import build_distribution, merge


def dist(weight=1.0, **probs):
    return build_distribution([(k.replace("_", " "), math.log(v)) for k, v in probs.items()], weight)


def test_mean_is_a_mixture():
    result = merge([dist(a=0.6, b=0.3), dist(b=0.7, a=0.2)], "mean")
    # a: (0.6 + 0.2) / 2 = 0.4 ; b: (0.3 + 0.7) / 2 = 0.5
    assert result.winner == "b" and math.isclose(result.probability, 0.5)
    assert result.agreement == 0.5


def test_product_prefers_the_token_everyone_likes():
    members = [dist(a=0.9, c=0.05), dist(c=0.5, a=0.01), dist(c=0.5, a=0.01)]
    assert merge(members, "mean").winner == "c"
    assert merge([dist(a=0.9, c=0.1), dist(c=0.6, a=0.3)], "product").winner == "a"
    assert merge([dist(a=0.45, c=0.4), dist(c=0.6, a=0.05)], "product").winner == "c"


def test_vote_counts_top_tokens_and_breaks_ties_by_mean():
    members = [dist(a=0.5, b=0.4), dist(a=0.4, b=0.35), dist(b=0.9, a=0.05)]
    result = merge(members, "vote")
    assert result.winner == "a" and math.isclose(result.agreement, 2 / 3)
    tie = merge([dist(a=0.51, b=0.49), dist(b=0.9, a=0.1)], "vote")
    assert tie.winner == "b"  # one vote each; mean prob b = 0.695 > a = 0.305


def test_weights_scale_members():
    assert merge([dist(a=0.6, b=0.4), dist(b=0.7, a=0.3)], "mean").winner == "b"  # 0.45 vs 0.55
    weighted = [dist(weight=3.0, a=0.6, b=0.4), dist(b=0.7, a=0.3)]
    result = merge(weighted, "mean")
    assert result.winner == "a" and math.isclose(result.probability, (1.8 + 0.3) / 4)
    assert merge(weighted, "vote").agreement == 0.75


def test_missing_token_gets_the_members_floor_not_zero_or_nothing():
    # x is only in member 1's top-2; members 2 and 3 list y and z, with floors 0.1
    members = [dist(x=0.5, y=0.3), dist(y=0.6, z=0.1), dist(y=0.6, z=0.1)]
    result = merge(members, "mean")
    scores = dict(result.scores)
    assert math.isclose(math.exp(scores["x"]), (0.5 + 0.1 + 0.1) / 3)
    assert result.winner == "y"
    # ignoring x where it is missing would score it 0.6 and let it beat y (0.467); the floor (0.3) does not
    lone = merge([dist(x=0.6, y=0.4), dist(y=0.5, z=0.3), dist(y=0.5, z=0.3)], "mean")
    assert lone.winner == "y"
    assert math.isclose(math.exp(dict(lone.scores)["x"]), (0.6 + 0.3 + 0.3) / 3)


def test_duplicate_texts_are_summed_and_one_member_is_greedy():
    d = build_distribution([("a", math.log(0.3)), ("b", math.log(0.4)), ("a", math.log(0.2))])
    assert d.top == "a" and math.isclose(math.exp(d.top_logprob), 0.5)
    assert merge([dist(p=0.4, q=0.4, r=0.2)], "mean").winner == "p"  # tie: first listed wins


def test_end_token_can_win():
    members = [build_distribution([(END, math.log(0.7)), ("x", math.log(0.2))])] * 2
    assert merge(members).is_end


def test_temperature_flattens_a_distribution():
    sharp = build_distribution([("a", math.log(0.8)), ("b", math.log(0.2))], temperature=0.0)
    flat = build_distribution([("a", math.log(0.8)), ("b", math.log(0.2))], temperature=2.0)
    gap = lambda d: d.candidates[0][1] - d.candidates[1][1]  # noqa: E731
    assert gap(flat) == pytest.approx(gap(sharp) / 2)
