"""The library core every front end shares: a ``Session`` runs a strategy over prompts, emitting events.

A session owns the provider registry (and so every HTTP client) for its lifetime, inside one event
loop. ``prepare`` resolves the members once, binds them to providers and builds the strategy, which
validates the whole run before any model loads or call is made. ``run`` runs the prepared strategy over
prompts with bounded concurrency and turns each outcome into a record; sinks (the JSONL writer, the
Rich display, stdout, the server, the bench harness) subscribe to the events and never call back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from . import catalog
from .config import MemberConfig, RunConfig
from .cache import CallCache, default_dir
from .errors import (
    AuthError, BudgetExceeded, CapabilityError, ConfigError, EnsembleError, ExitStatus, ProviderError, StrategyError,
    setting,
)
from .formatting import count
from .events import Emit, EventBus, PromptFailed, PromptFinished, PromptStarted, RunStarted
from .inputs import PromptItem
from .members import Roster, resolve
from .prices import price_table
from .providers.base import Provider
from .providers.metered import Meter, MeteredProvider
from .records import RunInfo, build_record, read_recorded
from .secrets import redact
from .strategies.base import Member, Strategy
from .strategies.spec import Build, Nested
from .strategies.details import dump
from .usage import Tally

if TYPE_CHECKING:
    from .providers.registry import ProviderRegistry

FATAL = (ConfigError, CapabilityError, AuthError)
"""Errors that would fail every prompt alike: they stop the run at once instead of being recorded."""


@dataclass
class Outcome:
    """How a run over prompts ended."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[EnsembleError] = field(default_factory=list)
    stopped: int = 0
    """Prompts stopped mid-way by the budget (recorded as errors, so ``--resume`` runs them again)."""
    budget: BudgetExceeded | None = None
    """Why the run stopped early, if the budget stopped it; ``skipped`` prompts were not started."""
    spent_usd: float = 0.0

    def exit_status(self) -> ExitStatus:
        if self.budget is not None:
            return ExitStatus.PARTIAL
        if not self.failed:
            return ExitStatus.OK
        if self.ok:
            return ExitStatus.PARTIAL
        return self.errors[0].exit_status if self.errors else ExitStatus.ERROR


@dataclass
class Prepared:
    """A validated run: the strategy built over bound members, and what every record of it says."""

    strategy: Strategy
    info: RunInfo
    notes: list[str]


def run_settings(config: RunConfig, strategy: str) -> dict[str, Any]:
    """The settings a record holds so that it can be reproduced on its own (members are in its ``members``)."""
    own = config.settings_for(strategy).model_dump(mode="json")
    for key in catalog.spec(strategy).member_settings():
        if isinstance(own.get(key), dict):
            del own[key]
    return {"seed": config.seed, "max_tokens": config.max_tokens, "temperature": config.temperature,
            "n": config.n, catalog.spec(strategy).name: own}


