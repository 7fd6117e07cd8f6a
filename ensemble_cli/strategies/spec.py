"""What a strategy declares about itself, in one object: every front end derives what it needs from it.

A strategy module (``strategies/<name>.py``) defines its settings model, its typed details model, the
strategy class, and one ``StrategySpec`` that says: how it is built from resolved members, which roles
beside its members it calls and how its roster is resolved, which event carries its answer as it is
written, and what a front end reads from a result (finish reason, confidence, token distribution, the
request parameters it maps). The catalog (``catalog.py``) is a registry of specs; the config's strategy
sections, the record schema, the library functions, the CLI commands and flags, the server's request
keys and the llm plugin's options are all derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from pydantic import BaseModel

if TYPE_CHECKING:
    from ..config import MemberConfig, RunConfig
    from ..events import Event
    from ..inputs import PromptItem
    from ..members import Roster
    from .base import Member, Strategy
    from .planning import Planned

FINISH_REASONS = ("stop", "length", "content_filter")
Chosen = tuple[str, float, list[tuple[str, float]]]
"""One chosen token of an answer: its text, its log-probability, the top alternatives (text, log-probability)."""


@dataclass
class Nested:
    """A strategy built inside another one (a cascade's tier), and the remarks its build made."""

    strategy: "Strategy"
    notes: list[str]


Nest = Callable[["RunConfig", str], Nested]
"""Builds the strategy a run config names, as the session builds a run's own: its members resolved (every
default applied), named with a prefix (``t1.`` makes ``m#2`` ``t1.m#2``, so that names stay distinct across
the run) and bound to the session's providers, budget, prices and cache. Nothing is called."""


@dataclass
class Build:
    """What a strategy is built from: the run config, its own settings, and its members bound to providers."""

    config: "RunConfig"
    settings: Any
    """The strategy's own settings (an instance of its spec's ``settings`` model)."""
    members: list["Member"]
    roles: dict[str, "Member"] = field(default_factory=dict)
    """Members beside the members, by role (``judge``, ``aggregator``, ``fallback``)."""
    nest: Nest | None = None
    """How it builds a strategy of its own from a run config (a cascade's tiers); the session supplies it."""


RosterRule = Callable[["RunConfig", Any, "Roster"], None]
"""Applies a strategy's own member rules to a resolved roster (its settings given): role members filled
from the settings, copies varied, notes added. Every default is applied here or in ``members.py``, once."""


def no_measure(details: Mapping[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class RunTotals:
    """What the records of a whole run say together (a cascade: how many prompts stopped at each tier)."""

    line: str
    """One line for the end of the run (the display) and the bench's report."""
    figures: dict[str, Any]
    """The same as numbers, for the bench's summary."""


@dataclass(frozen=True)
class StrategySpec:
    """One strategy, as every front end sees it."""

    name: str
    """The command, the YAML section and the ``strategy:`` value (``cot-decode``)."""
    summary: str
    """One line: the CLI command's help, the plugin's and the server's description."""
    settings: type[BaseModel]
    details: type[BaseModel]
    build: Callable[[Build], "Strategy"]
    roles: tuple[str, ...] = ()
    """Roles it may call beside its members, for records and binding."""
    roster: RosterRule | None = None
    one_member: bool = False
    """It asks one member; others are ignored with a note."""
    streams: type["Event"] | None = None
    """The event that carries its answer as it is written (committee: each token; moa: the aggregator's text)."""
    measure: Callable[[Mapping[str, Any]], dict[str, Any]] = no_measure
    """How sure it is, from a record's details: ``agreement`` or ``confidence`` (the server's ensemble object)."""
    confidence: Callable[[Mapping[str, Any]], float | None] | None = None
    """How sure it is of its answer, 0..1, from a record's details: what a cascade accepts a tier's answer
    at. None where it has no such measure (it may then only be a cascade's last tier)."""
    unmeasured: Callable[["Strategy"], str | None] | None = None
    """Why a built instance would return no confidence (one call, no log-probabilities), said before any call."""
    plan: Callable[[Any, "PromptItem"], list["Planned"]] | None = None
    """What a built instance would ask of each member for one prompt, at worst (``--dry-run``; planning.py)."""
    distribution: Callable[[Mapping[str, Any], int], list[Chosen]] | None = None
    """Its token distribution, from a record's details, where it has one: each chosen token with its
    log-probability and (up to ``top``) the alternatives; the server formats it as OpenAI ``logprobs``."""
    member_usage: Callable[[Mapping[str, Any]], dict[str, dict[str, int]]] | None = None
    request_keys: Mapping[str, str] = field(default_factory=dict)
    """Its own settings that a request's ``max_tokens`` or ``temperature`` set, where the top-level keys would
    not say the same (moa: the aggregator's)."""
    stop_key: str | None = None
    """Its setting that takes stop strings (a request's ``stop``), if it has one."""
    trace_key: str | None = None
    """Its setting that records what ``top_logprobs`` needs."""
    greedy_only: bool = False
    """It decodes greedily whatever the temperature: a request may only ask for temperature 0."""
    checked: tuple[str, ...] = ("temperature",)
    """Request parameters refused when no member would use them (the ensemble fixes them itself)."""
    display: tuple[str, ...] = ()
    """Display settings its command offers (``show_all``)."""
    own_members: bool = True
    """It calls the run's members (resolved from ``members`` and the top-level values); a cascade calls only
    the members of its tiers, which it builds itself (``Build.nest``)."""
    run_totals: Callable[[Sequence[Mapping[str, Any]]], RunTotals | None] | None = None
    """What its ok records' details say together, for the end of a run and the bench."""

    @property
    def section(self) -> str:
        """The Python spelling of its section, also accepted in YAML (``cot_decode``)."""
        return self.name.replace("-", "_")

    def finish_reason(self, details: Mapping[str, Any] | None) -> str:
        """Its own finish reason (every details model carries one): ``length`` where the answer was cut."""
        reason = (details or {}).get("finish_reason")
        return reason if reason in FINISH_REASONS else "stop"

    def member_settings(self) -> tuple[str, ...]:
        """Its settings that hold a whole member (a judge, an aggregator): set in config files, not per request."""
        from ..config import holds_member

        return tuple(name for name, info in self.settings.model_fields.items() if holds_member(info.annotation))

    def config_only(self) -> tuple[str, ...]:
        """Its settings that only a config file sets, never a request or an ``llm`` option: those that hold
        members (their endpoints and keys), and those that hold whole run configs (a cascade's tiers)."""
        from ..config import holds_run

        return (*self.member_settings(),
                *(name for name, info in self.settings.model_fields.items() if holds_run(info.annotation)))


def role_member(value: Any) -> "MemberConfig | None":
    """A setting's value as a member, where it is one (``fallback: vote`` is a word, not a member)."""
    from ..config import MemberConfig

    return value if isinstance(value, MemberConfig) else None
