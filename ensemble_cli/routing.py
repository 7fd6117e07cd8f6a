"""Routed names: ``ENSEMBLE@PROVIDER/MODEL`` is the named ensemble with its members switched to one upstream.

The part after the first ``@`` is written as a member spec (``member_specs.py``: ``openai/gpt-4o-mini``,
``deepseek/deepseek-v4-flash``, ``local/smollm2``), without ``NAME=`` or ``*COUNT``. Routing sets the run's
top-level ``provider`` and ``model`` as ``--provider``/``--model`` do, so ``members.fill`` switches every
member that names neither; the run's ``base_url`` and ``api_key_env`` are cleared, so the routed members
reach the provider's own endpoint with its own key variable. A member (or a cascade tier) that names only
one of its provider and model, or a base URL or key variable of its own, would get a mix of the ensemble's
upstream and the route's: it is refused, naming it.

``Gate`` holds what an untrusted client (``ensemble serve``) may route to: providers the server has a key
for, and local models by the names the server lists, never a file. The library and the ``llm`` plugin
parse the same names without a gate: their caller owns the keys and files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from pydantic import BaseModel

from .config import MemberConfig, RunConfig, build_config, deep_merge
from .errors import ConfigError
from .member_specs import SPEC, SpecError, parse as parse_spec
from .providers.backends import NAMES

SYNTAX = "ENSEMBLE@PROVIDER/MODEL"
EXAMPLE = "vote@openai/gpt-4o-mini"
MAX_MODEL_CHARS = 200
UPSTREAM_KEYS = ("provider", "model", "base_url", "api_key_env")
"""The run keys a route sets: where the switched members' calls go."""


class RouteError(ConfigError):
    """A routed name that does not parse, or that its front end does not allow."""


@dataclass(frozen=True)
class Route:
    """``ensemble`` with every member that names no upstream of its own switched to ``provider``/``model``."""

    ensemble: str
    provider: str
    model: str | None
    """As written; none: the provider's default model (``local``: the embedded one)."""

    @property
    def name(self) -> str:
        return f"{self.ensemble}@{self.upstream}"

    @property
    def upstream(self) -> str:
        return f"{self.provider}/{self.model}" if self.model else self.provider


def is_routed(name: str) -> bool:
    return "@" in name


def parse(name: str) -> Route:
    """The route ``name`` stands for (split on its first ``@``); raises ``RouteError`` naming the fault."""
    ensemble, at, upstream = name.partition("@")
    if not at:
        raise RouteError(f"'{name}' is not a routed name; write {SYNTAX}, e.g. {EXAMPLE}")
    if not ensemble:
        raise RouteError(f"'{name}': name the ensemble before '@' ({SYNTAX}, e.g. {EXAMPLE})")
    found = SPEC.match(upstream.strip())
    if not upstream or not found:
        raise RouteError(f"'{name}': write {SYNTAX}, e.g. {EXAMPLE}")
    if found["provider"] not in NAMES:
        raise RouteError(f"'{name}': unknown provider '{found['provider']}'; the part after '@' starts with one "
                         f"of {', '.join(NAMES)}, then /MODEL")
    if found["name"] is not None:
        raise RouteError(f"'{name}': a routed name takes no member name ({found['name']}=); write {SYNTAX}")
    if found["count"] is not None:
        raise RouteError(f"'{name}': a routed name takes no copy count (*{found['count']}); the ensemble's "
                         "config says how many members it has")
    try:
        (spec,) = parse_spec(upstream.strip(), copies=False)
    except SpecError as exc:
        raise RouteError(f"'{name}': {str(exc).replace(repr(upstream.strip()) + ': ', '')}") from None
    model = spec.get("model")
    if model is not None:
        if "://" in model:
            raise RouteError(f"'{name}': the model '{_short(model)}' looks like a URL; a routed name names a "
                             "model, never a base URL (endpoints are set in the ensemble's config)")
        if len(model) > MAX_MODEL_CHARS or any(c.isspace() or not c.isprintable() for c in model):
            raise RouteError(f"'{name}': the model id must be at most {MAX_MODEL_CHARS} printable characters "
                             "without spaces")
    return Route(ensemble, spec["provider"], model)


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def overrides(route: Route, model: str | None = None) -> dict[str, Any]:
    """The run keys the route sets (``model``: what the provider is given, where it differs from the name)."""
    return {"provider": route.provider, "model": model if model is not None else route.model,
            "base_url": None, "api_key_env": None}


