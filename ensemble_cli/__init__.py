"""ensemble: make several LLM calls work as one.

Library use, without the CLI::

    from ensemble_cli import committee
    result = committee("Name a colour.", n=3, max_tokens=20)   # the embedded model
    print(result.output)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ensemble-cli")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

from .config import RunConfig, load_config  # noqa: E402
from .inputs import PromptItem, from_prompt  # noqa: E402
from .providers.base import Completion, Message, Provider, Request  # noqa: E402
from .session import Session  # noqa: E402
from .strategies.base import Member, StrategyResult  # noqa: E402
from .api import Result, committee, cot_decode, moa, provider, run, verbalize, vote  # noqa: E402


def __getattr__(name: str):
    if name == "LocalProvider":
        from .providers.local import LocalProvider

        return LocalProvider
    raise AttributeError(name)


__all__ = [
    "committee", "cot_decode", "moa", "provider", "run", "verbalize", "vote",
    "Completion", "Member", "Message", "PromptItem", "Provider", "Request", "Result", "RunConfig", "Session",
    "StrategyResult", "from_prompt", "load_config", "__version__",
]
