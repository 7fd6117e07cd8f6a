"""The ensembles a server offers: run config YAML files, each one a model named after its file stem.

``--ensembles PATH`` is one YAML file or a directory of them; without it the named ensembles are
served: the example configs shipped in the package and the user's own (``ensemble_cli.ensemble_files``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import catalog
from ..config import RunConfig, build_config, config_data, deep_merge
from ..ensemble_files import ensemble_files
from ..errors import ConfigError
from ..providers.registry import ProviderRegistry

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
    registry: ProviderRegistry

    @property
    def strategy(self) -> str:
        assert self.config.strategy is not None, "loaded ensembles name their strategy"
        return self.config.strategy

    def config_with(self, overrides: Mapping[str, Any]) -> RunConfig:
        """The ensemble's config with a request's overrides; raises pydantic's ``ValidationError``."""
        return RunConfig.model_validate(deep_merge(self.data, overrides))


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
    data = config_data(path, environ, owned=SERVER_KEYS)
    config = build_config(data, source=str(path))
    if config.strategy is None:
        raise ConfigError(f"{path}: strategy: a served ensemble must name its strategy "
                          f"({', '.join(catalog.names())})")
    return Ensemble(path.stem, path, data, config, ProviderRegistry(config, environ=environ))


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
