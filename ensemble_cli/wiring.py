"""Turns a validated run config into members bound to providers."""

from __future__ import annotations

from .config import MemberConfig, RunConfig
from .providers.registry import ProviderRegistry
from .strategies.base import Member


def bind_member(config: MemberConfig, registry: ProviderRegistry) -> Member:
    return Member(
        name=config.name or "m",
        provider=registry.provider_for(config),
        system=config.system,
        temperature=config.temperature if config.temperature is not None else registry.run.temperature,
        max_tokens=config.max_tokens or registry.run.max_tokens,
        weight=config.weight,
    )


def bind_members(run: RunConfig, registry: ProviderRegistry) -> list[Member]:
    return [bind_member(member, registry) for member in run.resolved_members()]


def bind_extra(run: RunConfig, registry: ProviderRegistry, member: MemberConfig | None, default_name: str) -> Member | None:
    """A judge or aggregator member given in a strategy section, filled from the run's defaults."""
    if member is None:
        return None
    return bind_member(run.fill(member, default_name=default_name), registry)
