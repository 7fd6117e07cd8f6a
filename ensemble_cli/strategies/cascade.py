"""Cascade: tiers of whole strategies, cheapest first; a tier's answer is accepted at a confidence, else the
next tier runs.

``cascade.tiers`` lists run configs, each naming its strategy and its own members (a small model's vote,
then a large model's adaptive vote, then moa). A tier leaves to the cascade's top level every key it does
not set itself (provider, model, base_url, members, n, temperature, max_tokens, seed, and the sections of
strategies); the keys of the whole run (budget, prices, cache, timeouts, prompts, outputs) are the run's
alone. A tier whose strategy extracts answers and names no extractor uses ``cascade.extract`` where the
cascade sets one.

Each tier runs only when the one before it was not accepted, so no call is made that nobody reads. Its
answer (``cascade.extract`` applied to its output) is accepted when its strategy's confidence (its spec's
``confidence``: vote's winning share or posterior, cot-decode's winning path, committee's mean agreement,
a one-call vote's answer-span probability) reaches ``cascade.accept`` for that tier; the last tier's answer
is always accepted. A strategy that measures no confidence (moa, verbalize), or a tier built to return
none (a one-call vote on a backend without log-probabilities, its spec's ``unmeasured``), may only be the
last tier: it is refused elsewhere before any call.

The session builds the tiers before any call (``Build.nest``): their members are resolved, named apart
(``t1.m#2``, ``t2.big``) and bound to the run's providers, budget, prices and cache, so every member of
every tier is in the record and priced for the budget. Each tier's calls are counted in the prompt's
tally and in one of its own, for the tier's calls and cost in the record.

A tier that fails (a provider error, no quorum, no extractable answer) is recorded with its error and
what it gathered, and the next tier runs; the last tier's failure fails the prompt, with every tier's
result in the record's details. An error that would fail every tier alike (a rejected key, the budget)
stops at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Mapping, Sequence

import yaml
from pydantic import BeforeValidator, Field, field_serializer, field_validator, model_validator

from ..config import RunConfig
from ..errors import (
    AuthError, BudgetExceeded, CapabilityError, ConfigError, EnsembleError, ProviderError, StrategyError, render,
    setting, within,
)
from ..events import Emit, Event, StreamDelta, TokenChosen, ignore
from ..extraction import checked_extractor, get_extractor
from ..formatting import count
from ..inputs import PromptItem
from ..records import output_text
from ..usage import Tally
from .details import Model, Settings, dump
from .planning import Planned
from .spec import Build, RunTotals, StrategySpec
from .base import Member, StrategyResult

if TYPE_CHECKING:
    from .base import Strategy

TIER_KEYS = ("strategy", "provider", "model", "base_url", "api_key_env", "n", "max_tokens", "temperature", "seed",
             "members")
"""The top-level keys a tier may set for itself; every other key belongs to the whole run."""
DEFAULT_ACCEPT = 0.8
PREFIX = "t{number}."
"""How a tier's members are named apart from the other tiers' (``t1.m#2``)."""


def _tier_data(value: Any) -> Any:
    """A tier as written: a mapping, or (a ``--tier`` flag, a list item in YAML) a YAML file's name or an inline
    YAML mapping (``{strategy: vote, vote: {samples: 3}}``)."""
    if not isinstance(value, str):
        return value
    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        loaded = None
    if isinstance(loaded, dict):
        return loaded
    from ..config import read_yaml

    try:
        return read_yaml(Path(value))
    except ConfigError as exc:
        raise ValueError(f"{exc}; a tier is a run config (a mapping), an inline YAML mapping or a YAML file's "
                         "name") from None


TierConfig = Annotated[RunConfig, BeforeValidator(_tier_data)]


class CascadeSettings(Settings):
    tiers: list[TierConfig] = Field(default=[], description="The tiers, cheapest first: each a run config naming its "
                                   "strategy and members (a YAML file, or an inline YAML mapping).",
                                   json_schema_extra={"flag": "--tier"})
    accept: float | list[float] = Field(default=DEFAULT_ACCEPT, description="Confidence (0 to 1) at which a tier's "
                                        "answer is accepted: one value, or one per tier (a list; comma-separated "
                                        "on the command line). The last tier's answer is always accepted.")
    extract: str = Field(default="text", description="How answers are read from each tier's output and compared: "
                                                     "number, choice, boxed, line, text, json:FIELD or regex:PATTERN.")

    @field_validator("accept", mode="before")
    @classmethod
    def _accept_words(cls, accept: Any) -> Any:
        if isinstance(accept, str) and "," in accept:
            return [part.strip() for part in accept.split(",")]
        return accept

    @field_validator("accept")
    @classmethod
    def _accept_range(cls, accept: float | list[float]) -> float | list[float]:
        values = accept if isinstance(accept, list) else [accept]
        if not values or any(not 0.0 <= value <= 1.0 for value in values):
            raise ValueError("a confidence from 0 to 1, or a list of them (one per tier)")
        return accept

    @field_validator("extract")
    @classmethod
    def _known_extractor(cls, spec: str) -> str:
        return checked_extractor(spec)

    @field_serializer("tiers")
    def _tiers_as_written(self, tiers: list[RunConfig]) -> list[dict[str, Any]]:
        """Each tier as written (what it leaves unset is the run's, which the record holds too)."""
        return [tier.model_dump(mode="json", exclude_unset=True) for tier in tiers]


class CascadeTier(Model):
    """One tier that ran: what it answered, how sure it was, whether that was accepted, and what it cost."""

    tier: int
    """Its number, from 1 (the cheapest); ``cascade.tiers[tier - 1]`` in the config."""
    strategy: str
    accept: float | None = None
    """The confidence its answer is accepted at; none for the last tier, whose answer is always accepted."""
    accepted: bool
    reason: str
    """Why it was accepted or the next tier ran (``confidence 0.667 < 0.8``, ``failed``, ``the last tier``)."""
    output: Any = None
    answer: str | None = None
    """Its output's answer, by ``cascade.extract``; none where there is none (or it failed)."""
    confidence: float | None = None
    """Its strategy's confidence in its answer; none where it measures none."""
    agrees: bool | None = None
    """A tier that did not answer for the cascade: whether its answer is the one the cascade gave."""
    calls: int
    failed_calls: int = 0
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    """Dollars spent on its calls; none where a model it called has no price."""
    wall_s: float
    error: str | None = None
    details: Any = None
    """Its strategy's own details (its details model); of a failed tier, what it gathered before failing."""

    @model_validator(mode="after")
    def _typed_details(self) -> "CascadeTier":
        """A tier that answered holds its strategy's typed details, so that they are checked as its own are."""
        from .. import catalog

        spec = catalog.find(self.strategy)
        if self.error is None and spec is not None and isinstance(self.details, dict):
            self.details = spec.details.model_validate(self.details)
        return self


class CascadeDetails(Model):
    extract: str
    answered_by: int
    """The number of the tier whose answer is the cascade's."""
    strategy: str
    """The answering tier's strategy."""
    answer: str | None = None
    confidence: float | None = None
    """The answering tier's confidence (none where the last tier measures none)."""
    strategies: list[str]
    """Every tier's strategy, cheapest first (the tiers after the answering one did not run)."""
    tiers: list[CascadeTier]
    """Every tier that ran, in order."""
    finish_reason: str = "stop"
    """The answering tier's finish reason."""


@dataclass
class Tier:
    """A built tier: its number, its strategy's spec and instance, and the confidence it is accepted at."""

    number: int
    spec: StrategySpec
    strategy: "Strategy"
    accept: float | None
    """None: the last tier, always accepted."""

    @property
    def label(self) -> str:
        return f"tier {self.number} ({self.spec.name})"


def _no_stream(emit: Emit) -> Emit:
    """A tier's events, less the pieces of its answer as written: a tier's answer may not be the cascade's."""
    def forward(event: Event) -> None:
        if not isinstance(event, (StreamDelta, TokenChosen)):
            emit(event)

    return forward


class Cascade:
    def __init__(self, tiers: list[Tier], extract: str = "text", notes: list[str] | None = None) -> None:
        if not tiers:
            raise ConfigError("cascade: no tiers")
        self.tiers = tiers
        self.extract = extract
        self.extractor = get_extractor(extract)
        self.notes = list(notes or [])

    def called(self) -> list[Member]:
        return [member for tier in self.tiers for member in tier.strategy.called()]

    async def run(self, item: PromptItem, emit: Emit = ignore, tally: Tally | None = None) -> StrategyResult:
        tally_ = Tally() if tally is None else tally
        ran: list[dict[str, Any]] = []
        errors: list[str] = []
        for tier in self.tiers:
            own = Tally(prices=tally_.prices)
            try:
                result = await tier.strategy.run(item, _no_stream(emit), own)
            except (AuthError, BudgetExceeded, CapabilityError, ConfigError) as exc:
                tally_.absorb(own)  # every tier would fail alike (or the budget is spent): stop here
                ran.append(self._failed(tier, own, exc))
                exc.details = self._gathered(ran)
                raise
            except (ProviderError, StrategyError) as exc:
                tally_.absorb(own)
                ran.append(self._failed(tier, own, exc))
                if tier is self.tiers[-1]:  # no tier left to answer: the prompt fails, with what every tier did
                    exc.details = self._gathered(ran)
                    within(exc, f"cascade {tier.label}")
                    raise
                errors.append(f"{tier.label} failed, so the next tier ran: {render(exc.template)}")
                continue
            tally_.absorb(own)
            entry = self._answered(tier, own, result)
            ran.append(entry)
            errors += [f"{tier.label}: {error}" for error in result.errors]
            if entry["accepted"]:
                return self._result(entry, result, ran, tally_, errors)
        raise AssertionError("the last tier is always accepted")  # pragma: no cover

    def _answered(self, tier: Tier, own: Tally, result: StrategyResult) -> dict[str, Any]:
        details = dump(result.details)
        confidence = tier.spec.confidence(details) if tier.spec.confidence is not None else None
        found = self.extractor(output_text(result.output))
        answer = None if found is None else found.value
        if tier.accept is None:
            accepted, reason = True, "the last tier: its answer is always accepted"
        elif answer is None:
            accepted, reason = False, f"no answer ({self.extract}) in its output"
        elif confidence is None:
            accepted, reason = False, "it measured no confidence in its answer"
        elif confidence >= tier.accept:
            accepted, reason = True, f"confidence {confidence:.3f} >= {tier.accept:g}"
        else:
            accepted, reason = False, f"confidence {confidence:.3f} < {tier.accept:g}"
        return {**self._spent(tier, own), "accepted": accepted, "reason": reason, "output": result.output,
                "answer": answer, "confidence": None if confidence is None else round(confidence, 6),
                "details": details, "finish_reason": tier.spec.finish_reason(details)}

    def _failed(self, tier: Tier, own: Tally, exc: EnsembleError) -> dict[str, Any]:
        return {**self._spent(tier, own), "accepted": False, "reason": "failed", "error": render(exc.template),
                "details": exc.details}

    @staticmethod
    def _spent(tier: Tier, own: Tally) -> dict[str, Any]:
        usage = own.as_dict()
        return {"tier": tier.number, "strategy": tier.spec.name, "accept": tier.accept,
                **{key: usage[key] for key in ("calls", "failed_calls", "prompt_tokens", "completion_tokens",
                                               "cost_usd", "wall_s")}}

    def _gathered(self, ran: list[dict[str, Any]]) -> dict[str, Any]:
        """A failed prompt's details: every tier that ran, the failed one with what it gathered."""
        return {"extract": self.extract, "strategies": [t.spec.name for t in self.tiers],
                "tiers": [{k: v for k, v in entry.items() if k != "finish_reason"} for entry in ran]}

    def _result(self, answering: dict[str, Any], result: StrategyResult, ran: list[dict[str, Any]], tally: Tally,
                errors: list[str]) -> StrategyResult:
        answer = answering["answer"]
        tiers = []
        for entry in ran:
            entry = {k: v for k, v in entry.items() if k != "finish_reason"}
            if entry["tier"] != answering["tier"] and entry.get("answer") is not None and answer is not None:
                entry["agrees"] = entry["answer"] == answer
            tiers.append(entry)
        details = CascadeDetails.model_validate({
            "extract": self.extract, "answered_by": answering["tier"], "strategy": answering["strategy"],
            "answer": answer, "confidence": answering["confidence"], "strategies": [t.spec.name for t in self.tiers],
            "tiers": tiers, "finish_reason": answering["finish_reason"],
        })
        return StrategyResult(output=result.output, details=details, tally=tally, errors=errors)


# Building


def accept_values(accept: float | list[float], tiers: int) -> tuple[list[float | None], list[str]]:
    """The confidence each tier is accepted at (None for the last), and a note where a value changes nothing."""
    if not isinstance(accept, list):
        return [*([accept] * (tiers - 1)), None], []
    if len(accept) == tiers - 1:
        return [*accept, None], []
    if len(accept) == tiers:
        return [*accept[:-1], None], [f"{setting('cascade.accept')}: the last tier's value ({accept[-1]:g}) changes "
                                      "nothing: the last tier's answer is always accepted"]
    raise ConfigError(f"{setting('cascade.accept')}: {count(len(accept), 'value')} for {count(tiers, 'tier')}; give "
                      f"one value for every tier, or one per tier ({tiers - 1} or {tiers}: the last tier's answer is "
                      "always accepted)")


def tier_config(run: RunConfig, tier: RunConfig, settings: CascadeSettings) -> RunConfig:
    """The tier's run config: what it leaves unset is the cascade run's; an extractor the cascade names goes to
    a tier whose strategy extracts and that names none."""
    from .. import catalog

    made = tier.under(run, without=(SPEC.name,))
    assert made.strategy is not None, "checked by the caller"
    spec = catalog.spec(made.strategy)
    if "extract" in settings.model_fields_set and "extract" in spec.settings.model_fields:
        own = made.settings_for(spec.name)
        if "extract" not in own.model_fields_set:
            made = made.with_settings(spec.name, own.model_copy(update={"extract": settings.extract}))
    return made


def _checked_tier(index: int, tier: RunConfig, last: bool) -> StrategySpec:
    """The tier's strategy, or a one-line refusal naming ``cascade.tiers[index]`` and what to do."""
    from .. import catalog

    where = f"cascade.tiers[{index}]"
    others = [name for name in catalog.names() if name != SPEC.name]
    if tier.strategy is None:
        raise ConfigError(f"{where}: names no strategy; give each tier its own (strategy: {' | '.join(others)})")
    if tier.strategy == SPEC.name:
        raise ConfigError(f"{where}: a tier cannot be a cascade itself; list its tiers in this cascade's tiers "
                          f"instead (strategy: {' | '.join(others)})")
    run_level = [key for key in RunConfig.model_fields if key in tier.model_fields_set and key not in TIER_KEYS]
    if run_level:
        raise ConfigError(f"{where}: {run_level[0]} is a setting of the whole run, which every tier shares; set it "
                          "at the top level of the config")
    spec = catalog.spec(tier.strategy)
    if not last and spec.confidence is None:
        measured = [s.name for s in catalog.specs() if s.confidence is not None and s.name != SPEC.name]
        raise ConfigError(f"{where} ({spec.name}): {spec.name} has no confidence measure to accept its answer at, "
                          f"so it can only be the last tier; move it last, or use {', '.join(measured)} here")
    return spec


def build(made: Build) -> Cascade:
    settings: CascadeSettings = made.settings
    if made.nest is None:
        raise ConfigError("cascade: its tiers are built by a Session (ensemble_cli.cascade, Session.prepare)")
    if len(settings.tiers) < 2:
        given = "no tiers" if not settings.tiers else "one tier"
        raise ConfigError(f"cascade: {given}; give two or more, cheapest first ({setting('cascade.tiers')}), each a run "
                          "config naming its strategy (with one tier, run its strategy itself)")
    accepts, notes = accept_values(settings.accept, len(settings.tiers))
    tiers: list[Tier] = []
    for index, written in enumerate(settings.tiers):
        last = index == len(settings.tiers) - 1
        spec = _checked_tier(index, written, last)
        where = f"cascade.tiers[{index}] ({spec.name})"
        try:
            nested = made.nest(tier_config(made.config, written, settings), PREFIX.format(number=index + 1))
        except (ConfigError, CapabilityError) as exc:  # its settings are the tier's keys, not the command's flags
            raise type(exc)(f"{where}: {render(exc.template)}") from None
        reason = None if last or spec.unmeasured is None else spec.unmeasured(nested.strategy)
        if reason is not None:
            raise ConfigError(f"{where}: {render(reason)}; or make it the last tier")
        tier = Tier(index + 1, spec, nested.strategy, accepts[index])
        notes += [f"cascade {tier.label}: {note}" for note in nested.notes]
        tiers.append(tier)
    return Cascade(tiers, settings.extract, notes)


# What a front end reads


def plan(cascade: Cascade, item: PromptItem) -> list[Planned]:
    """At worst every tier runs: each tier's own plan, named by its tier."""
    planned: list[Planned] = []
    for number, tier in enumerate(cascade.tiers, start=1):
        if tier.spec.plan is not None:
            planned += [replace(p, what=f"tier {number}: {p.what}") for p in tier.spec.plan(tier.strategy, item)]
    return planned


def answering_confidence(details: Mapping[str, Any]) -> float | None:
    return details.get("confidence")


def measure(details: Mapping[str, Any]) -> dict[str, Any]:
    """The server's ``ensemble`` object: how sure the answering tier was, and which tier it was."""
    return {"confidence": details.get("confidence"), "tier": details.get("answered_by"),
            "tier_strategy": details.get("strategy")}


def stopped_at(answered: Sequence[Mapping[str, Any]]) -> RunTotals | None:
    """How many prompts stopped at each tier (from the details of the run's ok records): the end-of-run line
    and the bench's figures."""
    if not answered:
        return None
    strategies: list[str] = list(answered[0].get("strategies") or [])
    counted = [0] * len(strategies)
    for details in answered:
        tier = int(details.get("answered_by") or 0)
        if 1 <= tier <= len(counted):
            counted[tier - 1] += 1
    parts = [f"tier {i + 1} ({name}): {n}" for i, (n, name) in enumerate(zip(counted, strategies))]
    return RunTotals(f"cascade: prompts stopped at {', '.join(parts)}",
                     {"stopped_at_tier": {str(i + 1): n for i, n in enumerate(counted)}, "strategies": strategies})


SPEC = StrategySpec(
    name="cascade",
    summary="Tiers of strategies, cheapest first: a tier's answer is accepted at a confidence, else the next tier "
            "runs.",
    settings=CascadeSettings,
    details=CascadeDetails,
    build=build,
    own_members=False,
    measure=measure,
    confidence=answering_confidence,
    plan=plan,
    checked=("temperature", "max_tokens"),
    run_totals=stopped_at,
)
