"""Records read back (``ensemble show``): a table of the prompts, a summary of what they cost, the failures,
and one prompt in the same Rich views the live run ends with (``views.py``, ``display.py``).

The summary is sums over the records as written: nothing is recomputed from the details. Dollars are summed
exactly (as decimals) and a cost the records do not know (``null``) stays unknown, never 0.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Callable, Sequence

from pydantic import ValidationError
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..errors import InputError
from ..formatting import count, usd
from ..records import Located, output_text
from ..strategies.committee import CommitteeDetails
from .display import LiveState, agreement_style, usage_line
from .views import detail_view, key_values, totals_line

PERCENTILES = (("p50", 0.50), ("p95", 0.95))


# What the records say together


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``share`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def dollars(costs: Sequence[float | None]) -> float | None:
    """The exact sum of dollar amounts (decimal, so no float noise is added); unknown if any is unknown."""
    if any(cost is None for cost in costs):
        return None
    return float(sum((Decimal(str(cost)) for cost in costs), Decimal(0)))


def _tokens(usage: dict[str, Any]) -> int:
    return int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))


def _sums(usages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What a record's ``usage`` and each of its ``by_model`` entries share, summed over ``usages``."""
    return {
        "calls": sum(int(u.get("calls", 0)) for u in usages),
        "cached_calls": sum(int(u.get("cached_calls", 0)) for u in usages),
        "prompt_tokens": sum(int(u.get("prompt_tokens", 0)) for u in usages),
        "completion_tokens": sum(int(u.get("completion_tokens", 0)) for u in usages),
        "tokens": sum(_tokens(u) for u in usages),
        "cost_usd": dollars([u.get("cost_usd") for u in usages]),
    }


