"""Member resolution: a run config becomes the members of each role, with every default applied here once.

Top-level values fill what a member leaves unset; ``n`` copies each listed member; the strategy's
role settings (moa proposer and aggregator settings, Self-MoA, the vote judge) are applied; identical moa
proposers get their temperatures spread so that they differ. Nothing downstream fills
a default again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import MemberConfig, RunConfig
from .errors import ConfigError, setting

SPREAD_LOW, SPREAD_HIGH = 0.4, 1.0
ONE_MEMBER = ("cot-decode", "verbalize")


@dataclass
class Roster:
    """The resolved members of a run, by role, and remarks about them to show once."""

    members: list[MemberConfig]
    aggregator: MemberConfig | None = None
    judge: MemberConfig | None = None
    fallback: MemberConfig | None = None
    """moa: the second aggregator that answers where the first fails (``moa.fallback``)."""
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
    return (member.name or "m").rsplit("#", 1)[0]


def copies(member: MemberConfig, count: int) -> list[MemberConfig]:
    if count == 1:
        return [member]
    return [member.model_copy(update={"name": f"{member.name}#{i + 1}"}) for i in range(count)]


def free_name(wanted: str, taken: set[str]) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``... where a member already has that name."""
    name, number = wanted, 1
    while name in taken:
        number += 1
        name = f"{wanted}-{number}"
    return name


def named(run: RunConfig) -> list[tuple[MemberConfig, str]]:
    """Each listed member (or one from the top-level values) filled and copied ``n`` times, with where it
    comes from (``members[1]``, ``copy 2 of members[0] 'a' (n: 3)``). An unnamed member is named ``m1``,
    ``m2``... (``m`` alone), skipping the names that listed members have."""
    given = run.members or [MemberConfig()]
    taken = {m.name for m in given if m.name}
    if run.n > 1:  # a listed 'a#1' beside 'a' would read as a's first copy in every record
        listed_at = {m.name: i for i, m in enumerate(given) if m.name}
        for index, member in enumerate(given):
            for copy in range(1, run.n + 1):
                other = listed_at.get(f"{member.name}#{copy}")
                if member.name and other is not None:
                    raise ConfigError(f"members[{other}] '{member.name}#{copy}' has the name of copy {copy} of "
                                      f"members[{index}] '{member.name}' (n: {run.n}); give it another name")
    resolved: list[tuple[MemberConfig, str]] = []
    for index, member in enumerate(given):
        if not member.name:
            member = member.model_copy(update={"name": free_name(f"m{index + 1}" if len(given) > 1 else "m", taken)})
            taken.add(member.name or "")
        where = f"members[{index}]" if run.members else "the member"
        made = copies(fill(run, member, ""), run.n)
        resolved += [(copy, where if len(made) == 1 else f"copy {i + 1} of {where} '{member.name}' (n: {run.n})")
                     for i, copy in enumerate(made)]
    return resolved


def listed(run: RunConfig) -> list[MemberConfig]:
    """Each listed member (or one from the top-level values) filled and copied ``n`` times."""
    return [member for member, _ in named(run)]


def check_names(called: list[tuple[MemberConfig, str]]) -> None:
    """Refuse, before any call, two members of one run with the same name: records say who answered by name."""
    first: dict[str, str] = {}
    for member, where in called:
        name = member.name or ""
        if name in first:
            raise ConfigError(f"{first[name]} and {where} are both named '{name}'; give each member its own name "
                              "(records and votes tell members apart by name)")
        first[name] = where


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
    default = free_name("aggregator", {m.name or "" for m in proposers})
    if settings.aggregator is not None:
        aggregator = fill(run, settings.aggregator, default)
    else:
        aggregator = members[0].model_copy(update={"name": default, "system": None})
    updates: dict = {}
    if settings.aggregator_temperature is not None:
        updates["temperature"] = settings.aggregator_temperature
    if settings.aggregator_max_tokens:
        updates["max_tokens"] = settings.aggregator_max_tokens
    roster.members = proposers
    roster.aggregator = aggregator.model_copy(update=updates) if updates else aggregator
    if isinstance(settings.fallback, MemberConfig):
        taken = {m.name or "" for m in proposers} | {roster.aggregator.name or ""}
        fallback = fill(run, settings.fallback, free_name("fallback", taken))
        roster.fallback = fallback.model_copy(update=updates) if updates else fallback


def resolve(run: RunConfig, strategy: str) -> Roster:
    """Every member of ``strategy``'s run, by role, each field set; two members of one name are refused."""
    origins = named(run)
    members = [member for member, _ in origins]
    roster = Roster(members)
    if strategy == "moa":
        _moa(run, members, roster)
        if run.moa.self_moa:
            origins = [(m, f"copy {i + 1} of the first member (moa.self_moa: {run.moa.self_moa})")
                       for i, m in enumerate(roster.members)]
        assert roster.aggregator is not None
        origins.append((roster.aggregator, "moa.aggregator" if run.moa.aggregator else "the aggregator"))
        if roster.fallback is not None:
            origins.append((roster.fallback, "moa.fallback"))
    elif strategy == "vote":
        if run.vote.judge is not None:
            roster.judge = fill(run, run.vote.judge, free_name("judge", {m.name or "" for m in members}))
            origins.append((roster.judge, "vote.judge"))
    elif strategy in ONE_MEMBER and len(members) > 1:
        roster.notes.append(f"{strategy} uses one member; ignoring {', '.join(m.name or '' for m in members[1:])}")
        roster.members = members[:1]
    check_names(origins)
    return roster