class Session:
    """Runs strategies from one run config. Use ``async with Session(config) as session`` (one event
    loop), or the sync ``run_sync``. ``provider`` binds every member to one given provider instance
    (library use with a provider object, scripted providers in tests). ``registry`` shares a provider
    registry the caller owns (the server: one per ensemble, so that every request's session shares its
    HTTP transport and per-endpoint concurrency bounds); the session then does not close it."""

    def __init__(self, config: RunConfig, *, provider: Provider | None = None,
                 environ: Mapping[str, str] | None = None, http_client: Any = None,
                 registry: "ProviderRegistry | None" = None) -> None:
        from .providers.registry import ProviderRegistry

        self.config = config
        self.given = provider
        self._owns_registry = registry is None
        self.registry = registry if registry is not None else ProviderRegistry(
            config, http_client=http_client, environ=environ)
        self.prices = price_table(config.prices)
        self.meter = Meter(config.budget, self.prices)
        self.cache: CallCache | None = None
        if config.cache:
            self.cache = CallCache(Path(config.cache_dir).expanduser() if config.cache_dir else default_dir(environ))
        self._wrapped: dict[int, MeteredProvider] = {}

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes what the session opened (a provider or registry passed in belongs to the caller)."""
        if self._owns_registry:
            await self.registry.aclose()
        self.close()

    def close(self) -> None:
        """Closes a session that was only prepared, never run (its HTTP clients open on a first call only)."""
        if self.cache is not None:
            self.cache.close()

    # Validation

    def _bind(self, member: MemberConfig, role: str) -> Member:
        """The member on its provider, behind the run's budget and (for providers the session built) cache.

        A provider passed in belongs to the caller and may not answer as a function of the request (a
        scripted test double), so it is metered but not cached."""
        given = self.given is not None
        inner = self.given if self.given is not None else self.registry.provider_for(member)
        provider = self._wrapped.get(id(inner))
        if provider is None:  # one wrapper per provider: members that share a provider still share it
            provider = self._wrapped[id(inner)] = MeteredProvider(inner, self.meter, None if given else self.cache)
        assert member.temperature is not None and member.max_tokens is not None, "members are resolved"
        return Member(name=member.name or "m", provider=provider, system=member.system,
                      temperature=member.temperature, max_tokens=member.max_tokens, weight=member.weight, role=role)

    def prepare(self, strategy: str) -> Prepared:
        """Resolve, bind and build ``strategy``: every setting and member is checked here, before any call."""
        spec = catalog.spec(strategy)
        if self.config.strategy is not None and self.config.strategy != spec.name:
            raise ConfigError(f"strategy: this config is for '{self.config.strategy}', not '{spec.name}'")
        made = self._build(self.config, spec.name)
        built = made.strategy
        self.meter.check_priced([(m.name, m.provider) for m in built.called()])
        info = RunInfo(spec.name, run_settings(self.config, spec.name), [m.describe() for m in built.called()])
        return Prepared(built, info, [*made.notes, *self.registry.notes])

    def _build(self, config: RunConfig, strategy: str, prefix: str = "") -> Nested:
        """``strategy`` built over ``config``'s members, resolved and bound (named ``prefix`` + name), and the
        remarks of its build; a strategy that builds others (a cascade's tiers) builds them here too."""
        spec = catalog.spec(strategy)
        roster = resolve(config, spec.name) if spec.own_members else Roster([])
        if prefix:
            rename = {m.name or "": m.model_copy(update={"name": f"{prefix}{m.name}"})
                      for m in [*roster.members, *roster.roles.values()]}
            roster.members = [rename[m.name or ""] for m in roster.members]
            roster.roles = {role: rename[m.name or ""] for role, m in roster.roles.items()}
        built = spec.build(Build(config, config.settings_for(spec.name),
                                 [self._bind(m, "member") for m in roster.members],
                                 {role: self._bind(m, role) for role, m in roster.roles.items()},
                                 nest=self._nest))
        return Nested(built, [*roster.notes, *built.notes])

    def _nest(self, config: RunConfig, prefix: str) -> Nested:
        """A nested strategy (``Build.nest``): the one ``config`` names, its members named with ``prefix``."""
        if config.strategy is None:
            raise ConfigError("a nested run config must name its strategy")
        return self._build(config, config.strategy, prefix)

    def pending(self, prepared: Prepared, items: Sequence[PromptItem]) -> tuple[list[PromptItem], list[str]]:
        """With ``resume``, the prompts still to run and a remark on what is skipped or not reused."""
        output = self.config.output
        if self.config.resume and (not output or output == "-"):
            raise ConfigError(f"{setting('resume')} reads the records already written: give it an output file "
                              f"({setting('output')})")
        if not output or output == "-":
            return list(items), []
        recorded = read_recorded(Path(output), prepared.info.strategy, prepared.info.fingerprint)
        if not self.config.resume:
            repeated = sum(1 for item in items if item.id in recorded.done or item.id in recorded.other)
            if repeated:
                return list(items), [f"{output} already holds records of {repeated} of these prompt ids; new records "
                                     f"are appended and ids will repeat ({setting('resume')} skips prompts already done)"]
            return list(items), []
        todo = [item for item in items if item.id not in recorded.done]
        notes = []
        if len(todo) < len(items):
            notes.append(f"resume: skipping {count(len(items) - len(todo), 'prompt')} already recorded in {output}")
        redo = sorted(item.id for item in todo if item.id in recorded.other)
        if redo:
            reasons = sorted({recorded.other[i] for i in redo})
            notes.append(f"resume: re-running {count(len(redo), 'prompt')} whose records in {output} were "
                         f"{' or '.join(reasons)}")
        return todo, notes

    # Running

    async def run(self, prepared: Prepared, items: Iterable[PromptItem], sinks: Sequence[Emit] = (),
                  notes: Sequence[str] = ()) -> Outcome:
        """Run ``prepared`` over ``items``; each sink sees every event. Fatal errors stop the run and raise."""
        bus = EventBus()
        for sink in sinks:
            bus.subscribe(sink)
        items = list(items)
        outcome = Outcome()
        bus.emit(RunStarted("", len(items), tuple([*prepared.notes, *notes])))
        limiter = asyncio.Semaphore(self.config.parallel_prompts)

        async def one(item: PromptItem) -> None:
            async with limiter:
                if self.meter.stopped is not None:
                    outcome.skipped += 1  # the budget is spent: prompts not yet started are not run
                    return
                await self._one(prepared, item, bus, outcome)

        tasks = [asyncio.create_task(one(item)) for item in items]
        try:
            for task in asyncio.as_completed(tasks):
                await task
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        outcome.budget = self.meter.stopped
        outcome.spent_usd = self.meter.spent
        return outcome

    async def _one(self, prepared: Prepared, item: PromptItem, bus: EventBus, outcome: Outcome) -> None:
        bus.emit(PromptStarted(item.id, item.text))
        tally = Tally(prices=self.prices)
        try:
            result = await prepared.strategy.run(item, bus.emit, tally)
        except FATAL:
            raise
        except BudgetExceeded as exc:
            await self.meter.drained()  # calls of this prompt already in flight finish and are accounted
            record = build_record(prepared.info, item, output=None, details=exc.details, tally=tally,
                                  errors=[str(exc)], ok=False)
            outcome.stopped += 1
            bus.emit(PromptFailed(item.id, exc.template, record, stopped=True))
            return
        except (ProviderError, StrategyError) as exc:
            record = build_record(prepared.info, item, output=None, details=exc.details, tally=tally,
                                  errors=[redact(str(exc))], ok=False)
            outcome.failed += 1
            outcome.errors.append(exc)
            bus.emit(PromptFailed(item.id, redact(exc.template), record))
            return
        if result.tally.prices is None:
            result.tally.prices = self.prices
        record = build_record(prepared.info, item, output=result.output, details=dump(result.details),
                              tally=result.tally, errors=result.errors, ok=True)
        outcome.ok += 1
        bus.emit(PromptFinished(item.id, record))

    def run_sync(self, strategy: str, items: Iterable[PromptItem], sinks: Sequence[Emit] = ()) -> Outcome:
        """Prepare and run ``strategy`` in a fresh event loop, then close the session."""
        prepared = self.prepare(strategy)

        async def main() -> Outcome:
            async with self:
                return await self.run(prepared, items, sinks)

        return asyncio.run(main())
