"""A bench config becomes arms: named run configs, the baseline first, each checked before any call.

A bench YAML holds the run keys every arm shares (provider, model, members, max_tokens, seed, ...) at
the top, ``score`` (auto, number, choice, exact, contains) and ``arms``: a list of ``{name, strategy,
...run keys}`` merged over the shared keys. The baseline arm ``single`` is always added first: the first
member once, greedy (a ``vote`` with one member, one sample, temperature 0, extract ``text``, so its
record's output is the reply itself). Without ``arms``, the default arms are vote (self-consistency),
moa-lite, cot-decode and committee; on the default embedded model with the second one installed (the
``pool`` extra), vote, moa-lite and committee pool both models (``pooled_members``). Vote arms that differ only in a counting method that needs no
extra call (majority, weighted, confidence) share one set of samples: one of them runs, the others are
recounted from its records (``revote``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import catalog
from ..config import RunConfig, config_data, deep_merge, format_validation_error, spelled
from ..errors import ConfigError
from . import math_scoring
from .scoring import SCORINGS

BASELINE = "single"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BENCH_KEYS = ("arms", "score", "judge")
RUN_ONLY = ("prompt", "input", "output", "resume", "strategy")
"""Keys the bench sets itself for every arm."""
COUNTING = ("majority", "weighted", "confidence")
COMMITTEE_SYSTEMS = (None, "You are a careful math tutor. Think briefly, then give the answer.",
                     "You answer briefly and precisely.")
"""System prompts that make three distinct committee members out of one model."""
DEFAULT_SEED = 7
POOL = ("smollm2", "gemma3-270m")
"""The embedded models the default vote, moa-lite and committee arms pool, where both are installed."""


def pooled_members(base: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Both embedded models as members, where the bench runs on the default embedded model (no members, no
    other model or provider) and the second model is installed (the ``pool`` extra); else None."""
    from ..providers.local_models import named

    if base.get("members") or base.get("provider", "local") != "local" or base.get("model") not in (None, POOL[0]):
        return None
    second = named(POOL[1])
    if second is None or not second.installed():
        return None
    return [{"name": name, "provider": "local", "model": name} for name in POOL]


@dataclass
class Arm:
    """One arm: its name, strategy and full run config; or why it is skipped; or whose samples it recounts."""

    name: str
    strategy: str
    config: RunConfig | None
    raw: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    recount_of: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def method(self) -> str | None:
        return self.config.settings_for("vote").method if self.config is not None and self.strategy == "vote" else None


@dataclass
class BenchPlan:
    arms: list[Arm]
    scoring: str
    base: dict[str, Any]
    judge: dict[str, Any] | None = None
    """The member that judges free-text answers (``score: judge``)."""