def switch(data: Mapping[str, Any], route: Route, source: str,
           model: str | None = None) -> tuple[dict[str, Any], dict[str, str | None], RunConfig]:
    """An ensemble's config data (``config.config_data``) switched to the route's upstream, the endpoint its
    own members keep (``keep``), and its run config validated (a mistake in the file is named by ``source``);
    a member that would mix the ensemble's upstream with the route's is refused."""
    original = build_config(data, source=source)
    kept = {"base_url": original.base_url, "api_key_env": original.api_key_env}
    routed = deep_merge(dict(data), overrides(route, model))
    config = build_config(routed, source=source)
    check_switchable(config, route)
    keep(config, kept)
    return routed, kept, config


def keep(config: RunConfig, kept: Mapping[str, str | None]) -> RunConfig:
    """``config`` (switched) with the ensemble's own top-level endpoint (``kept``: its ``base_url`` and
    ``api_key_env``) given back to each member and tier that names its own provider and model: the route
    cleared them for the switched members only."""
    if not any(kept.values()):
        return config
    for _, part in upstream_parts(config, own_endpoint=False):
        if {"provider", "model"} <= part.model_fields_set:
            for key, value in kept.items():
                if getattr(part, key) is None and value is not None:
                    setattr(part, key, value)
    return config


def check_switchable(config: RunConfig, route: Route) -> None:
    """Refuse a member or tier that names part of its upstream (the route would fill in the rest), and a
    route that would switch nothing (every member names its own upstream: the answer would not be the
    route's)."""
    parts = list(upstream_parts(config))
    # the run itself is a member where it lists none, unless it only holds run configs (a cascade's tiers)
    switched = not config.members and not any(isinstance(part, RunConfig) for _, part in parts)
    for where, part in parts:
        named = {key for key in UPSTREAM_KEYS if getattr(part, key) is not None and key in part.model_fields_set}
        if not named and not (isinstance(part, RunConfig) and part.members):
            switched = True
        if not named or {"provider", "model"} <= named:
            continue
        own = " and ".join(f"{key} '{getattr(part, key)}'" if key in ("provider", "model") else key
                           for key in UPSTREAM_KEYS if key in named)
        raise RouteError(f"'{route.name}': {where} names its own {own} but not the rest of its upstream, so the "
                         f"route to {route.upstream} would fill in the rest; in the ensemble's config give it both "
                         "its provider and its model, or neither")
    if not switched:
        raise RouteError(f"'{route.name}': every member of '{route.ensemble}' names its own provider and model, so "
                         f"the route to {route.upstream} would change nothing; ask for '{route.ensemble}' itself")


def upstream_parts(config: RunConfig, where: str = "",
                   own_endpoint: bool = True) -> Iterator[tuple[str, MemberConfig | RunConfig]]:
    """Every member and nested run config inside ``config`` (not ``config`` itself), with where it is
    (``members[1] 'careful'``, ``vote.judge``, ``cascade.tiers[2]``); without ``own_endpoint``, not what is
    inside a tier with a base URL of its own (its members inherit the tier's)."""
    for index, member in enumerate(config.members):
        yield f"{where}members[{index}]" + (f" '{member.name}'" if member.name else ""), member
    for section, settings in config._sections.items():
        yield from _inside(settings, f"{where}{section}", own_endpoint)


