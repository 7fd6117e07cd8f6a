"""Runs one strategy over a batch of prompts: bounded concurrency, one record per prompt as it finishes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence

from .errors import CapabilityError, ConfigError, EnsembleError, ExitStatus, ProviderError, StrategyError
from .events import EventBus, Emit, PromptFailed, PromptFinished, PromptStarted
from .inputs import PromptItem
from .records import SCHEMA_VERSION, RecordWriter
from .strategies.base import StrategyResult, Tally

RunOne = Callable[[PromptItem, Emit], Awaitable[StrategyResult]]
FATAL = (ConfigError, CapabilityError)
"""Errors that would fail every prompt the same way: they stop the run instead of being recorded."""


@dataclass
class BatchOutcome:
    ok: int = 0
    failed: int = 0
    errors: list[EnsembleError] = field(default_factory=list)

    def exit_status(self) -> ExitStatus:
        if not self.failed:
            return ExitStatus.OK
        if self.ok:
            return ExitStatus.PARTIAL
        return self.errors[0].exit_status if self.errors else ExitStatus.ERROR


def build_record(
    *, run_id: str, strategy: str, item: PromptItem, members: Sequence[dict[str, Any]],
    result: StrategyResult | None, tally: Tally | None, errors: Sequence[str],
    partial: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tally = result.tally if result is not None else (tally or Tally())
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "strategy": strategy,
        "id": item.id,
        "status": "ok" if result is not None and not errors else "error",
        "input": item.as_record(),
        "output": result.output if result is not None else None,
        "details": result.details if result is not None else (partial or {}),
        "members": list(members),
        "usage": tally.as_dict(),
        "errors": list(errors) + (result.errors if result is not None else []),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


async def run_batch(
    items: Sequence[PromptItem],
    run_one: RunOne,
    *,
    strategy: str,
    run_id: str,
    members: Sequence[dict[str, Any]],
    writer: RecordWriter,
    bus: EventBus,
    parallel: int,
) -> BatchOutcome:
    outcome = BatchOutcome()
    limiter = asyncio.Semaphore(parallel)

    async def one(item: PromptItem) -> None:
        async with limiter:
            bus.emit(PromptStarted(item.id, item.text))
            started = Tally(started=time.perf_counter())
            try:
                result = await run_one(item, bus.emit)
            except FATAL:
                raise
            except (ProviderError, StrategyError) as exc:
                record = build_record(run_id=run_id, strategy=strategy, item=item, members=members,
                                      result=None, tally=started, errors=[str(exc)],
                                      partial=getattr(exc, "details", None))
                writer.write(record)
                outcome.failed += 1
                outcome.errors.append(exc)
                bus.emit(PromptFailed(item.id, str(exc)))
                return
            record = build_record(run_id=run_id, strategy=strategy, item=item, members=members,
                                  result=result, tally=None, errors=[])
            writer.write(record)
            outcome.ok += 1
            bus.emit(PromptFinished(item.id, record))

    tasks = [asyncio.create_task(one(item)) for item in items]
    try:
        for task in asyncio.as_completed(tasks):
            await task
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outcome
