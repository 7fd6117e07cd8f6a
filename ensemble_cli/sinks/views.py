"""Per-strategy result views: Rich renderables built from a record's typed details; no computation here.

A record's ``details`` is read back into the strategy's details model (``strategies/details.py``), so a
view and a record cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..formatting import count, usd
from ..strategies.cascade import CascadeDetails
from ..strategies.committee import CommitteeDetails
from ..strategies.cot_decode import CotDecodeDetails
from ..strategies.moa import MoaDetails
from ..strategies.verbalize import VerbalizeDetails
from ..strategies.vote import VoteDetails, VoteRow

View = Callable[..., RenderableType]
_VIEWS: dict[type, View] = {}


def view(details: type) -> Callable[[View], View]:
    """Registers the Rich view of a strategy's details model."""
    def register(function: View) -> View:
        _VIEWS[details] = function
        return function

    return register


def key_values(title: str, values: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in values.items():
        if value is not None:
            table.add_row(key.replace("_", " "), str(value))
    return table


def detail_view(record: dict[str, Any], show_all: bool = False) -> RenderableType | None:
    """The strategy's view of an ok record; ``show_all`` is a display choice (the whole verbalized
    distribution)."""
    from .. import catalog

    spec = catalog.find(str(record.get("strategy", "")))
    function = None if spec is None else _VIEWS.get(spec.details)
    if spec is None or function is None or record.get("status") != "ok":
        return None
    details = spec.details.model_validate(record["details"])
    return function(details, record, show_all=show_all)


def totals_line(records: list[dict[str, Any]]) -> str | None:
    """What the run's ok records say together, where their strategy says something (its spec's ``run_totals``:
    a cascade's prompts stopped at each tier)."""
    from .. import catalog

    spec = catalog.find(str(records[0].get("strategy", ""))) if records else None
    if spec is None or spec.run_totals is None:
        return None
    totals = spec.run_totals([r.get("details") or {} for r in records if r.get("status") == "ok"])
    return None if totals is None else totals.line


@view(CommitteeDetails)
def committee_view(details: CommitteeDetails, record: dict[str, Any], show_all: bool = False) -> RenderableType:
    members = ", ".join(g.members[0] if g.multiplicity == 1 else f"{g.members[0].split('#')[0]} x{g.multiplicity}"
                        for g in details.groups)
    summary = details.summary.model_dump(exclude_none=True)
    summary.update(members=members, merge=details.merge, finish=details.finish_reason)
    return Group(Text(str(record.get("strategy")), style="bold cyan"), key_values("summary", summary))


NAMES_SHOWN = 6


def names(listed: list[str]) -> str:
    """Member names for a table cell: all of a few; the first ones and how many in all of many (``--n 1000``)."""
    if len(listed) <= NAMES_SHOWN:
        return ", ".join(listed)
    return f"{', '.join(listed[:NAMES_SHOWN - 1])}, … ({len(listed)} in all)"


def vote_table(rows: list[VoteRow], winner: str | None, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("answer", "votes", "weight", "members"):
        table.add_column(column)
    for row in rows:
        style = "bold green" if row.answer == winner else ""
        table.add_row(row.answer, str(row.votes), f"{row.weight:.3g}", names(row.members), style=style)
    return table


@view(VoteDetails)
def vote_view(details: VoteDetails, record: dict[str, Any], show_all: bool = False) -> RenderableType:
    parts: list[RenderableType] = [vote_table(details.table, details.winner, f"vote ({details.method})")]
    if len(details.rounds) > 1:
        rounds = Table(title="rounds", title_justify="left")
        for column in ("round", "leader", "agreement"):
            rounds.add_column(column)
        for r in details.rounds:
            rounds.add_row(str(r.round), str(r.winner), f"{r.agreement:.2f}")
        parts.append(rounds)
    facts = {"winner": details.winner_reply or details.winner, "agreement": f"{details.agreement:.2f}",
             "margin": f"{details.margin:.2f}", "abstentions": names(details.abstentions) or "none",
             "failed": names([f.member for f in details.failed]) or "none"}
    if details.stopping is not None:
        stop = details.stopping
        why = f"settled at {stop.posterior:.3f}" if stop.reason == "settled" else f"cap reached, at {stop.posterior:.3f}"
        facts["samples"] = f"{details.samples_drawn} drawn of {stop.cap} ({why})" if len(details.rounds) == 1 else \
            f"{details.samples_drawn} drawn in {len(details.rounds)} rounds (last round: {why})"
    parts.append(key_values("summary", facts))
    return Group(*parts)


@view(MoaDetails)
def moa_view(details: MoaDetails, record: dict[str, Any], show_all: bool = False) -> RenderableType:
    table = Table(title="layers", title_justify="left")
    for column in ("layer", "member", "chars", "answer"):
        table.add_column(column)
    for layer in details.layers:
        for answer in layer.answers:
            table.add_row(str(layer.layer), answer.member, str(len(answer.text)), " ".join(answer.text.split())[:70])
        for failed in layer.failed:
            table.add_row(str(layer.layer), failed.member, "-", f"failed: {failed.error[:60]}", style="red")
    final = Panel(str(record.get("output") or ""), title=f"final ({details.aggregator.member})", border_style="cyan",
                  expand=False)
    return Group(table, final)


@view(CotDecodeDetails)
def cot_view(details: CotDecodeDetails, record: dict[str, Any], show_all: bool = False) -> RenderableType:
    table = Table(title=f"paths ({details.selection}), k={details.k}", title_justify="left")
    for column in ("#", "first token", "answer", "confidence", "length", "text"):
        table.add_column(column)
    for path in details.paths:
        style = "bold green" if path.rank_first == details.winner else ""
        marker = "*" if style else str(path.rank_first)
        table.add_row(marker, repr(path.first_token), str(path.answer), f"{path.confidence:.3f}",
                      str(path.length), " ".join(path.text.split())[:50], style=style)
    return table


@view(VerbalizeDetails)
def verbalize_view(details: VerbalizeDetails, record: dict[str, Any], show_all: bool = False) -> RenderableType:
    parts: list[RenderableType] = []
    if show_all:
        table = Table(title=f"distribution ({details.probability_source})", title_justify="left")
        for column in ("text", "p", ""):
            table.add_column(column)
        for row in sorted(details.candidates, key=lambda r: -r.final_probability):
            bar = "█" * round(row.final_probability * 30)
            table.add_row(" ".join(row.text.split())[:60], f"{row.final_probability:.3f}", bar,
                          style="" if row.kept else "dim")
        parts.append(table)
    if details.shortfall:
        asked = len(details.candidates) + details.shortfall
        parts.append(Text(f"{count(len(details.candidates), 'different response')} of the {asked} asked for", style="yellow"))
    draws = Table(title="draws", title_justify="left", show_header=False)
    draws.add_column("text")
    for draw in details.draws:
        draws.add_row(draw.text)
    parts.append(draws)
    compare = details.compare
    if compare:
        table = Table(title="diversity: verbalized vs direct sampling", title_justify="left")
        table.add_column("metric")
        table.add_column("verbalized")
        table.add_column(f"direct (T={compare['temperature']})")
        for metric in compare["verbalized"]:
            table.add_row(metric.replace("_", " "), str(compare["verbalized"][metric]), str(compare["direct"][metric]))
        parts.append(table)
    return Group(*parts)


@view(CascadeDetails)
def cascade_view(details: CascadeDetails, record: dict[str, Any], show_all: bool = False) -> RenderableType:
    """Every tier, the ones that did not run too: its answer, how sure it was, what it is accepted at, its cost."""
    table = Table(title=f"cascade ({details.extract})", title_justify="left")
    for column in ("tier", "strategy", "answer", "confidence", "accept at", "calls", "cost", "outcome"):
        table.add_column(column)
    for tier in details.tiers:
        answered = tier.tier == details.answered_by
        outcome = "answered" if answered else ("failed" if tier.error else "escalated")
        table.add_row(str(tier.tier), tier.strategy, "-" if tier.answer is None else " ".join(tier.answer.split())[:30],
                      "-" if tier.confidence is None else f"{tier.confidence:.3f}",
                      "always" if tier.accept is None else f"{tier.accept:g}", str(tier.calls), usd(tier.cost_usd),
                      outcome, style="bold green" if answered else ("red" if tier.error else ""))
    for number in range(len(details.tiers) + 1, len(details.strategies) + 1):
        last = "always" if number == len(details.strategies) else ""
        table.add_row(str(number), details.strategies[number - 1], "-", "-", last, "0", usd(0.0), "not run",
                      style="dim")
    answering = next(t for t in details.tiers if t.tier == details.answered_by)
    facts = {"answered by": f"tier {details.answered_by} ({details.strategy})", "why": answering.reason,
             "answer": details.answer}
    failed = [f"tier {t.tier}: {t.error}" for t in details.tiers if t.error]
    if failed:
        facts["failed"] = "; ".join(failed)
    return Group(table, key_values("summary", facts))
