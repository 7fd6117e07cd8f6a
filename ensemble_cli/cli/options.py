"""The flags every strategy command shares, as one ``CommonOptions`` object, and the decorator that adds them.

Every boolean flag has its ``--no-`` form, so that a YAML ``true`` can be switched off from the command
line; a flag left out never overrides the YAML.
"""

import functools
import inspect
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from ..errors import ConfigError
from ..providers.backends import NAMES


@dataclass
class CommonOptions:
    config: Optional[Path] = None
    prompt: Optional[str] = None
    input: Optional[str] = None
    output: Optional[str] = None
    resume: Optional[bool] = None
    provider: Optional[str] = None
    model: Optional[str] = None
    base_url: Optional[str] = None
    api_key_env: Optional[str] = None
    n: Optional[int] = None
    max_tokens: Optional[int] = None
    temperature: Optional[float] = None
    seed: Optional[int] = None
    max_concurrency: Optional[int] = None
    parallel_prompts: Optional[int] = None
    timeout: Optional[float] = None
    max_retries: Optional[int] = None
    quiet: Optional[bool] = None
    budget: Optional[float] = None
    cache: Optional[bool] = None
    cache_dir: Optional[str] = None

    def overrides(self) -> dict[str, Any]:
        """Config keys the flags set (flags left out do not override the YAML)."""
        if self.prompt is not None and self.input is not None:
            raise ConfigError("give either --prompt or --input, not both")
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "config"}
        chosen = {k: v for k, v in values.items() if v is not None}
        if self.prompt is not None:
            chosen["input"] = None
        if self.input is not None:
            chosen["prompt"] = None
        return chosen


_COMMON: list[tuple[str, Any]] = [
    ("config", Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML run config; flags override its keys.")]),
    ("prompt", Annotated[Optional[str], typer.Option("--prompt", "-p", help="One prompt to run.")]),
    ("input", Annotated[Optional[str], typer.Option("--input", "-i", help="JSONL file of {id, prompt|messages}, or - for stdin.")]),
    ("output", Annotated[Optional[str], typer.Option("--output", "-o", help="Append JSONL records to FILE; - writes them to stdout.")]),
    ("resume", Annotated[Optional[bool], typer.Option("--resume/--no-resume", help="Skip prompts already recorded as ok, by the same strategy and settings, in the output file.")]),
    ("provider", Annotated[Optional[str], typer.Option("--provider", help=f"Backend: {', '.join(NAMES)} (default local; `ensemble providers` lists what each can do).")]),
    ("model", Annotated[Optional[str], typer.Option("--model", "-m", help="Model name; for local, 'smollm2' or a path to a GGUF.")]),
    ("base_url", Annotated[Optional[str], typer.Option("--base-url", help="Base URL of an OpenAI-compatible endpoint.")]),
    ("api_key_env", Annotated[Optional[str], typer.Option("--api-key-env", help="NAME of the environment variable that holds the API key (not the key).")]),
    ("n", Annotated[Optional[int], typer.Option("--n", "-n", min=1, help="Copies of each member.")]),
    ("max_tokens", Annotated[Optional[int], typer.Option("--max-tokens", min=1, help="Most tokens per reply.")]),
    ("temperature", Annotated[Optional[float], typer.Option("--temperature", "-t", min=0.0, help="Sampling temperature of members.")]),
    ("seed", Annotated[Optional[int], typer.Option("--seed", help="Random seed, for reproducible sampling.")]),
    ("max_concurrency", Annotated[Optional[int], typer.Option("--max-concurrency", min=1, help="Most calls in flight per provider endpoint.")]),
    ("parallel_prompts", Annotated[Optional[int], typer.Option("--parallel-prompts", min=1, help="Prompts of a batch run at once (default 4).")]),
    ("timeout", Annotated[Optional[float], typer.Option("--timeout", min=0.001, help="Deadline in seconds for each call, connect to last byte (default 60).")]),
    ("max_retries", Annotated[Optional[int], typer.Option("--max-retries", min=0, help="Retries of a call that failed transiently (default 4).")]),
    ("quiet", Annotated[Optional[bool], typer.Option("--quiet/--no-quiet", "-q", help="No progress or results on stderr; errors are still shown.")]),
    ("budget", Annotated[Optional[float], typer.Option("--budget", metavar="USD", help="Most dollars the run may spend: it stops before a call that could pass it, keeps the records, exits 5.")]),
    ("cache", Annotated[Optional[bool], typer.Option("--cache/--no-cache", help="Serve reproducible calls (temperature 0 or a seed) from the call cache (default on).")]),
    ("cache_dir", Annotated[Optional[str], typer.Option("--cache-dir", metavar="DIR", help="Directory of the call cache (default ~/.cache/ensemble).")]),
]


def with_common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the shared flags to ``command``'s signature; it receives them as ``common: CommonOptions``."""
    signature = inspect.signature(command)
    own = [p for p in signature.parameters.values() if p.name != "common"]
    defaults = CommonOptions()
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=getattr(defaults, name))
        for name, annotation in _COMMON
    ]
    names = [name for name, _ in _COMMON]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        common = CommonOptions(**{name: kwargs.pop(name) for name in names})
        return command(common=common, **kwargs)

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def section(**values: Any) -> dict[str, Any]:
    """A strategy section of overrides, without the flags that were left out."""
    return {k: v for k, v in values.items() if v is not None}
