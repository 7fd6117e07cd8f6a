"""Member resolution: a run config becomes the members of each role, with every default applied here once.

Top-level values fill what a member leaves unset; ``n`` copies each listed member; then the strategy's
own rules (its spec's ``roster``: moa's proposer and aggregator settings and Self-MoA, vote's judge)
are applied with the helpers here (``fill``, ``copies``, ``spread``, ``free_name``). Nothing downstream
fills a default again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import MemberConfig, RunConfig
from .errors import ConfigError

SPREAD_LOW, SPREAD_HIGH = 0.4, 1.0


@dataclass
class Roster:
    """The resolved members of a run, the members of its other roles, and remarks about them to show once;
    ``origins`` says where each member comes from (``members[1]``, ``copy 2 of members[0] 'a' (n: 3)``),
    ``where`` each role member, so that two of one name can be named."""

    members: list[MemberConfig]
    origins: list[str] = field(default_factory=list)
    roles: dict[str, MemberConfig] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def taken(self) -> set[str]:
        return {m.name or "" for m in [*self.members, *self.roles.values()]}

    def add_role(self, role: str, member: MemberConfig, where: str) -> None:
        self.roles[role] = member
        self.where[role] = where


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


def resolve(run: RunConfig, strategy: str) -> Roster:
    """Every member of ``strategy``'s run, by role, each field set (the strategy's own rules applied by its
    spec); two members of one name are refused."""
    from . import catalog

    spec = catalog.spec(strategy)
    origins = named(run)
    roster = Roster([member for member, _ in origins], [where for _, where in origins])
    if spec.roster is not None:
        spec.roster(run, run.settings_for(spec.name), roster)
    if spec.one_member and len(roster.members) > 1:
        roster.notes.append(f"{spec.name} uses one member; ignoring "
                            f"{', '.join(m.name or '' for m in roster.members[1:])}")
        roster.members, roster.origins = roster.members[:1], roster.origins[:1]
    check_names([*zip(roster.members, roster.origins),
                 *((member, roster.where[role]) for role, member in roster.roles.items())])
    return roster
