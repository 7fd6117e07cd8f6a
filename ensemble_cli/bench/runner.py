"""Runs a bench plan: every arm through its own ``Session`` over one shared provider registry, concurrently.

Arms run at once and each runs ``parallel_prompts`` items at a time; the shared registry keeps one
concurrency bound per endpoint (``max_concurrency``) for all arms together, and the embedded model runs
one decode at a time. Each arm appends its records, with ``gold`` and ``score`` added, to
``RUN_DIR/records/ARM.jsonl``; ``--resume`` skips what an arm file already holds (``Session.pending``).
Arms that recount another arm's samples are written from its records after the runs, with no call.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import CapabilityError, ConfigError
from ..inputs import json_problem
from ..events import Event
from ..providers.registry import ProviderRegistry
from ..records import RecordWriter, parse_records
from ..sinks.jsonl import RecordSink
from ..strategies.vote_recount import revote_record
from ..session import Prepared, Session
from .arms import BASELINE, Arm, BenchPlan
from .datasets import BenchItem, Dataset
from .scoring import score_record

RUN_FILE = "run.json"
RECORDS = "records"


def arm_file(run_dir: Path, name: str) -> Path:
    return run_dir / RECORDS / f"{name}.jsonl"


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """The records of an arm file by id: the last ok record of each id, else its last record.
    Damaged lines (a kill mid-write) are skipped."""
    found: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return found
    for record in parse_records(path.read_bytes()):
        key = str(record["id"])
        if record.get("status") == "ok" or found.get(key, {}).get("status") != "ok":
            found[key] = record
    return found


def scored(record: dict[str, Any], item: BenchItem, scoring: str) -> dict[str, Any]:
    return {**record, "gold": item.gold(), "score": score_record(record, item.answer, scoring)}


class ScoredRecords(RecordSink):
    """The arm's JSONL sink: each record with its gold answer and score."""

    def __init__(self, path: Path, items: dict[str, BenchItem], scoring: str) -> None:
        super().__init__(str(path))
        self.items = items
        self.scoring = scoring

    def shape(self, record: dict[str, Any]) -> dict[str, Any]:
        return scored(record, self.items[str(record["id"])], self.scoring)


def load_meta(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: not a bench run directory (no {RUN_FILE})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: the bench run file is not valid JSON ({json_problem(exc)})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the bench run file ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("arms"), list):
        raise ConfigError(f"{path}: not a bench run file (no 'arms' list)")
    return meta


def _meta(plan: BenchPlan, dataset: Dataset, items: Sequence[BenchItem], previous: dict[str, Any] | None) -> dict[str, Any]:
    walls = {a["name"]: a.get("wall_s", 0.0) for a in (previous or {}).get("arms", [])}
    return {
        "dataset": dataset.name,
        "format": dataset.format,
        "scoring": plan.scoring,
        "baseline": BASELINE,
        "items": [item.id for item in items],
        "base": plan.base,
        "arms": [{"name": a.name, "strategy": a.strategy, "method": a.method, "skipped": a.skipped,
                  "recount_of": a.recount_of, "notes": a.notes, "file": f"{RECORDS}/{a.name}.jsonl",
                  "wall_s": walls.get(a.name, 0.0), "config": a.raw} for a in plan.arms],
    }


def _write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    temporary = run_dir / (RUN_FILE + ".tmp")
    temporary.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    temporary.replace(run_dir / RUN_FILE)


ProgressFor = Callable[[str, int, int], Callable[[Event], None]]
"""Given an arm's name, its items to run and those already done, the sink that shows its progress."""


