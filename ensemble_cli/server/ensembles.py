"""The ensembles a server offers: run config YAML files, each one a model named after its file stem.

``--ensembles PATH`` is one YAML file or a directory of them; without it the example configs are
served. Those live in the repository's ``configs/`` (found next to the package in a source checkout or
an editable install) and are installed as data files under ``<prefix>/share/ensemble-cli/configs`` by
a wheel (``[tool.setuptools.data-files]`` in pyproject.toml), so they are found after ``pip install``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from ..config import RunConfig, deep_merge, format_validation_error, read_yaml
from ..errors import ConfigError
from ..providers.registry import ProviderRegistry

INSTALLED_CONFIGS = Path("share") / "ensemble-cli" / "configs"
SERVER_KEYS = ("prompt", "input", "output", "resume")
"""Run-config keys about prompts and record files: meaningless for a server, dropped from each ensemble."""


def default_configs_dir() -> Path:
    """The example configs: the source checkout's ``configs/``, else the installed data files."""
    checkout = Path(__file__).resolve().parent.parent.parent / "configs"
    candidates = [checkout, Path(sys.prefix) / INSTALLED_CONFIGS, Path(sys.base_prefix) / INSTALLED_CONFIGS]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    raise ConfigError("cannot find the example configs (configs/*.yaml); pass --ensembles PATH")


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


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise ConfigError(f"{path}: no .yaml run configs in this directory")
        return files
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory; pass --ensembles FILE.yaml or DIR")
    return [path]


def load_one(path: Path, environ: Mapping[str, str] | None = None) -> Ensemble:
    data = read_yaml(path)
    if "cot_decode" in data and "cot-decode" not in data:
        data["cot-decode"] = data.pop("cot_decode")
    for key in SERVER_KEYS:
        data.pop(key, None)
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None
    if config.strategy is None:
        raise ConfigError(f"{path}: strategy: a served ensemble must name its strategy "
                          "(committee, vote, moa, cot-decode or verbalize)")
    return Ensemble(path.stem, path, data, config, ProviderRegistry(config, environ=environ))


def load_ensembles(path: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, Ensemble]:
    """Every ensemble under ``path`` (default: the example configs), by name; names must be unique."""
    found: dict[str, Ensemble] = {}
    for file in _yaml_files(path if path is not None else default_configs_dir()):
        ensemble = load_one(file, environ)
        if ensemble.name in found:
            raise ConfigError(f"{file}: the ensemble name '{ensemble.name}' is taken by {found[ensemble.name].path}")
        found[ensemble.name] = ensemble
    return found

