"""ensemble: make several LLM calls work as one.

Library use, without the CLI::

    from ensemble_cli import committee
    result = committee("Name a colour.", n=3, max_tokens=20)   # the embedded model
    print(result.output)

The names below load on first use, so that the console script starts without importing the
library core, the openai SDK or numpy.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("ensemble-cli")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

_HOMES = {
    "RunConfig": "config", "load_config": "config",
    "PromptItem": "inputs", "from_prompt": "inputs",
    "Completion": "calls", "Message": "calls", "Provider": "providers.base", "Request": "calls",
    "LocalProvider": "providers.local",
    "Session": "session",
    "Member": "strategies.base", "StrategyResult": "strategies.base",
    **{name: "api" for name in ("Result", "provider", "run", "run_ensemble")},
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is not None:
        return getattr(import_module(f".{home}", __name__), name)
    catalog = import_module(".catalog", __name__)
    if not name.startswith("_") and catalog.find(name) is not None:  # a strategy's function: vote, cot_decode...
        return import_module(".api", __name__).strategy_function(name)
    raise AttributeError(f"module 'ensemble_cli' has no attribute {name!r}")


__all__ = [
    "cascade", "committee", "cot_decode", "moa", "provider", "run", "run_ensemble", "verbalize", "vote",
    "Completion", "Member", "Message", "PromptItem", "Provider", "Request", "Result", "RunConfig", "Session",
    "StrategyResult", "from_prompt", "load_config", "__version__",
]
