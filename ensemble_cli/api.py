"""One-call Python functions for each strategy: pass a prompt and a provider, get a result.

    from ensemble_cli import committee
    result = committee("Name a colour.", n=3, merge="vote", max_tokens=20)
    print(result.output)

Each function runs one ``Session`` (one event loop for the whole run) and returns a ``Result``. The
provider is a backend name (``"local"``, ``"openai"``, ...) or a provider object; ``members`` lists
member dicts as a config file would; other keywords are run settings (``n``, ``temperature``,
``seed``, ``max_tokens``, ``timeout``, ...) or the strategy's own settings (``merge``, ``samples``, ...).
Failures raise the toolkit's typed errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from .config import CommitteeSettings, CotDecodeSettings, MemberConfig, MoaSettings, RunConfig, VerbalizeSettings, VoteSettings, format_validation_error
from .errors import ConfigError
from .events import Emit
from .inputs import PromptItem, from_prompt
from .providers.base import Provider
from .session import Session
from .sinks.records import Collector

SECTIONS: dict[str, type[BaseModel]] = {"committee": CommitteeSettings, "vote": VoteSettings, "moa": MoaSettings,
            "cot-decode": CotDecodeSettings, "verbalize": VerbalizeSettings}


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
    section = SECTIONS[strategy]
    own = {k: settings.pop(k) for k in list(settings) if k in section.model_fields}
    values: dict[str, Any] = {**settings, strategy: own}
    if isinstance(provider, str):
        values["provider"] = provider
    session = Session(_config(values), provider=None if isinstance(provider, str) else provider)
    collector = Collector()
    item = prompt if isinstance(prompt, PromptItem) else from_prompt(prompt)
    outcome = session.run_sync(strategy, [item], [collector, *([emit] if emit else [])])
    if outcome.failed:
        raise outcome.errors[0]
    return Result(collector.records[0])


def committee(prompt: str | PromptItem, provider: str | Provider = "local", **settings: Any) -> Result:
    """Consensus decoding; settings: ``n``, ``max_tokens``, ``members``, and CommitteeSettings fields
    (merge, top_k, draft, gate, trace, stop)."""
    return run("committee", prompt, provider, **settings)


def vote(prompt: str | PromptItem, provider: str | Provider = "local", **settings: Any) -> Result:
    """Voting; settings: ``n``, ``temperature``, ``seed``, ``members``, and VoteSettings fields
    (samples, extract, method, rounds, judge, ...)."""
    return run("vote", prompt, provider, **settings)


def moa(prompt: str | PromptItem, provider: str | Provider = "local", **settings: Any) -> Result:
    """Mixture-of-Agents; settings: ``n``, ``members``, and MoaSettings fields (layers, self_moa, aggregator, ...)."""
    return run("moa", prompt, provider, **settings)


def cot_decode(prompt: str | PromptItem, provider: str | Provider = "local", **settings: Any) -> Result:
    """CoT-decoding; settings: ``max_tokens`` and CotDecodeSettings fields (k, extract, aggregate, ...)."""
    return run("cot-decode", prompt, provider, **settings)


def verbalize(prompt: str | PromptItem, provider: str | Provider = "local", **settings: Any) -> Result:
    """Verbalized Sampling; settings: ``seed``, ``temperature`` and VerbalizeSettings fields (k, variant, sample, ...)."""
    return run("verbalize", prompt, provider, **settings)
