"""The Rich display and the per-strategy views: plain, quiet and live modes, result tables."""

from __future__ import annotations

import io

from rich.console import Console

from scripted import ScriptedProvider

from ensemble_cli.config import load_config
from ensemble_cli.errors import ProviderError
from ensemble_cli.events import Note, PromptFailed, PromptFinished, PromptStarted, ReplyReceived, TokenChosen
from ensemble_cli.inputs import PromptItem
from ensemble_cli.calls import Message
from ensemble_cli.session import Session
from ensemble_cli.sinks.display import Display, agreement_style
from ensemble_cli.sinks.collect import Collector
from ensemble_cli.sinks.views import detail_view

def real_record(strategy: str, *replies, **config) -> dict:
    """The record a real run of ``strategy`` writes, on a scripted provider (no hand-made dicts)."""
    collector = Collector()
    provider = ScriptedProvider(*replies, default=lambda request: "The answer is 42.")
    outcome = Session(load_config(None, config), provider=provider).run_sync(
        strategy, [PromptItem("q", (Message("user", "What is six times seven?"),))], [collector])
    assert outcome.ok == 1, collector.records
    return collector.records[0]


VOTE_RECORD = real_record("vote", "It is 42.", "42", "7", "no idea", temperature=0.7,
                          members=[{"name": n} for n in "abcd"], vote={"extract": "number"})


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
    assert VOTE_RECORD["details"]["table"][0]["members"] == ["a", "b"]  # what the view shows is what was recorded


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
    tagged = "<response><text>Blue</text><probability>0.7</probability></response>"
    records = (
        (real_record("committee", n=3, max_tokens=4), "m x3", {}),
        (real_record("cot-decode", max_tokens=4, **{"cot-decode": {"k": 2}}), "'The'", {}),
        (real_record("moa", "a says x", ProviderError("HTTP 500"), "the final answer",
                     members=[{"name": "a"}, {"name": "b"}], moa={"layers": 1}), "failed: HTTP 500", {}),
        (real_record("verbalize", "Blue</text><probability>0.7</probability></response>", tagged,
                     verbalize={"k": 2}), "distribution", {"show_all": True}),
    )
    for record, expected, options in records:
        con, out = console(False)
        con.print(detail_view(record, **options))
        assert expected in out.getvalue(), out.getvalue()
    assert detail_view({"strategy": "unknown", "status": "ok"}) is None


def test_live_vote_table_highlights_the_leader():
    from ensemble_cli.events import VoteTally

    con, out = console(True)
    with Display(con, total=1) as display:
        display(VoteTally("q", 1, (("42", 2, ("a", "b")), ("7", 1, ("c",))), "42"))
        rendered = io.StringIO()
        Console(file=rendered, width=100, color_system=None).print(display.state.renderable())
    assert "votes, round 1" in rendered.getvalue() and "a, b" in rendered.getvalue()
