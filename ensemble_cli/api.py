"""One-call Python functions for each strategy: pass a prompt and a provider, get a result.

    from ensemble_cli import committee
    result = committee("Name a colour.", n=3, merge="vote", max_tokens=20)
    print(result.output)

Each function runs one ``Session`` (one event loop for the whole run) and returns a ``Result``. The
provider is a backend name (``"local"``, ``"openai"``, ...) or a provider object; ``members`` lists
member dicts as a config file would; other keywords are run settings (``n``, ``temperature``,
``seed``, ``max_tokens``, ``timeout``, ...) or the strategy's own settings (``merge``, ``samples``, ...).
``run_ensemble`` runs a named ensemble, or a routed name (``vote@openai/gpt-4o-mini``), the same way.
Failures raise the toolkit's typed errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pydantic import ValidationError

from . import catalog
from .config import MemberConfig, RunConfig, format_validation_error
from .errors import ConfigError
from .events import Emit
from .inputs import PromptItem, from_prompt
from .providers.base import Provider
from .session import Session
from .sinks.collect import Collector


@dataclass(frozen=True)
class Result:
    """One prompt's result: its output and details, as in its JSONL record (``record``)."""

    record: dict[str, Any]

    @property
    def output(self) -> Any:
        return self.record["output"]

    @property
    def details(self) -> dict[str, Any]:
        return self.record["details"]

    @property
    def usage(self) -> dict[str, Any]:
        return self.record["usage"]

    @property
    def members(self) -> list[dict[str, Any]]:
        return self.record["members"]


def provider(name: str = "local", model: str | None = None, *, base_url: str | None = None,
             api_key_env: str | None = None, **run: Any) -> Provider:
    """A provider by backend name, as ``--provider`` would build it, for use inside one event loop;
    ``run`` takes RunConfig keys such as ``max_concurrency``, ``timeout`` or ``max_retries``."""
    from .providers.registry import ProviderRegistry

    registry = ProviderRegistry(_config(run))
    return registry.provider_for(MemberConfig(name=name, provider=name, model=model, base_url=base_url,
                                              api_key_env=api_key_env))


def _config(values: Mapping[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(format_validation_error("arguments", exc)) from None


def run(strategy: str, prompt: str | PromptItem, provider: str | Provider = "local", *,
        emit: Emit | None = None, **settings: Any) -> Result:
    """Run ``strategy`` once on ``prompt``; keywords are run settings or the strategy's own."""
    spec = catalog.spec(strategy)
    own = {k: settings.pop(k) for k in list(settings) if k in spec.settings.model_fields}
    values: dict[str, Any] = {**settings, spec.name: own}
    if isinstance(provider, str):
        values["provider"] = provider
    return _once(Session(_config(values), provider=None if isinstance(provider, str) else provider), spec.name,
                 prompt, emit)


def _once(session: Session, strategy: str, prompt: str | PromptItem, emit: Emit | None) -> Result:
    collector = Collector()
    item = prompt if isinstance(prompt, PromptItem) else from_prompt(prompt)
    outcome = session.run_sync(strategy, [item], [collector, *([emit] if emit else [])])
    if outcome.failed:
        raise outcome.errors[0]
    return Result(collector.records[0])


def run_ensemble(name: str, prompt: str | PromptItem, *, emit: Emit | None = None, **settings: Any) -> Result:
    """Run the named ensemble ``name`` once on ``prompt`` (the examples and the user's files, as the ``llm``
    plugin and ``ensemble serve`` name them), or a routed name ``ENSEMBLE@PROVIDER/MODEL``: the ensemble with
    every member that names no upstream of its own switched to that one. Keywords are run settings or the
    strategy's own, over the file's."""
    from .config import deep_merge
    from .ensemble_files import named

    found = named(name, owned=("prompt", "input", "output", "resume"))
    strategy = found.data.get("strategy")
    if not isinstance(strategy, str) or catalog.find(strategy) is None:
        raise ConfigError(f"{found.path}: strategy: a named ensemble must name its strategy ({', '.join(catalog.names())})")
    spec = catalog.spec(strategy)
    own = {k: settings.pop(k) for k in list(settings) if k in spec.settings.model_fields}
    config = found.config(deep_merge(settings, {spec.name: own}) if own else settings)
    return _once(Session(config), spec.name, prompt, emit)


def strategy_function(strategy: str) -> Callable[..., Result]:
    """The library function of a strategy (``ensemble_cli.vote``, ``ensemble_cli.cot_decode``...): ``run``
    with the strategy named, documented from its spec."""
    spec = catalog.spec(strategy)

    def function(prompt: str | PromptItem, provider: str | Provider = "local", **settings: Any) -> Result:
        return run(spec.name, prompt, provider, **settings)

    function.__name__ = function.__qualname__ = spec.section
    function.__doc__ = (f"{spec.summary}\n\nKeywords: run settings (``n``, ``temperature``, ``seed``, "
                        f"``max_tokens``, ``members``, ...) and {spec.name}'s own: "
                        f"{', '.join(spec.settings.model_fields)}.")
    return function
