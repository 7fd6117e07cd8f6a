"""The Rich display and the per-strategy views: plain, quiet and live modes, result tables."""

from __future__ import annotations

import io

from rich.console import Console

from ensemble_cli.sinks.display import Display, agreement_style
from ensemble_cli.events import Note, PromptFailed, PromptFinished, PromptStarted, ReplyReceived, TokenChosen
from ensemble_cli.sinks.views import detail_view

VOTE_RECORD = {
    "id": "q", "strategy": "vote", "status": "ok", "output": "42", "usage": {"calls": 3, "wall_s": 0.5},
    "details": {"method": "majority", "winner": "42", "agreement": 2 / 3, "margin": 1 / 3,
                "table": [{"answer": "42", "votes": 2, "weight": 2.0, "members": ["a", "b"]},
                          {"answer": "7", "votes": 1, "weight": 1.0, "members": ["c"]}],
                "abstentions": ["d"], "failed": [], "rounds": [{"round": 1, "winner": "42", "agreement": 0.67}]},
}


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100, color_system=None), out


def test_plain_mode_prints_lines_and_the_strategy_view():
    con, out = console(False)
    with Display(con, total=1) as display:
        display(PromptStarted("q", "What is six times seven?"))
        display(ReplyReceived("q", "a", 1, "The answer is 42.", "42"))
        display(Note("q", "excluding member 'x'"))
        display(PromptFinished("q", VOTE_RECORD))
    display.summary()
    text = out.getvalue()
    assert display.mode == "plain"
    assert "running q: What is six times seven?" in text and "round 1 a -> 42" in text
    assert "note q: excluding member 'x'" in text
    assert "│ 42     │ 2     │ 2      │ a, b" in text and "abstentions │ d" in text


def test_quiet_mode_prints_only_errors_but_keeps_results():
    con, out = console(True)
    with Display(con, total=2, quiet=True) as display:
        display(PromptFinished("q", VOTE_RECORD))
        display(PromptFailed("r", "boom"))
    display.summary()
    assert out.getvalue() == "ensemble: error: [2/2] r failed: boom\n"  # --quiet silences progress, never errors
    assert display.records == [VOTE_RECORD] and display.failures == [("r", "boom")]


def test_live_view_grows_the_answer_and_batches_get_a_table():
    con, out = console(True)
    with Display(con, total=1) as display:
        display(TokenChosen("q", "Hello", 1.0, 1.0))
        display(TokenChosen("q", " world", 0.4, 0.34, ("b", "c")))
        assert display.state.answer.plain == "Hello world"
        assert display.state.dissent == ("b", "c")
    con, out = console(True)
    with Display(con, total=2) as display:
        display(PromptFinished("q", VOTE_RECORD))
        display(PromptFinished("r", {**VOTE_RECORD, "id": "r"}))
    display.summary()
    text = out.getvalue()
    assert "2/2" in text and "results" in text and "│ r  │ ok" in text


def test_agreement_shading_and_views_for_every_strategy():
    assert agreement_style(1.0) == "bold green" and agreement_style(0.3) == "bold red"
    committee = {"strategy": "committee", "details": {"groups": [{"members": ["a"], "multiplicity": 3}],
                                                      "summary": {"tokens": 5}, "merge": "mean", "finish_reason": "stop"}}
    cot = {"strategy": "cot-decode", "details": {"selection": "max", "k": 1, "winner": 1, "paths": [
        {"rank_first": 1, "first_token": "The", "answer": "8", "confidence": 0.9, "length": 4, "text": "The answer is 8"}]}}
    moa = {"strategy": "moa", "output": "final", "details": {"aggregator": {"member": "agg"}, "layers": [
        {"layer": 1, "answers": [{"member": "a", "text": "x"}], "failed": [{"member": "b", "error": "HTTP 500"}]}]}}
    verbalize = {"strategy": "verbalize", "details": {"show_all": True, "probability_source": "given",
                                                      "candidates": [{"text": "Blue", "final_probability": 1.0, "kept": True}],
                                                      "draws": [{"text": "Blue"}]}}
    for record, expected in ((committee, "a x3"), (cot, "'The'"), (moa, "failed: HTTP 500"), (verbalize, "Blue")):
        con, out = console(False)
        con.print(detail_view(record))
        assert expected in out.getvalue()
    assert detail_view({"strategy": "unknown"}) is None


def test_live_vote_table_highlights_the_leader():
    from ensemble_cli.events import VoteTally

    con, out = console(True)
    with Display(con, total=1) as display:
        display(VoteTally("q", 1, (("42", 2, ("a", "b")), ("7", 1, ("c",))), "42"))
        rendered = io.StringIO()
        Console(file=rendered, width=100, color_system=None).print(display.state.renderable())
    assert "votes, round 1" in rendered.getvalue() and "a, b" in rendered.getvalue()
