"""Named ensembles: run-config YAML files found by name (the file's stem), for front ends that run an
ensemble by name (the ``llm`` plugin, ``ensemble serve``).

The example configs shipped with the package come first; the user's own files in
``$ENSEMBLE_HOME/ensembles`` (default ``~/.config/ensemble/ensembles``) come after and replace an
example of the same name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from .config import RunConfig, load_config

HOME_VARIABLE = "ENSEMBLE_HOME"
DEFAULT_HOME = Path("~/.config/ensemble")


def examples_dir() -> Path:
    """The example configs: inside the package when installed from a wheel, else the checkout's ``configs/``."""
    packaged = Path(__file__).parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "configs"


def user_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the user's named ensembles live: ``$ENSEMBLE_HOME/ensembles`` or ``~/.config/ensemble/ensembles``."""
    environ = os.environ if environ is None else environ
    home = environ.get(HOME_VARIABLE)
    return (Path(home) if home else DEFAULT_HOME.expanduser()) / "ensembles"


def default_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    return [examples_dir(), user_dir(environ)]


def ensemble_files(paths: Iterable[Path] | None = None) -> dict[str, Path]:
    """Name -> file for every ``*.yaml``/``*.yml`` in ``paths`` (directories or files); later ones win."""
    found: dict[str, Path] = {}
    for path in default_dirs() if paths is None else paths:
        path = Path(path)
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                found[file.stem] = file
    return found


def load_ensembles(paths: Iterable[Path] | None = None) -> dict[str, RunConfig]:
    """Every named ensemble, validated (a bad file raises ``ConfigError`` naming it)."""
    return {name: load_config(file) for name, file in ensemble_files(paths).items()}