def _inside(value: Any, where: str, own_endpoint: bool) -> Iterator[tuple[str, MemberConfig | RunConfig]]:
    if isinstance(value, MemberConfig):
        yield where, value
    elif isinstance(value, RunConfig):
        yield where, value
        if own_endpoint or value.base_url is None:
            yield from upstream_parts(value, f"{where}.", own_endpoint)
    elif isinstance(value, BaseModel):
        for key in type(value).model_fields:
            yield from _inside(getattr(value, key), f"{where}.{key}", own_endpoint)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _inside(item, f"{where}[{index}]", own_endpoint)


@dataclass(frozen=True)
class Gate:
    """What a server's clients may route to: remote providers whose key variable is set in ``environ``, and
    local models by the names in ``local_models`` (name -> the model the local backend is given)."""

    environ: Mapping[str, str]
    local_models: Mapping[str, str]

    def providers(self) -> list[str]:
        """The providers a routed name may name here, ``local`` first."""
        from .providers.presets import PRESETS

        keyed = [p.name for p in PRESETS.values() if p.api_key_env and self.environ.get(p.api_key_env)]
        return [*(["local"] if self.local_models else []), *keyed]

    def admit(self, route: Route) -> str | None:
        """The model the route's provider is given; raises ``RouteError`` where the server does not allow it."""
        from .providers.presets import PRESETS

        allowed = ", ".join(self.providers()) or "none"
        if route.provider == "local":
            name = route.model or next(iter(self.local_models), "")
            if name not in self.local_models:
                listed = ", ".join(self.local_models) or "none"
                if route.model and any(mark in route.model for mark in ("/", "\\", "~")) \
                        or (route.model or "").lower().endswith(".gguf"):
                    raise RouteError(f"'{route.name}': a routed name never names a file; local models are named: "
                                     f"{listed}")
                raise RouteError(f"'{route.name}': no local model '{route.model}' on this server; local models are "
                                 f"named: {listed}")
            return self.local_models[name]
        if route.provider == "llm":
            raise RouteError(f"'{route.name}': the llm backend cannot be routed to (its models and keys are llm's "
                             f"own, and include these ensembles); routable providers here: {allowed}")
        preset = PRESETS[route.provider]
        if preset.api_key_env is None:
            raise RouteError(f"'{route.name}': provider '{route.provider}' takes no key, so the server holds none "
                             f"for it; routed names reach the providers the server has keys for: {allowed} "
                             "(serve a keyless endpoint through an ensemble that names it)")
        if not self.environ.get(preset.api_key_env):
            raise RouteError(f"'{route.name}': the server has no key for provider '{route.provider}' "
                             f"({preset.api_key_env} is not set on the server); routable providers here: {allowed}")
        if not (route.model or preset.default_model):
            raise RouteError(f"'{route.name}': provider '{route.provider}' has no default model; write "
                             f"{route.ensemble}@{route.provider}/MODEL")
        return route.model

    def note(self, example_ensemble: str | None = None) -> dict[str, Any]:
        """How to form routed names here, for ``GET /v1/models``."""
        ensemble = example_ensemble or "ENSEMBLE"
        providers = self.providers()
        remote = [p for p in providers if p != "local"]
        examples = [f"{ensemble}@local/{name}" for name in self.local_models][:1]
        examples += [f"{ensemble}@{p}/MODEL" for p in remote]
        return {"syntax": SYNTAX, "providers": providers, "local_models": list(self.local_models),
                "examples": examples,
                "description": "ENSEMBLE@PROVIDER/MODEL runs the named ensemble with every member that names no "
                               "provider and model of its own switched to PROVIDER/MODEL; PROVIDER is one the "
                               "server has a key for, or local with a model named here (never a file)"}


def embedded_models() -> dict[str, str]:
    """The local models every server lists by name: the named models whose packages are installed
    (``smollm2``, ``gemma3-270m``), never a file."""
    from .providers.local_models import NAMED

    return {model.name: model.name for model in NAMED if model.installed()}