def summarise(records: Sequence[dict[str, Any]], requests: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """What ``records`` say together: counts, calls, tokens, dollars, latency percentiles, cache hits, and
    the same per ``provider/model``; ``requests``: a server log's refused and cancelled requests, counted."""
    usages = [record.get("usage") or {} for record in records]
    by_model: dict[str, list[dict[str, Any]]] = {}
    for usage in usages:
        for key, used in (usage.get("by_model") or {}).items():
            by_model.setdefault(key, []).append(used)
    latencies = [float(u["wall_s"]) for u in usages if isinstance(u.get("wall_s"), (int, float))]
    ok = sum(1 for record in records if record.get("status") == "ok")
    return {
        "records": len(records),
        "ok": ok,
        "failed": len(records) - ok,
        **_sums(usages),
        "failed_calls": sum(int(u.get("failed_calls", 0)) for u in usages),
        "latency_s": {name: percentile(latencies, share) for name, share in PERCENTILES},
        "requests_refused": sum(1 for request in requests if request.get("status") == "rejected"),
        "requests_cancelled": sum(1 for request in requests if request.get("status") == "cancelled"),
        "models": {key: _sums(used) for key, used in sorted(by_model.items())},
    }


def prompt_row(located: Located) -> dict[str, Any]:
    """One prompt as ``show --json`` lists it: where it was read, what it gave, what it cost."""
    record, usage = located.record, located.record.get("usage") or {}
    return {
        "where": located.where, "id": str(record.get("id")), "strategy": record.get("strategy"),
        "status": record.get("status"), "output": record.get("output"), "errors": list(record.get("errors") or []),
        "calls": usage.get("calls"), "tokens": _tokens(usage), "cost_usd": usage.get("cost_usd"),
        "cached_calls": usage.get("cached_calls", 0), "wall_s": usage.get("wall_s"),
    }


def failed(located: Sequence[Located]) -> list[Located]:
    return [entry for entry in located if entry.record.get("status") != "ok"]


# Rich views


def _flat(text: Any) -> str:
    return " ".join(str(text).split())


def _seconds(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.2f}"


def prompts_table(located: Sequence[Located]) -> Table:
    """One row per record: the output is cut to what the console's width leaves it (a failed prompt shows
    its error instead)."""
    table = Table(title="prompts", title_justify="left")
    for column in ("id", "strategy", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column("output", min_width=8)  # the one column that gives way to the console's width
    for column in ("calls", "cost", "latency s"):
        table.add_column(column, no_wrap=True, justify="right")
    for entry in located:
        record, usage = entry.record, entry.record.get("usage") or {}
        ok = record.get("status") == "ok"
        shown = output_text(record.get("output")) if ok else "; ".join(record.get("errors") or [])
        table.add_row(str(record.get("id")), str(record.get("strategy")), str(record.get("status")),
                      Text(_flat(shown), no_wrap=True, overflow="ellipsis"),
                      str(usage.get("calls", "-")), usd(usage.get("cost_usd")), _seconds(usage.get("wall_s")),
                      style="" if ok else "red")
    return table


def summary_view(summary: dict[str, Any]) -> RenderableType:
    """The summary as two tables: the whole, and per model."""
    latency = summary["latency_s"]
    refused, cancelled = summary["requests_refused"], summary["requests_cancelled"]
    whole = key_values("summary", {
        "prompts": f"{summary['records']} ({summary['ok']} ok, {summary['failed']} failed)",
        "calls": f"{summary['calls']} ({summary['failed_calls']} failed, {summary['cached_calls']} from the cache)",
        "tokens": f"{summary['tokens']} ({summary['prompt_tokens']} prompt, {summary['completion_tokens']} completion)",
        "cost": usd(summary["cost_usd"]),
        "latency": " ".join(f"{name} {_seconds(latency[name])} s" for name, _ in PERCENTILES),
        **({"requests": f"{count(refused + cancelled, 'request')} without a record: {refused} refused, "
                        f"{cancelled} cancelled (server log)"} if refused or cancelled else {}),
    })
    models = Table(title="per model", title_justify="left")
    for column in ("model", "calls", "cached", "tokens", "cost"):
        models.add_column(column, no_wrap=True, justify="left" if column == "model" else "right")
    for key, used in summary["models"].items():
        models.add_row(key, str(used["calls"]), str(used["cached_calls"]), str(used["tokens"]), usd(used["cost_usd"]))
    return Group(whole, models) if summary["models"] else whole


def failures_view(located: Sequence[Located]) -> RenderableType:
    """The failed prompts, each with every error its record holds."""
    if not located:
        return Text("no failed prompts", style="green")
    table = Table(title=f"failed: {count(len(located), 'prompt')}", title_justify="left")
    for column in ("id", "strategy", "where", "errors"):
        table.add_column(column, no_wrap=column != "errors")
    for entry in located:
        record = entry.record
        table.add_row(str(record.get("id")), str(record.get("strategy")), entry.where,
                      "\n".join(record.get("errors") or ["(no error recorded)"]), style="red")
    return table


def shaded_answer(details: CommitteeDetails, record: dict[str, Any]) -> RenderableType | None:
    """The committee's answer as the live run shades it (``LiveState``): each token in the colour of how far
    the members agreed on it, up to the output's end (a stop string is not part of it)."""
    state = LiveState()
    left = len(output_text(record.get("output")))
    for step in details.steps:
        if step.token is None or left <= 0:
            continue
        piece = step.token[:left]
        state.answer.append(piece, style=agreement_style(step.agreement))
        left -= len(piece)
    return state.renderable() if state.answer else None


ANSWERS: dict[type, Callable[[Any, dict[str, Any]], RenderableType | None]] = {CommitteeDetails: shaded_answer}
"""Per details type, what the live view showed as the answer and the end-of-run view does not hold."""


def record_view(entry: Located, show_all: bool = False) -> RenderableType:
    """One prompt as the live run shows it at its end: its strategy's view (``detail_view``), the run totals
    its strategy gives and the usage line; a failed prompt's errors instead of a view."""
    from .. import catalog

    record = entry.record
    parts: list[RenderableType] = [
        Text(f"{record.get('id')} · {record.get('strategy')} · {record.get('status')} · {entry.where}", style="bold"),
        Text(f"prompt: {_flat(_prompt(record))}", style="dim"),
    ]
    spec = catalog.find(str(record.get("strategy", "")))
    try:
        parts.extend(_result(entry, spec, show_all))
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InputError(f"{entry.where}: its details are not what {record.get('strategy')} writes "
                         f"({'.'.join(str(p) for p in problem['loc'])}: {problem['msg']})") from None
    parts.append(Text(usage_line([record])))
    return Group(*parts)


def _result(entry: Located, spec: Any, show_all: bool) -> list[RenderableType]:
    record = entry.record
    parts: list[RenderableType] = []
    if record.get("status") != "ok":
        parts.extend(Text(f"error: {error}", style="red") for error in record.get("errors") or ["(no error recorded)"])
    else:
        answer = ANSWERS.get(spec.details) if spec is not None else None
        if answer is not None and spec is not None:
            shaded = answer(spec.details.model_validate(record.get("details") or {}), record)
            if shaded is not None:
                parts.append(shaded)
        view = detail_view(record, show_all=show_all)
        parts.append(view if view is not None else Panel(output_text(record.get("output")), title="output",
                                                         expand=False))
        totals = totals_line([record])
        if totals is not None:
            parts.append(Text(totals))
    return parts


def _prompt(record: dict[str, Any]) -> str:
    given = record.get("input") or {}
    if "prompt" in given:
        return str(given["prompt"])
    users = [m.get("content", "") for m in given.get("messages") or [] if m.get("role") == "user"]
    return str(users[-1]) if users else ""
