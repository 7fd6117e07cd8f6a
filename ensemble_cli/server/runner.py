"""One request's run of an ensemble through a ``Session``: validated first, then run under a deadline.

A ``Job`` builds the request's run config (the ensemble's YAML plus the request's overrides), prepares
the strategy (every setting and member checked before any call), refuses parameters that would reach
no member, and runs the one prompt with a sink that forwards events to a queue, in order, for the
streaming response. Failures become ``ApiError``s: 400 for the request, 502 for members, 504 past the
deadline. The session shares the ensemble's provider registry, so upstream concurrency bounds hold
across requests (a routed ensemble's request has a registry of its own, closed when it ends).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from .. import catalog
from ..config import deep_merge
from ..errors import (
    AuthError, BudgetExceeded, CapabilityError, ConfigError, ContextLengthError, EnsembleError, NoAnswerError,
    ProviderError, render,
)
from ..events import Event, PromptFailed, PromptFinished
from ..secrets import redact
from ..session import Prepared, Session
from .served import Ensemble
from .errors import ApiError
from .requests import Plan, explain, request_name, request_path

NUDGE = 0.37
"""Added to a requested value to see whether it reaches any member (a value no config is likely to hold)."""


@dataclass(frozen=True)
class Finished:
    """The run ended with this record (``error`` set when it failed)."""

    record: dict[str, Any]
    error: ApiError | None = None
    cancelled: bool = False
    """The run was cancelled: its client went away, or the server shut down past its grace period."""


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        result = {part: result}
    return result


class Job:
    """One request's validated run; ``events`` receives every event and then a ``Finished``."""

    def __init__(self, ensemble: Ensemble, plan: Plan, deadline_s: float,
                 on_finished: Callable[[Finished], None] | None = None,
                 running: set[asyncio.Task[Any]] | None = None) -> None:
        self.ensemble = ensemble
        self.plan = plan
        self.deadline_s = deadline_s
        self.on_finished = on_finished
        self.running = running if running is not None else set()
        """The server's runs in flight (so that a shutdown can cancel them and see them end)."""
        self.spec = catalog.spec(ensemble.strategy)
        self.session, self.prepared = self._prepare(plan.overrides)
        self._check_honoured()
        self.events: asyncio.Queue[Event | Finished] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def _prepare(self, overrides: dict[str, Any]) -> tuple[Session, Prepared]:
        try:
            config = self.ensemble.config_with(overrides)
        except ValidationError as exc:
            raise explain(exc, self.spec) from None
        session = Session(config, registry=self.ensemble.registry_for(config))
        try:
            return session, session.prepare(self.spec.name)
        except (ConfigError, CapabilityError) as exc:
            raise ApiError(400, f"ensemble '{self.ensemble.name}': {exc.text(request_name)}",
                           param="model" if self.ensemble.route else None) from None

    def _check_honoured(self) -> None:
        """A requested parameter that no member would use (the spec's ``checked``) is refused, not dropped."""
        for field in self.spec.checked:
            path = request_path(self.spec, field)
            current: Any = self.plan.overrides
            for part in path:
                current = current.get(part) if isinstance(current, dict) else None
            if not isinstance(current, (int, float)):
                continue
            nudged = deep_merge(self.plan.overrides, _nested(path, current + (NUDGE if field == "temperature" else 1)))
            trial, other = self._prepare(nudged)
            trial.close()
            if [m.get(field) for m in self.prepared.info.members] == [m.get(field) for m in other.info.members]:
                raise ApiError(400, f"{field}: ensemble '{self.ensemble.name}' sets every member's {field} itself, "
                               f"so the request's {field} would change nothing; leave it out", param=field)

    def _emit(self, event: Event | Finished) -> None:
        """Queues ``event`` in order, whichever thread emitted it."""
        if threading.get_ident() == self._loop_thread:
            self.events.put_nowait(event)
        else:
            self._loop.call_soon_threadsafe(self.events.put_nowait, event)

    async def run(self) -> Finished:
        """Run the prompt; the ``Finished`` is also queued after every event. Cancelled (the client went
        away), the run stops its calls in flight, makes no further one, and says so to ``on_finished``."""
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        try:
            finished = await self._run()
        except asyncio.CancelledError:
            if self.on_finished is not None:
                self.on_finished(Finished({}, cancelled=True))
            raise
        finally:
            self.running.discard(task)  # type: ignore[arg-type]
        if self.on_finished is not None:
            self.on_finished(finished)
        self._emit(finished)
        return finished

    async def _run(self) -> Finished:
        records: list[dict[str, Any]] = []
        errors: list[str] = []

        def sink(event: Event) -> None:
            if isinstance(event, PromptFinished):
                records.append(event.record)
            elif isinstance(event, PromptFailed):
                records.append(event.record)
                errors.append(event.error)
            else:
                self._emit(event)

        try:
            async with asyncio.timeout(self.deadline_s):
                outcome = await self.session.run(self.prepared, [self.plan.item], [sink])
        except TimeoutError:
            return Finished({}, ApiError(504, f"the ensemble did not finish within the deadline of "
                                              f"{self.deadline_s:g} s", code="deadline_exceeded"))
        except AuthError as exc:
            return Finished({}, ApiError(502, f"a member's upstream rejected its key: {exc.text(request_name)}",
                                         code="upstream_auth"))
        except EnsembleError as exc:
            return Finished({}, failure(exc, exc.template, {}))
        finally:
            await self.session.aclose()
            if self.ensemble.registry is None:  # a routed ensemble's: this request's own
                await self.session.registry.aclose()
        record = records[0] if records else {}
        if not records or record.get("status") != "ok":
            cause = outcome.errors[0] if outcome.errors else outcome.budget
            return Finished(record, failure(cause, errors[0] if errors else "no result", record))
        return Finished(record)

    async def result(self) -> dict[str, Any]:
        finished = await self.run()
        if finished.error is not None:
            raise finished.error
        return finished.record



def failure(cause: EnsembleError | None, message: str, record: dict[str, Any]) -> ApiError:
    """A failed run as the HTTP error that says whose mistake it was, with what the run had gathered:
    the prompt does not fit the context: 400; no reply held an answer: 422 naming ``ensemble.extract``;
    the budget stopped it: 402; members failed upstream: 502."""
    text = render(redact(message), request_name)
    extra = {"ensemble": gathered(record)} if record else {}
    if isinstance(cause, ContextLengthError):
        return ApiError(400, text, param="messages", code="context_length_exceeded", extra=extra)
    if isinstance(cause, NoAnswerError):
        return ApiError(422, text, code="no_answer", extra=extra)
    if isinstance(cause, BudgetExceeded):
        return ApiError(402, text, code="budget_exceeded", extra=extra)
    code = "members_failed" if isinstance(cause, ProviderError) else "ensemble_failed"
    return ApiError(502, f"the ensemble failed: {text}", code=code, extra=extra)


def gathered(record: dict[str, Any]) -> dict[str, Any]:
    """The ``ensemble`` object of a failed request: what its run had gathered before it failed."""
    usage = record.get("usage") or {}
    return {"strategy": record.get("strategy"), "run_id": record.get("run_id"), "calls": usage.get("calls"),
            "failed_calls": usage.get("failed_calls"), "cost_usd": usage.get("cost_usd"),
            "gathered": record.get("details") or {}}
