"""Scoring free text with a judge member (``score: judge``): one call per answer, through a Session.

For each arm's records still without a verdict, the judge is asked whether the answer means the same as
the gold answer; the run is an ordinary one-member ``vote`` whose extractor takes ``yes`` or ``no``, so
its calls are accounted, cached and budgeted like any other. The verdicts are written back into the
arm's records, so ``bench report`` re-renders them without a call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import MemberConfig
from ..strategies.vote import SPEC as VOTE, VoteSettings
from ..inputs import PromptItem
from ..calls import Message
from ..providers.registry import ProviderRegistry
from ..records import RecordWriter
from ..session import Session
from ..sinks.collect import Collector
from .arms import BenchPlan
from .datasets import BenchItem

VERDICT = r"regex:\b(yes|no)\b"
VERDICT_TOKENS = 8
PROMPT = ("Question:\n{question}\n\nReference answer:\n{gold}\n\nCandidate answer:\n{answer}\n\n"
          "Does the candidate answer give the same answer as the reference answer? Reply with one word: yes or no.")


def question(item: BenchItem) -> str:
    return item.prompt_item().text


async def judge_arm(plan: BenchPlan, path: Path, items: dict[str, BenchItem], registry: ProviderRegistry) -> int:
    """Ask the judge about every answered record of one arm file that has no verdict; returns how many."""
    from .runner import read_records

    assert plan.judge is not None and plan.arms[0].config is not None
    records = read_records(path)
    pending = {key: record for key, record in records.items()
               if key in items and (record.get("score") or {}).get("extracted")
               and not (record.get("score") or {}).get("judged")}
    if not pending:
        return 0
    config = plan.arms[0].config.model_copy(update={
        "members": [MemberConfig.model_validate(plan.judge)], "n": 1, "temperature": 0.0,
        "max_tokens": VERDICT_TOKENS, "strategy": None, "output": None, "resume": False, "prompt": None,
        "input": None}).with_settings(VOTE.name, VoteSettings(extract=VERDICT))
    asks = [PromptItem(key, (Message("user", PROMPT.format(question=question(items[key]), gold=items[key].answer,
                                                           answer=record["score"]["predicted"])),))
            for key, record in pending.items()]
    collector = Collector()
    async with Session(config, registry=registry) as session:
        await session.run(session.prepare(VOTE.name), asks, [collector])
    verdicts = {str(r["id"]): r for r in collector.records}
    for key, record in pending.items():
        verdict = verdicts.get(key)
        if verdict is None or verdict.get("status") != "ok":
            continue
        said = str((verdict.get("details") or {}).get("winner") or "")
        record["score"] = {**record["score"], "judged": True, "correct": said == "yes",
                           "judge_reply": verdict.get("output")}
    rewrite(path, records)
    return len(pending)


def rewrite(path: Path, records: dict[str, dict[str, Any]]) -> None:
    """Replace an arm file by its records (one per id), atomically."""
    temporary = path.with_suffix(".jsonl.tmp")
    temporary.unlink(missing_ok=True)
    with RecordWriter(str(temporary)) as writer:
        for record in records.values():
            writer.write(record)
    os.replace(temporary, path)