def _validate(data: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def _first_member(base: dict[str, Any]) -> dict[str, Any]:
    members = base.get("members") or [{}]
    first = dict(members[0]) if isinstance(members[0], dict) else {}
    return first


def baseline(base: dict[str, Any]) -> dict[str, Any]:
    """The baseline: the first member, one greedy call, its reply as the output."""
    member = {**_first_member(base), "temperature": 0.0}
    return deep_merge(base, {"strategy": "vote", "members": [member], "n": 1, "temperature": 0.0,
                             "vote": {"samples": 1, "rounds": 1, "extract": "text", "method": "majority"}})


def default_arms(base: dict[str, Any], extract: str) -> list[tuple[str, dict[str, Any], list[str]]]:
    """The default arms (name, arm keys, notes), before any capability check."""
    seed = base.get("seed", DEFAULT_SEED)
    members = [m for m in base.get("members") or [] if isinstance(m, dict)]
    pool = pooled_members(base)
    pooled = [f"the pool: {' and '.join(POOL)}, both in-process"] if pool else []
    vote: dict[str, Any] = {"strategy": "vote", "temperature": 0.7, "seed": seed,
                            "vote": {"samples": 5, "extract": extract, "method": "majority"}}
    if pool:
        members = pool
        vote["members"] = pool
    arms: list[tuple[str, dict[str, Any], list[str]]] = [("vote", vote, list(pooled))]
    moa: dict[str, Any] = {"strategy": "moa", "seed": seed, "moa": {"layers": 1, "max_reference_chars": 300}}
    if pool:
        moa["members"] = pool
    elif len(members) < 2:
        moa["n"] = 2
    arms.append(("moa-lite", moa, list(pooled)))
    arms.append(("cot-decode", {"strategy": "cot-decode", "cot-decode": {"k": 5, "extract": extract}}, []))
    committee: dict[str, Any] = {"strategy": "committee"}
    notes: list[str] = list(pooled)
    if len(members) < 3:
        first = members[0] if members else {}
        padded = list(members)
        for index, system in enumerate(COMMITTEE_SYSTEMS[len(members):], start=len(members) + 1):
            padded.append({**first, "name": f"c{index}", **({"system": system} if system else {})})
        committee["members"] = padded[:3]
        notes.append(f"{len(members) or 1} member(s) listed; the others are the first member with "
                     "its own system prompt, so that the three members are distinct")
    else:
        committee["members"] = members[:3]
    arms.append(("committee", committee, notes))
    return arms


def extract_for(scoring: str) -> str:
    """The extractor vote and cot-decode arms vote with: the scoring's own, the last \\boxed{} for math
    (math answers are boxed by convention; the vote groups box contents, math-verify scores them), else text."""
    if scoring == "math":
        return "boxed"
    return scoring if scoring in ("number", "choice") else "text"


def _with_extract(arm: dict[str, Any], extract: str) -> dict[str, Any]:
    """A vote or cot-decode arm that names no extractor gets the one the scoring uses."""
    spec = catalog.find(str(arm.get("strategy")))
    if spec is not None and "extract" in spec.settings.model_fields:
        section = arm.get(spec.name)
        if not isinstance(section, dict) or "extract" not in section:
            return deep_merge(arm, {spec.name: {"extract": extract}})
    return arm


def load_plan(path: Path | None, scoring_default: str, overrides: dict[str, Any] | None = None) -> BenchPlan:
    """Read a bench YAML (or none: the defaults) into the arms to run; every arm's config is validated."""
    data = config_data(path)  # as every front end loads a config: the environment's defaults under the YAML
    source = str(path) if path is not None else "bench defaults"
    for key in RUN_ONLY:
        if key in data:
            raise ConfigError(f"{source}: {key}: the bench sets this itself for each arm; remove it "
                              "(prompts come from --dataset, records go to the run directory)")
    arms_raw = data.pop("arms", None)
    judge = data.pop("judge", None)
    scoring = data.pop("score", "auto")
    if scoring == "auto":
        scoring = scoring_default
    if scoring not in SCORINGS:
        raise ConfigError(f"{source}: score: {scoring!r} is not one of auto, {', '.join(SCORINGS)}")
    if scoring == "math":
        math_scoring.check_available()
    if scoring == "judge":
        if not isinstance(judge, dict):
            raise ConfigError(f"{source}: judge: score: judge needs a judge member, e.g. judge: {{provider: ..., "
                              "model: ...}")
        _validate({**data, "members": [judge]}, f"{source}: judge")
    base = deep_merge(data, overrides or {})
    _validate(base, source)
    extract = extract_for(scoring)
    arms = [Arm(BASELINE, "vote", _validate(baseline(base), f"{source}: the baseline arm"), raw=baseline(base))]
    if arms_raw is None:
        listed = default_arms(base, extract)
    else:
        if not isinstance(arms_raw, list) or not all(isinstance(a, dict) for a in arms_raw):
            raise ConfigError(f"{source}: arms: must be a list of mappings, each with a name and a strategy")
        listed = []
        for index, entry in enumerate(arms_raw):
            where = f"{source}: arms[{index}]"
            entry = dict(entry)
            name = entry.pop("name", None)
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise ConfigError(f"{where}.name: give each arm a name of letters, digits, '.', '_' or '-'")
            if name == BASELINE:
                raise ConfigError(f"{where}.name: '{BASELINE}' is the baseline the bench adds itself; name this arm otherwise")
            if "strategy" not in entry:
                raise ConfigError(f"{where}.strategy: missing; one of {', '.join(catalog.names())}")
            for key in ("prompt", "input", "output", "resume"):
                if key in entry:
                    raise ConfigError(f"{where}.{key}: the bench sets this itself; remove it")
            listed.append((name, spelled(entry), []))
    seen = {BASELINE}
    for index, (name, entry, notes) in enumerate(listed):
        if name in seen:
            raise ConfigError(f"{source}: arms[{index}].name: '{name}' is used twice")
        seen.add(name)
        merged = deep_merge(base, _with_extract(entry, extract))
        config = _validate(merged, f"{source}: arm '{name}'")
        arms.append(Arm(name, str(merged["strategy"]), config, raw=merged, notes=list(notes)))
    _share_samples(arms)
    return BenchPlan(arms, scoring, base, judge if scoring == "judge" else None)


def _sample_key(arm: Arm) -> str | None:
    """What a vote arm's samples depend on: everything but a counting method that needs no calls."""
    if arm.config is None or arm.strategy != "vote" or arm.config.settings_for("vote").rounds != 1:
        return None
    if arm.config.settings_for("vote").method not in COUNTING:
        return None
    shaped = arm.config.model_dump(mode="json", by_alias=True)
    shaped["vote"].pop("method")
    return json.dumps(shaped, sort_keys=True, default=str)


def _share_samples(arms: list[Arm]) -> None:
    """Among vote arms that differ only in counting method, one runs and the others recount its samples.
    The one that runs is a confidence arm where there is one (it asks for the log-probabilities the others
    do not need), else the first."""
    groups: dict[str, list[Arm]] = {}
    for arm in arms:
        key = _sample_key(arm)
        if key is not None:
            groups.setdefault(key, []).append(arm)
    for group in groups.values():
        if len(group) < 2:
            continue
        runner = next((a for a in group if a.method == "confidence"), group[0])
        for arm in group:
            if arm is not runner:
                arm.recount_of = runner.name
