"""The strategies by name: a registry of the specs the strategy modules declare (``strategies/spec.py``).

The built-in strategies register when the catalog is first used; another one registers with
``register(spec)`` (a plugin, or a test) and every front end then serves it: the config accepts its
section, the CLI has its command, the server, the llm plugin and the library run it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable

from .errors import ConfigError
from .strategies.spec import StrategySpec

BUILTIN = ("committee", "vote", "moa", "cot_decode", "verbalize", "cascade")
"""The modules under ``strategies/`` that declare a ``SPEC``, in the order they are listed."""

_SPECS: dict[str, StrategySpec] = {}
_LISTENERS: list[Callable[[], None]] = []
_state = {"loaded": False}


def _load() -> None:
    if not _state["loaded"]:
        _state["loaded"] = True
        for module in BUILTIN:
            spec: StrategySpec = import_module(f"{__package__}.strategies.{module}").SPEC
            _SPECS.setdefault(spec.name, spec)


def register(spec: StrategySpec) -> None:
    """Add ``spec`` (or replace the one of its name); front ends that cached what they derived are told."""
    _load()
    _SPECS[spec.name] = spec
    for listener in _LISTENERS:
        listener()


def unregister(name: str) -> None:
    _SPECS.pop(name, None)
    for listener in _LISTENERS:
        listener()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a strategy is registered or removed (derived caches clear themselves)."""
    _LISTENERS.append(listener)


def specs() -> list[StrategySpec]:
    _load()
    return list(_SPECS.values())


def names() -> tuple[str, ...]:
    return tuple(spec.name for spec in specs())


def spec(name: str) -> StrategySpec:
    """The spec of strategy ``name`` (its section's Python spelling, ``cot_decode``, too)."""
    found = find(name)
    if found is None:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(names())}")
    return found


def find(key: str) -> StrategySpec | None:
    _load()
    return _SPECS.get(key) or next((s for s in _SPECS.values() if s.section == key), None)


def of_details(details: type) -> StrategySpec | None:
    """The spec whose details model is ``details``."""
    return next((s for s in specs() if s.details is details), None)
