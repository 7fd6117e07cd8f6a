"""`bench tune`: choose the cheapest setting that keeps the accuracy, from a bench's records alone.

Every arm that ran, every replayed setting (``replay.py``: fixed votes stopped adaptively, two-arm
cascades, fitted member weights) is scored on the tuning items; the reference is the most accurate arm
there (or the one named). Of the settings within ``tolerance`` points of the reference's accuracy, the
cheapest is chosen (dollars per item where every cost is known and some is not zero, else tokens per
item). The items are split first (``holdout``, seeded): the choice is made on one part and reported on
the other, beside every arm that ran, with the paired interval and McNemar test the bench uses, so that
a saving is shown to hold out of sample. No call is made.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..config import MemberConfig
from ..errors import ConfigError
from ..formatting import count, usd
from ..strategies.cascade import SPEC as CASCADE
from . import replay
from .arms import extract_for
from .report import _rescored
from .runner import arm_file, load_meta, read_records
from .stats import paired, wilson

TUNE_JSON = "tune.json"
TUNE_REPORT = "tune.md"
TUNE_CHART = "tune.png"


def split(ids: Sequence[str], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """(tuning ids, held-out ids): a seeded shuffle, ``holdout`` of the items held out (at least one of each
    part where there are two items or more and holdout > 0)."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    held = round(len(order) * holdout)
    if holdout > 0 and len(order) >= 2:
        held = min(max(held, 1), len(order) - 1)
    return sorted(order[held:]), sorted(order[:held])


@dataclass
class Scored:
    """A setting's accuracy and cost on some items."""

    items: int
    correct: int
    cost_per_item_usd: float | None
    tokens_per_item: float
    tiers: dict[str, float] | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.items if self.items else 0.0

    def as_dict(self) -> dict[str, Any]:
        low, high = wilson(self.correct, self.items)
        found: dict[str, Any] = {"items": self.items, "correct": self.correct, "accuracy": self.accuracy,
                                 "accuracy_low": low, "accuracy_high": high,
                                 "cost_per_item_usd": self.cost_per_item_usd, "tokens_per_item": self.tokens_per_item}
        if self.tiers is not None:
            found["answered_by_tier"] = self.tiers
        return found


def scored(setting: replay.Setting, ids: Sequence[str]) -> Scored:
    outcomes = [setting.outcomes[i] for i in ids if i in setting.outcomes]
    n = len(outcomes)
    costs = [o.cost_usd for o in outcomes]
    cost = None if not n or any(c is None for c in costs) else sum(c for c in costs if c is not None) / n
    tiers = None
    if setting.kind == "tiers" and n:
        tiers = {str(t): sum(1 for o in outcomes if o.tier == t) / n for t in (1, 2)}
    return Scored(n, sum(1 for o in outcomes if o.correct), cost, sum(o.tokens for o in outcomes) / n if n else 0.0,
                  tiers)


def settings_for(run_dir: Path, meta: dict[str, Any], tune_ids: Sequence[str]) -> list[replay.Setting]:
    """Every arm as it ran and every setting replayed from the arms' records."""
    scoring = str(meta.get("scoring"))
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in meta["arms"]:
        if not entry.get("skipped"):
            found = read_records(arm_file(run_dir, entry["name"]))
            if found:
                records[entry["name"]] = {key: _rescored(r, scoring) for key, r in found.items()}
    settings = [replay.as_ran(name, found) for name, found in records.items()]
    for name, found in records.items():
        if replay.restoppable(found):
            settings += [replay.adaptive(name, found, scoring, p) for p in replay.STOP_CONFIDENCES]
        if replay.restoppable(found) and replay.several_members(found):
            settings.append(replay.weighted(name, found, scoring, replay.fitted_weights(found, scoring, tune_ids)))
    ran = {s.name: s for s in settings if s.kind == "arm"}
    for first, first_records in records.items():
        if not replay.measurable(first_records):
            continue
        for then, then_records in records.items():
            if then == first or scored(ran[then], tune_ids).accuracy <= scored(ran[first], tune_ids).accuracy:
                continue  # a fallback must be better than the tier it backs
            settings += [replay.cascade(first, first_records, then, then_records, a) for a in replay.ACCEPTS]
    return settings


def _cost_axis(results: Sequence[Scored]) -> str:
    known = all(r.cost_per_item_usd is not None for r in results)
    return "cost_per_item_usd" if known and any((r.cost_per_item_usd or 0) > 0 for r in results) else "tokens_per_item"


def _cost(result: Scored, axis: str) -> float:
    value = result.cost_per_item_usd if axis == "cost_per_item_usd" else result.tokens_per_item
    return float(value or 0.0)


