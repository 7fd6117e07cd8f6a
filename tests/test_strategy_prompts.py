"""The prompts strategies write: vote's debate and ranking prompts, verbalize's first request."""

from __future__ import annotations

from ensemble_cli.strategies import verbalize_prompts, vote_prompts


def test_prompt_texts():
    debate = vote_prompts.debate("Q?", [("42", "long reasoning " * 50), (None, "no idea")])
    assert debate.startswith("Q?") and "Agent 1: answer: 42." in debate and "Agent 2: answer: (none given)" in debate
    assert len(debate) < 1000  # reasoning is cut to its end
    assert "1 > 2" not in vote_prompts.ranking("Q?", ["a", "b"]) and "2 > 1" in vote_prompts.ranking("Q?", ["a", "b"])
    first = verbalize_prompts.first_request("standard", "Tell a joke.", 4, 0.1, None)
    assert "Write 4 different responses" in first and "below 0.1" in first and first.endswith("Tell a joke.")
    assert "<thinking>" in verbalize_prompts.first_request("cot", "x", 2, None, None)
