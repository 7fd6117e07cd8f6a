"""The ensembles a server offers: run config YAML files, each one a model named after its file stem.

``--ensembles PATH`` is one YAML file or a directory of them; without it the named ensembles are
served: the example configs shipped in the package and the user's own (``ensemble_cli.ensemble_files``).
A routed name (``routing.py``) is one of them switched to another upstream (``routed``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import catalog
from ..config import RunConfig, build_config, config_data, deep_merge
from ..ensemble_files import ensemble_files
from ..errors import ConfigError
from ..providers.registry import ProviderRegistry
from ..routing import Route, keep, switch

SERVER_KEYS = ("prompt", "input", "output", "resume")
"""Run-config keys about prompts and record files: meaningless for a server, dropped from each ensemble."""


@dataclass
class Ensemble:
    """One served model: a run config with its strategy, and the provider registry its requests share."""

    name: str
    path: Path
    data: dict[str, Any]
    """The YAML as read (without the server-meaningless keys): per-request overrides merge into it."""
    config: RunConfig
    registry: ProviderRegistry | None
    """Shared by every request of a served ensemble (its HTTP transport, its per-endpoint bounds); none for a
    routed one, whose client picked its model: each request makes its own and closes it when it ends."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    route: Route | None = None
    kept: dict[str, str | None] = field(default_factory=dict)
    """A routed ensemble's own endpoint, for the members that name their upstream (``routing.keep``)."""

    @property
    def strategy(self) -> str:
        assert self.config.strategy is not None, "loaded ensembles name their strategy"
        return self.config.strategy

    def config_with(self, overrides: Mapping[str, Any]) -> RunConfig:
        """The ensemble's config with a request's overrides; raises pydantic's ``ValidationError``."""
        return keep(RunConfig.model_validate(deep_merge(self.data, overrides)), self.kept)

    def registry_for(self, config: RunConfig) -> ProviderRegistry:
        """The registry a request's session uses: the shared one, or (routed) one of its own to close."""
        return self.registry or ProviderRegistry(config, environ=self.environ)


def routed(base: Ensemble, route: Route, model: str | None) -> Ensemble:
    """``base`` switched to the route's upstream (``model``: what the provider is given); raises
    ``ConfigError`` (``routing.RouteError`` for a member the route cannot switch)."""
    data, kept, config = switch(base.data, route, str(base.path), model)
    return Ensemble(route.name, base.path, data, config, None, base.environ, route, kept)


def _files(path: Path | None) -> dict[str, Path]:
    """Name -> file: the named ensembles (examples and the user's own) by default, else ``path``'s."""
    if path is None:
        return ensemble_files()
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory; pass --ensembles FILE.yaml or DIR")
    found = ensemble_files([path])
    if not found:
        raise ConfigError(f"{path}: no .yaml run configs in this directory")
    return found


def load_one(path: Path, environ: Mapping[str, str] | None = None) -> Ensemble:
    """One ensemble file, loaded as every front end loads a config (the environment's defaults under it)."""
    environ = os.environ if environ is None else environ
    data = config_data(path, environ, owned=SERVER_KEYS)
    config = build_config(data, source=str(path))
    if config.strategy is None:
        raise ConfigError(f"{path}: strategy: a served ensemble must name its strategy "
                          f"({', '.join(catalog.names())})")
    return Ensemble(path.stem, path, data, config, ProviderRegistry(config, environ=environ), environ)


def load_ensembles(path: Path | None, environ: Mapping[str, str] | None = None,
                   warn: Callable[[str], None] | None = None) -> dict[str, Ensemble]:
    """Every ensemble under ``path`` (default: the named ensembles of ``ensemble_cli.ensemble_files``), by name.

    A file given with ``--ensembles`` must be valid; among the default ones, an invalid file of the user's
    is skipped with a ``warn``ing (as the ``llm`` plugin lists it and explains it when run), so that one
    broken file does not take every other ensemble down."""
    found: dict[str, Ensemble] = {}
    for name, file in _files(path).items():
        try:
            found[name] = load_one(file, environ)
        except ConfigError as exc:
            if path is not None or warn is None:
                raise
            warn(f"not serving '{name}': {exc.template}")
    if not found:
        raise ConfigError("no ensemble to serve; pass --ensembles FILE.yaml or DIR")
    return found
