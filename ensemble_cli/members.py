"""Member resolution: a run config becomes the members of each role, with every default applied here once.

Top-level values fill what a member leaves unset; ``n`` copies each listed member; the strategy's
role settings (moa proposer and aggregator settings, Self-MoA, the vote judge) are applied; copies that
would be identical deterministic calls are varied (moa) or reported (vote). Nothing downstream fills
a default again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import MemberConfig, RunConfig
from .errors import setting

SPREAD_LOW, SPREAD_HIGH = 0.4, 1.0
ONE_MEMBER = ("cot-decode", "verbalize")


@dataclass
class Roster:
    """The resolved members of a run, by role, and remarks about them to show once."""

    members: list[MemberConfig]
    aggregator: MemberConfig | None = None
    judge: MemberConfig | None = None
    notes: list[str] = field(default_factory=list)

    def everyone(self) -> list[MemberConfig]:
        return [*self.members, *(m for m in (self.aggregator, self.judge) if m is not None)]


def fill(run: RunConfig, member: MemberConfig, default_name: str) -> MemberConfig:
    """``member`` with unset fields taken from the run's top-level values."""
    return member.model_copy(update={
        "name": member.name or default_name,
        "provider": member.provider or run.provider,
        "model": member.model or run.model,
        "base_url": member.base_url or run.base_url,
        "api_key_env": member.api_key_env or run.api_key_env,
        "temperature": run.temperature if member.temperature is None else member.temperature,
        "max_tokens": member.max_tokens or run.max_tokens,
    })


def base_name(member: MemberConfig) -> str:
    """The listed member's name, without the ``#i`` of its copies."""
    return (member.name or "m").split("#")[0]


def copies(member: MemberConfig, count: int) -> list[MemberConfig]:
    if count == 1:
        return [member]
    return [member.model_copy(update={"name": f"{member.name}#{i + 1}"}) for i in range(count)]


def listed(run: RunConfig) -> list[MemberConfig]:
    """Each listed member (or one from the top-level values) filled and copied ``n`` times."""
    given = run.members or [MemberConfig()]
    resolved: list[MemberConfig] = []
    for index, member in enumerate(given):
        resolved += copies(fill(run, member, f"m{index + 1}" if len(given) > 1 else "m"), run.n)
    return resolved


def identity(member: MemberConfig) -> tuple:
    """Members with equal identities make the same call."""
    return (member.provider, member.model, member.base_url, member.system, member.temperature, member.template)


def spread(members: list[MemberConfig]) -> list[MemberConfig]:
    """Identical copies get temperatures spread evenly over [0.4, 1.0] so that they differ."""
    if len(members) < 2 or len({identity(m) for m in members}) > 1:
        return members
    step = (SPREAD_HIGH - SPREAD_LOW) / (len(members) - 1)
    return [m.model_copy(update={"temperature": round(SPREAD_LOW + i * step, 4)}) for i, m in enumerate(members)]


def _moa(run: RunConfig, members: list[MemberConfig], roster: Roster) -> None:
    settings = run.moa
    proposers = copies(members[0].model_copy(update={"name": base_name(members[0])}), settings.self_moa) \
        if settings.self_moa else members
    if settings.proposer_temperature is not None:
        proposers = [p.model_copy(update={"temperature": settings.proposer_temperature}) for p in proposers]
    else:
        varied = spread(proposers)
        if varied is not proposers:
            temps = ", ".join(f"{t:g}" for t in sorted({m.temperature or 0.0 for m in varied}))
            roster.notes.append(f"moa: {len(varied)} copies of member '{base_name(proposers[0])}' would "
                                f"answer alike; their temperatures are spread over {temps} "
                                f"(set {setting('moa.proposer_temperature')} to fix one)")
        proposers = varied
    if settings.proposer_max_tokens:
        proposers = [p.model_copy(update={"max_tokens": settings.proposer_max_tokens}) for p in proposers]
    _warn_identical(proposers, "moa proposers", roster)
    if settings.aggregator is not None:
        aggregator = fill(run, settings.aggregator, "aggregator")
    else:
        base = members[0]
        aggregator = base.model_copy(update={"name": "aggregator", "system": None})
    updates: dict = {}
    if settings.aggregator_temperature is not None:
        updates["temperature"] = settings.aggregator_temperature
    if settings.aggregator_max_tokens:
        updates["max_tokens"] = settings.aggregator_max_tokens
    roster.members = proposers
    roster.aggregator = aggregator.model_copy(update=updates) if updates else aggregator


def _warn_identical(members: list[MemberConfig], what: str, roster: Roster, samples: int = 1) -> None:
    """Say so when deterministic copies (temperature 0) would all give one reply."""
    deterministic = [m for m in members if not m.temperature]
    by_identity: dict[tuple, list[MemberConfig]] = {}
    for member in deterministic:
        by_identity.setdefault(identity(member), []).append(member)
    for group in by_identity.values():
        count = len(group) * samples
        if count > 1:
            roster.notes.append(f"{what}: {count} calls of member '{base_name(group[0])}' at temperature 0 "
                                "give the same reply; set --temperature (e.g. 0.7) so that they can differ")


def resolve(run: RunConfig, strategy: str) -> Roster:
    """Every member of ``strategy``'s run, by role, each field set."""
    members = listed(run)
    roster = Roster(members)
    if strategy == "moa":
        _moa(run, members, roster)
    elif strategy == "vote":
        if run.vote.judge is not None:
            roster.judge = fill(run, run.vote.judge, "judge")
        _warn_identical(members, "vote", roster, run.vote.samples)
    elif strategy in ONE_MEMBER and len(members) > 1:
        roster.notes.append(f"{strategy} uses one member; ignoring {', '.join(m.name or '' for m in members[1:])}")
        roster.members = members[:1]
    return roster
