"""The user's ensemble home: ``$ENSEMBLE_HOME``, default ``~/.config/ensemble``; it holds ``ensembles/`` (the
user's named ensembles) and ``models/`` (GGUFs used by name)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

HOME_VARIABLE = "ENSEMBLE_HOME"
DEFAULT_HOME = Path("~/.config/ensemble")


def home_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$ENSEMBLE_HOME`` where it is set, else ``~/.config/ensemble``."""
    environ = os.environ if environ is None else environ
    home = environ.get(HOME_VARIABLE)
    return Path(home) if home else DEFAULT_HOME.expanduser()