def tune(run_dir: Path, holdout: float = 0.3, seed: int = 0, tolerance: float = 0.0,
         target: str | None = None) -> dict[str, Any]:
    """The tuning of ``run_dir``: every setting scored on the tuning items, the one chosen, and how it and
    every arm do on the held-out items."""
    meta = load_meta(run_dir)
    ids = [str(i) for i in meta.get("items", [])]
    tune_ids, held_ids = split(ids, holdout, seed)
    settings = settings_for(run_dir, meta, tune_ids)
    arms = [s for s in settings if s.kind == "arm"]
    if not arms:
        raise ConfigError(f"{run_dir}: holds no records to tune from; run `ensemble bench` into it first")
    on_tune = {s.name: scored(s, tune_ids) for s in settings}
    axis = _cost_axis(list(on_tune.values()))
    if target is not None and target not in {a.name for a in arms}:
        raise ConfigError(f"--target: no arm '{target}' in {run_dir}; its arms are {', '.join(a.name for a in arms)}")
    reference = target or max(arms, key=lambda a: (on_tune[a.name].accuracy, -_cost(on_tune[a.name], axis))).name
    floor = on_tune[reference].accuracy - tolerance / 100
    keeping = [s for s in settings if on_tune[s.name].accuracy >= floor - 1e-12]
    chosen = min(keeping, key=lambda s: (_cost(on_tune[s.name], axis), -on_tune[s.name].accuracy, s.name))
    evaluated = held_ids or tune_ids
    reported = [chosen, *[a for a in arms if a.name != chosen.name]]
    by_name = {s.name: s for s in settings}
    held_out = []
    for setting in reported:
        entry = {"name": setting.name, "kind": setting.kind, **scored(setting, evaluated).as_dict()}
        if setting.name != reference:
            test = paired([by_name[setting.name].outcomes[i].correct for i in evaluated
                           if i in setting.outcomes and i in by_name[reference].outcomes],
                          [by_name[reference].outcomes[i].correct for i in evaluated
                           if i in setting.outcomes and i in by_name[reference].outcomes])
            entry["vs_reference"] = {"items": test.items, "difference": test.difference, "low": test.low,
                                     "high": test.high, "p_value": test.p_value}
        held_out.append(entry)
    return {
        "run_dir": str(run_dir), "dataset": meta.get("dataset"), "scoring": meta.get("scoring"),
        "holdout": holdout, "seed": seed, "tolerance_points": tolerance, "cost_axis": axis,
        "tune_items": tune_ids, "held_out_items": held_ids, "reference": reference,
        "chosen": {"name": chosen.name, "kind": chosen.kind, "params": chosen.params},
        "settings": [{"name": s.name, "kind": s.kind, "params": s.params, "keeps_accuracy": s in keeping,
                      **on_tune[s.name].as_dict()} for s in settings],
        "held_out": held_out,
    }


def _arm_config(meta: dict[str, Any], name: str) -> dict[str, Any]:
    entry = next((a for a in meta["arms"] if a["name"] == name), None)
    if entry is None or not isinstance(entry.get("config"), dict):
        raise ConfigError(f"run.json: arm '{name}' has no config (the bench that wrote it was older); run the "
                          "bench again to write a tuned config")
    return json.loads(json.dumps(entry["config"]))


MEMBER_KEYS = tuple(MemberConfig.model_fields)