async def run_bench(plan: BenchPlan, dataset: Dataset, items: Sequence[BenchItem], run_dir: Path, resume: bool,
                    progress: ProgressFor, registry: ProviderRegistry | None = None) -> dict[str, Any]:
    """Run every arm of ``plan`` over ``items`` into ``run_dir``; returns the run's meta (also in run.json)."""
    previous = None
    if (run_dir / RUN_FILE).exists():
        if not resume:
            raise ConfigError(f"{run_dir}: already holds a bench run; pass --resume to continue it, "
                              "or -o another directory")
        previous = load_meta(run_dir)
        if previous.get("scoring") != plan.scoring:
            raise ConfigError(f"{run_dir}: was scored by {previous.get('scoring')}, this bench by {plan.scoring}; "
                              "use another -o directory")
    shared = registry or ProviderRegistry(plan.arms[0].config)  # type: ignore[arg-type]
    by_id = {item.id: item for item in items}
    prompts = [item.prompt_item() for item in items]
    runs: list[tuple[Arm, Session, Prepared, list, list[str]]] = []
    for arm in plan.arms:
        if arm.recount_of is not None or arm.skipped is not None:
            continue
        assert arm.config is not None
        config = arm.config.model_copy(update={"output": str(arm_file(run_dir, arm.name)), "resume": True,
                                               "strategy": None})
        session = Session(config, registry=shared)  # one registry: one concurrency bound per endpoint across arms
        try:
            prepared = session.prepare(arm.strategy)
        except CapabilityError as exc:
            arm.skipped = str(exc)
            await session.aclose()
            continue
        todo, notes = session.pending(prepared, prompts)
        runs.append((arm, session, prepared, todo, notes))
    meta = _meta(plan, dataset, items, previous)
    _write_meta(run_dir, meta)
    walls: dict[str, float] = {}

    async def one(arm: Arm, session: Session, prepared: Prepared, todo: list, notes: list[str]) -> None:
        started = time.perf_counter()
        with ScoredRecords(arm_file(run_dir, arm.name), by_id, plan.scoring) as records:
            shown = progress(arm.name, len(todo), len(prompts) - len(todo))
            await session.run(prepared, todo, [records, shown], [*arm.notes, *notes])
        walls[arm.name] = time.perf_counter() - started

    try:
        async with asyncio.TaskGroup() as group:
            for arm, session, prepared, todo, notes in runs:
                if todo:
                    group.create_task(one(arm, session, prepared, todo, notes))
    finally:
        for _, session, _, _, _ in runs:
            await session.aclose()  # the shared registry is closed by whoever made it, below
        for entry in meta["arms"]:
            entry["wall_s"] = round(entry["wall_s"] + walls.get(entry["name"], 0.0), 4)
        _write_meta(run_dir, meta)
        if registry is None:
            await shared.aclose()
    recount(plan, by_id, run_dir)
    if plan.judge is not None:
        await judge_all(plan, by_id, run_dir, registry)
    return meta


def plan_bench(plan: BenchPlan, items: Sequence[BenchItem]) -> list[dict[str, Any]]:
    """Each arm's dry-run plan over ``items`` (``dry_run.plan_run``), prepared as ``run_bench`` prepares it: no
    call, nothing written. A recounting arm makes no call; a skipped arm says why."""
    from ..dry_run import plan_run

    shared = ProviderRegistry(plan.arms[0].config)  # type: ignore[arg-type]
    prompts = [item.prompt_item() for item in items]
    plans: list[dict[str, Any]] = []
    for arm in plan.arms:
        if arm.recount_of is not None or arm.skipped is not None:
            plans.append({"arm": arm.name, "strategy": arm.strategy, "calls": 0, "cost_usd": 0.0,
                          "recount_of": arm.recount_of, "skipped": arm.skipped})
            continue
        assert arm.config is not None
        session = Session(arm.config.model_copy(update={"output": None, "strategy": None}), registry=shared)
        try:
            prepared = session.prepare(arm.strategy)
            plans.append({"arm": arm.name, **plan_run(session, prepared, prompts)})
        except CapabilityError as exc:
            plans.append({"arm": arm.name, "strategy": arm.strategy, "calls": 0, "cost_usd": 0.0,
                          "skipped": str(exc)})
        finally:
            session.close()
    return plans


async def judge_all(plan: BenchPlan, items: dict[str, BenchItem], run_dir: Path,
                    registry: ProviderRegistry | None) -> None:
    """The judge's verdicts on every arm's answers (``score: judge``)."""
    from .judge import judge_arm

    shared = registry or ProviderRegistry(plan.arms[0].config)  # type: ignore[arg-type]
    try:
        for arm in plan.arms:
            if arm.skipped is None and arm_file(run_dir, arm.name).exists():
                await judge_arm(plan, arm_file(run_dir, arm.name), items, shared)
    finally:
        if registry is None:
            await shared.aclose()


def recount(plan: BenchPlan, items: dict[str, BenchItem], run_dir: Path) -> int:
    """Write the recounting arms' records from their source arms' records (no call); returns how many."""
    written = 0
    for arm in plan.arms:
        if arm.recount_of is None or arm.method is None:
            continue
        source = read_records(arm_file(run_dir, arm.recount_of))
        done = {key for key, record in read_records(arm_file(run_dir, arm.name)).items() if record.get("status") == "ok"}
        with RecordWriter(str(arm_file(run_dir, arm.name))) as writer:
            for key, record in source.items():
                if key in done or key not in items:
                    continue
                fresh = revote_record(record, arm.method, f"{arm.recount_of}:{key}")
                writer.write(scored({k: v for k, v in fresh.items() if k not in ("gold", "score")},
                                    items[key], plan.scoring))
                written += 1
    return written
