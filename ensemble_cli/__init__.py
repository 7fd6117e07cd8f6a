"""ensemble: make several LLM calls work as one.

Library use, without the CLI::

    from ensemble_cli import committee
    from ensemble_cli.providers.local import LocalProvider
    result = committee("Name a colour.", LocalProvider(None), n=3, max_tokens=20)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ensemble-cli")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

from .config import RunConfig, load_config  # noqa: E402
from .inputs import PromptItem, from_prompt  # noqa: E402
from .providers.base import Completion, Message, Provider, Request  # noqa: E402
from .strategies.base import Member, StrategyResult  # noqa: E402
from .strategies.committee import Committee  # noqa: E402
from .api import committee, cot_decode, moa, provider, verbalize, vote  # noqa: E402


def __getattr__(name: str):
    if name == "LocalProvider":
        from .providers.local import LocalProvider

        return LocalProvider
    raise AttributeError(name)


__all__ = [
    "committee", "cot_decode", "moa", "provider", "verbalize", "vote",
    "Committee", "Completion", "Member", "Message", "PromptItem", "Provider", "Request", "RunConfig",
    "StrategyResult", "from_prompt", "load_config", "__version__",
]
