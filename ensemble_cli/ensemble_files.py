"""Named ensembles: run-config YAML files found by name (the file's stem), for front ends that run an
ensemble by name (the ``llm`` plugin, ``ensemble serve``).

The example configs shipped with the package come first; the user's own files in
``$ENSEMBLE_HOME/ensembles`` (default ``~/.config/ensemble/ensembles``) come after and replace an
example of the same name. ``named`` finds one by name, or by a routed name (``routing.py``:
``vote@openai/gpt-4o-mini``), for the library and the ``llm`` plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .config import RunConfig, build_config, config_data, load_config
from .errors import ConfigError
from .home import home_dir
from .routing import Route, is_routed, keep, parse, switch



def examples_dir() -> Path:
    """The example configs: inside the package when installed from a wheel, else the checkout's ``configs/``."""
    packaged = Path(__file__).parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "configs"


def user_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the user's named ensembles live: ``$ENSEMBLE_HOME/ensembles`` or ``~/.config/ensemble/ensembles``."""
    return home_dir(environ) / "ensembles"


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


@dataclass(frozen=True)
class Named:
    """A named ensemble's config data (routed: switched to the route's upstream), for a front end's overrides."""

    name: str
    path: Path
    data: dict[str, Any]
    route: Route | None = None
    kept: dict[str, str | None] = field(default_factory=dict)
    """A routed ensemble's own endpoint, for its members that name their upstream (``routing.keep``)."""

    def config(self, overrides: Mapping[str, Any] | None = None) -> RunConfig:
        """The run config with a front end's ``overrides`` (a mistake in them is named by its setting)."""
        return keep(build_config(self.data, overrides, source=str(self.path)), self.kept)


def named(name: str, owned: tuple[str, ...] = (), environ: Mapping[str, str] | None = None) -> Named:
    """The named ensemble ``name`` (or routed name ``ENSEMBLE@PROVIDER/MODEL``), its front end's ``owned`` keys
    dropped; raises ``ConfigError`` naming what is unknown or wrong."""
    route = parse(name) if is_routed(name) else None
    files = ensemble_files()
    ensemble = route.ensemble if route else name
    path = files.get(ensemble)
    if path is None:
        raise ConfigError(f"no named ensemble '{ensemble}'; choose one of {', '.join(files)} (or add "
                          f"{user_dir(environ) / (ensemble + '.yaml')})")
    return load_named(name, path, owned, environ)


def load_named(name: str, path: Path, owned: tuple[str, ...] = (),
               environ: Mapping[str, str] | None = None) -> Named:
    """The ensemble file at ``path`` as ``name`` (a routed name: switched to its upstream), its front end's
    ``owned`` keys dropped; raises ``ConfigError`` naming what is wrong."""
    data = config_data(path, environ, owned=owned)
    if not is_routed(name):
        return Named(name, path, data)
    route = parse(name)
    routed, kept, _ = switch(data, route, str(path))
    return Named(route.name, path, routed, route, kept)
