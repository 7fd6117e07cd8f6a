"""From a run directory's records to ``summary.json``, ``report.md``, the chart and a Rich table; no call.

Per arm: accuracy with its Wilson interval, the paired difference from the baseline on the same items
(bootstrap interval, exact McNemar p-value), unextracted and failed counts, calls and tokens per item,
cost (``usage.cost_usd`` summed where every record knows it; unknown otherwise, never free), dollars per
correct answer, wall time, per-item latency p50/p95, and the accuracy-cost Pareto frontier. The cost
axis is dollars per item where every arm's cost is known and some is not zero, else tokens (prompt +
completion) per item (the report says which).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from .. import catalog
from ..formatting import count, p_value, usd
from ..strategies.spec import RunTotals
from .runner import arm_file, load_meta, read_records
from .scoring import score_record
from .stats import paired, pareto, percentile, wilson

SUMMARY = "summary.json"
REPORT = "report.md"
CHART = "chart.png"


def _sum_known(records: list[dict[str, Any]], key: str) -> float | None:
    """The sum of ``usage[key]`` over records, or None when any record does not know it."""
    values = [(r.get("usage") or {}).get(key) for r in records]
    known = [float(v) for v in values if v is not None]
    if not values or len(known) < len(values):
        return None
    return sum(known)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def arm_summary(entry: dict[str, Any], records: list[dict[str, Any]], baseline: dict[str, bool] | None) -> dict[str, Any]:
    scores = [r.get("score") or {} for r in records]
    n = len(records)
    correct = sum(1 for s in scores if s.get("correct"))
    low, high = wilson(correct, n)
    usages = [r.get("usage") or {} for r in records]
    cost = _sum_known(records, "cost_usd")
    summary: dict[str, Any] = {
        "name": entry["name"], "strategy": entry["strategy"], "method": entry.get("method"),
        "recount_of": entry.get("recount_of"), "notes": entry.get("notes", []),
        "items": n, "correct": correct,
        "accuracy": correct / n if n else None, "accuracy_low": low, "accuracy_high": high,
        "unextracted": sum(1 for s in scores if not s.get("extracted") and not s.get("failed")),
        "failed": sum(1 for s in scores if s.get("failed")),
        "calls_per_item": _mean([u.get("calls", 0) for u in usages]),
        "new_calls": 0 if entry.get("recount_of") else sum(u.get("calls", 0) for u in usages),
        "prompt_tokens_per_item": _mean([u.get("prompt_tokens", 0) for u in usages]),
        "completion_tokens_per_item": _mean([u.get("completion_tokens", 0) for u in usages]),
        "tokens_per_item": _mean([u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for u in usages]),
        "cost_usd": cost,
        "cost_per_item_usd": None if cost is None or not n else cost / n,
        "usd_per_correct": None if cost is None or not correct else cost / correct,
        "wall_s": entry.get("wall_s"),
        "latency_p50_s": percentile([u.get("wall_s", 0.0) for u in usages], 50),
        "latency_p95_s": percentile([u.get("wall_s", 0.0) for u in usages], 95),
    }
    totals = _totals(entry, records)
    if totals is not None:  # what the strategy says of the arm's records together (a cascade: stops per tier)
        summary["totals"], summary["totals_line"] = totals.figures, totals.line
    for key in ("cpu_s", "cached_calls"):  # from the cost and cache work, where records carry them
        total = _sum_known(records, key)
        if total is not None:
            summary[key] = total
    if baseline is not None and entry["name"] != "single":
        common = [r for r in records if str(r["id"]) in baseline]
        test = paired([bool((r.get("score") or {}).get("correct")) for r in common],
                      [baseline[str(r["id"])] for r in common])
        summary["vs_baseline"] = {"items": test.items, "difference": test.difference, "low": test.low,
                                  "high": test.high, "only_arm": test.only_arm, "only_baseline": test.only_baseline,
                                  "p_value": test.p_value}
    return summary


def _totals(entry: dict[str, Any], records: list[dict[str, Any]]) -> RunTotals | None:
    spec = catalog.find(str(entry.get("strategy")))
    if spec is None or spec.run_totals is None:
        return None
    return spec.run_totals([r.get("details") or {} for r in records if r.get("status") == "ok"])


def _rescored(record: dict[str, Any], scoring: str | None) -> dict[str, Any]:
    """The record scored again from its output and ``gold`` (so that a report follows the scoring rules
    of this version); a record without gold keeps the score it has."""
    gold = record.get("gold")
    if not isinstance(gold, dict) or "answer" not in gold or not scoring:
        return record
    return {**record, "score": score_record(record, str(gold["answer"]), scoring)}


def summarise(run_dir: Path) -> dict[str, Any]:
    """The summary of a run directory, from its records alone."""
    meta = load_meta(run_dir)
    wanted = set(meta.get("items", []))
    base_name = meta.get("baseline", "single")
    loaded: dict[str, list[dict[str, Any]]] = {}
    for entry in meta["arms"]:
        found = read_records(arm_file(run_dir, entry["name"]))
        loaded[entry["name"]] = [_rescored(r, meta.get("scoring")) for key, r in found.items()
                                 if not wanted or key in wanted]
    base_records = loaded.get(base_name, [])
    baseline = {str(r["id"]): bool((r.get("score") or {}).get("correct")) for r in base_records} or None
    arms, skipped = [], []
    for entry in meta["arms"]:
        if entry.get("skipped"):
            skipped.append({"name": entry["name"], "strategy": entry["strategy"], "reason": entry["skipped"]})
        elif loaded[entry["name"]]:
            arms.append(arm_summary(entry, loaded[entry["name"]], baseline))
    known = bool(arms) and all(a["cost_per_item_usd"] is not None for a in arms)
    paid = known and any(a["cost_per_item_usd"] > 0 for a in arms)
    axis = "cost_per_item_usd" if paid else "tokens_per_item"  # free models (all $0): tokens tell the arms apart
    marks = pareto([(a["accuracy"] or 0.0, a[axis]) for a in arms])
    for arm, mark in zip(arms, marks):
        arm["pareto"] = mark
    return {"dataset": meta.get("dataset"), "format": meta.get("format"), "scoring": meta.get("scoring"),
            "items": len(wanted), "baseline": base_name, "cost_axis": axis, "arms": arms, "skipped": skipped}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _per_correct(arm: dict) -> str:
    """Dollars per correct answer: n/a where none was correct (a known cost over nothing right)."""
    if arm["cost_usd"] is not None and not arm["correct"]:
        return "n/a"
    return usd(arm["usd_per_correct"])


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


COLUMNS = ["arm", "accuracy (95% CI)", "vs single (95% CI)", "p", "unextracted", "failed", "calls/item",
           "prompt tok/item", "completion tok/item", "cost $", "$/correct", "wall s", "p50 s", "p95 s", "frontier"]


def rows(summary: dict[str, Any]) -> list[list[str]]:
    table = []
    for arm in summary["arms"]:
        vs = arm.get("vs_baseline")
        name = arm["name"] + (f" (recount of {arm['recount_of']})" if arm.get("recount_of") else "")
        table.append([
            name,
            f"{_pct(arm['accuracy'])} [{_pct(arm['accuracy_low'])}, {_pct(arm['accuracy_high'])}] ({arm['correct']}/{arm['items']})",
            "baseline" if vs is None else f"{100 * vs['difference']:+.1f} [{100 * vs['low']:+.1f}, {100 * vs['high']:+.1f}]",
            "" if vs is None else p_value(vs["p_value"]),
            str(arm["unextracted"]), str(arm["failed"]), _num(arm["calls_per_item"], 1),
            _num(arm["prompt_tokens_per_item"], 0), _num(arm["completion_tokens_per_item"], 0),
            usd(arm["cost_usd"]), _per_correct(arm), _num(arm["wall_s"], 1),
            _num(arm["latency_p50_s"]), _num(arm["latency_p95_s"]), "*" if arm.get("pareto") else "",
        ])
    return table


def markdown(summary: dict[str, Any], chart: str | None) -> str:
    axis = "dollars per item" if summary["cost_axis"] == "cost_per_item_usd" else \
        "tokens (prompt + completion) per item, as no arm has a known dollar cost above zero"
    lines = [f"# ensemble bench: {summary['dataset']}", "",
             f"{count(summary['items'], 'item')} ({summary['format']}), scored by `{summary['scoring']}`; baseline: "
             f"`{summary['baseline']}` (the first member, one greedy call).", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(summary)]
    lines += ["",
              "- accuracy: 95% Wilson interval; vs single: difference in accuracy points on the same items, with a "
              "95% paired bootstrap interval, and p: exact McNemar test (two-sided binomial test on the items "
              "where exactly one of the two is right).",
              "- unextracted: no answer could be extracted (from the output, or by the strategy from any reply); "
              "failed: the calls failed. Both count as wrong.",
              f"- frontier (*): not beaten on both accuracy and cost by another arm; cost axis: {axis}.",
              "- cost: the sum of the records' `usage.cost_usd`; unknown when any record does not know its price "
              "(never counted as free). wall s: the arm's time in the run (arms run at the same time and share "
              "the model); p50/p95: per item."]
    recounts = [a for a in summary["arms"] if a.get("recount_of")]
    if recounts:
        lines.append("- recounts: " + ", ".join(f"`{a['name']}` recounts the samples of `{a['recount_of']}` "
                                              f"with `{a['method']}` (0 new calls; its calls are those samples)"
                                              for a in recounts) + ".")
    for arm in summary["arms"]:
        for note in arm.get("notes", []):
            lines.append(f"- {arm['name']}: {note}")
        if arm.get("totals_line"):
            lines.append(f"- {arm['name']}: {arm['totals_line']}")
    for skip in summary["skipped"]:
        lines.append(f"- skipped `{skip['name']}` ({skip['strategy']}): {skip['reason']}")
    if chart:
        lines += ["", f"![accuracy against cost]({chart})"]
    return "\n".join(lines) + "\n"


def rich_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"bench: {summary['dataset']} ({count(summary['items'], 'item')}, {summary['scoring']})")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows(summary):
        table.add_row(*row)
    lines = [f"{arm['name']}: {arm['totals_line']}" for arm in summary["arms"] if arm.get("totals_line")]
    if lines:
        table.caption = "\n".join(lines)
    return table


def write_report(run_dir: Path) -> dict[str, Any]:
    """Write summary.json, report.md and the chart into ``run_dir``; returns the summary."""
    from .chart import draw

    summary = summarise(run_dir)
    chart = draw(summary, run_dir / CHART) if summary["arms"] else None
    (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (run_dir / REPORT).write_text(markdown(summary, CHART if chart else None), encoding="utf-8")
    return summary