def tuned_config(run_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The chosen setting as a run config that ``ensemble vote`` or ``ensemble cascade`` runs as it is."""
    meta = load_meta(run_dir)
    chosen = result["chosen"]
    params = chosen["params"]
    if chosen["kind"] == "arm":
        return _arm_config(meta, params["arm"])
    if chosen["kind"] == "adaptive":
        config = _arm_config(meta, params["arm"])
        config.setdefault(config["strategy"], {}).update({"adaptive": True, "stop_confidence": params["stop_confidence"],
                                              "min_samples": params["min_samples"], "step": params["step"]})
        return config
    if chosen["kind"] == "weights":
        config = _arm_config(meta, params["arm"])
        record = next(iter(read_records(arm_file(run_dir, params["arm"])).values()))
        config["members"] = [{**{k: v for k, v in m.items() if k in MEMBER_KEYS and v is not None},
                              "weight": params["weights"].get(m.get("name"), m.get("weight", 1.0))}
                             for m in record.get("members") or [] if m.get("role", "member") == "member"]
        config.pop("n", None)  # the members are listed one by one, copies included, each with its weight
        config.setdefault(config["strategy"], {})["method"] = "weighted"
        return config
    base = meta.get("base") or {}
    tiers = [{key: value for key, value in _arm_config(meta, name).items() if base.get(key) != value}
             for name in params["tiers"]]  # the keys every arm shares go to the top, where each tier inherits them
    return {**base, "strategy": CASCADE.name,
            CASCADE.name: {"tiers": tiers, "accept": params["accept"], "extract": extract_for(str(meta.get("scoring")))}}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _money(entry: dict[str, Any], axis: str) -> str:
    if axis == "cost_per_item_usd":
        return usd(entry["cost_per_item_usd"])
    return f"{entry['tokens_per_item']:.0f} tok"


def held_out_rows(result: dict[str, Any]) -> list[list[str]]:
    axis = result["cost_axis"]
    table = []
    for entry in result["held_out"]:
        vs = entry.get("vs_reference")
        roles = [role for role, named in (("chosen", result["chosen"]["name"]), ("reference", result["reference"]))
                 if entry["name"] == named]
        name = entry["name"] + (f" ({', '.join(roles)})" if roles else "")
        table.append([name, entry["kind"], f"{_pct(entry['accuracy'])} ({entry['correct']}/{entry['items']})",
                      "reference" if vs is None else
                      f"{100 * vs['difference']:+.1f} [{100 * vs['low']:+.1f}, {100 * vs['high']:+.1f}]",
                      "" if vs is None else f"{vs['p_value']:.3g}", _money(entry, axis),
                      ", ".join(f"tier {t}: {_pct(s)}" for t, s in (entry.get("answered_by_tier") or {}).items())])
    return table


HELD_OUT_COLUMNS = ["setting", "kind", "accuracy", "vs reference (95% CI)", "p", "cost per item", "answered by"]


def markdown(result: dict[str, Any]) -> str:
    axis = result["cost_axis"]
    part = (count(len(result["held_out_items"]), "held-out item") if result["held_out_items"]
            else "the tuning items themselves (no held-out items: --holdout 0)")
    lines = [f"# ensemble bench tune: {result['dataset']}", "",
             f"Tuned on {count(len(result['tune_items']), 'item')}, reported on {part} (split seed {result['seed']}); "
             f"reference: `{result['reference']}`, tolerance {result['tolerance_points']:g} points; "
             f"chosen: `{result['chosen']['name']}`, the cheapest setting that keeps the reference's accuracy "
             "on the tuning items.", "",
             "## Held out", "",
             "| " + " | ".join(HELD_OUT_COLUMNS) + " |", "|" + "|".join("---" for _ in HELD_OUT_COLUMNS) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in held_out_rows(result)]
    lines += ["", "## Every setting, on the tuning items", "",
              "| setting | kind | accuracy | cost per item | keeps accuracy |", "|---|---|---|---|---|"]
    for entry in sorted(result["settings"], key=lambda e: (_cost_value(e, axis), -e["accuracy"])):
        lines.append(f"| {entry['name']} | {entry['kind']} | {_pct(entry['accuracy'])} ({entry['correct']}/"
                     f"{entry['items']}) | {_money(entry, axis)} | {'yes' if entry['keeps_accuracy'] else ''} |")
    lines += ["", "- adaptive: a fixed vote arm stopped by the Beta rule at that posterior; its tokens and cost are "
                  "the arm's scaled by the replies an adaptive vote would have drawn.",
              "- A>B@x: a cascade, arm A first, arm B where A's confidence is below x; an escalated item costs both.",
              "- @weights: the arm's samples recounted with member weights fitted on the tuning items "
              "(log-odds of each member's accuracy).",
              "- vs reference: difference in accuracy points on the same items, 95% paired bootstrap interval; "
              "p: exact McNemar test.", "", f"![accuracy against cost]({TUNE_CHART})"]
    return "\n".join(lines) + "\n"


def _cost_value(entry: dict[str, Any], axis: str) -> float:
    return float(entry.get(axis) or 0.0)


def draw(result: dict[str, Any], path: Path) -> Path:
    """Accuracy against cost on the tuning items for every setting; arms as squares, the chosen one starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = result["cost_axis"]
    figure, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    styles = {"arm": ("s", "tab:blue"), "adaptive": ("o", "tab:green"), "tiers": ("^", "tab:orange"),
              "weights": ("D", "tab:purple")}
    for kind, (marker, colour) in styles.items():
        points = [(_cost_value(e, axis), 100 * e["accuracy"]) for e in result["settings"] if e["kind"] == kind]
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, color=colour, alpha=0.7,
                       label=kind if kind != "arm" else "arm as it ran")
    for entry in result["settings"]:
        if entry["kind"] == "arm":
            ax.annotate(entry["name"], (_cost_value(entry, axis), 100 * entry["accuracy"]),
                        textcoords="offset points", xytext=(6, 4), fontsize=8)
    chosen = next(e for e in result["settings"] if e["name"] == result["chosen"]["name"])
    ax.scatter([_cost_value(chosen, axis)], [100 * chosen["accuracy"]], marker="*", s=320, color="tab:red",
               zorder=5, label=f"chosen: {chosen['name']}")
    ax.set_xlabel("cost per item (USD)" if axis == "cost_per_item_usd" else "tokens per item (prompt + completion)")
    ax.set_ylabel("accuracy on the tuning items (%)")
    ax.set_ylim(-2, 102)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"bench tune: {result['dataset']}, {len(result['tune_items'])} tuning items")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_tuning(run_dir: Path, result: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """tune.json, tune.md and tune.png into ``run_dir``, and the chosen setting's run config at ``config_path``."""
    config = tuned_config(run_dir, result)
    header = (f"# written by `ensemble bench tune {run_dir}`: {result['chosen']['name']}, the cheapest setting "
              f"that keeps the accuracy of '{result['reference']}'\n")
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (run_dir / TUNE_JSON).write_text(json.dumps({**result, "config": config}, indent=2) + "\n", encoding="utf-8")
    (run_dir / TUNE_REPORT).write_text(markdown(result), encoding="utf-8")
    draw(result, run_dir / TUNE_CHART)
    return config

