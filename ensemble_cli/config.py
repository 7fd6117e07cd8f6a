"""Run configuration: YAML files validated into typed models, with flags and environment merged in.

Precedence, highest first: command-line flag > YAML file > environment (``ENSEMBLE_*``) > default.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import (
    BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_serializer, model_validator,
)

from .errors import ConfigError, setting

DEFAULT_MAX_RETRIES = 4

ENV_DEFAULTS = {"ENSEMBLE_PROVIDER": "provider", "ENSEMBLE_MODEL": "model", "ENSEMBLE_BASE_URL": "base_url"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MemberConfig(Strict):
    """One ensemble member. Unset fields inherit the run's top-level values."""

    name: str | None = None
    provider: str | None = Field(default=None, description="its backend (`ensemble providers` lists them)")
    model: str | None = Field(default=None, description="its model name")
    base_url: str | None = None
    api_key_env: str | None = None
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0.0)
    max_tokens: int | None = Field(default=None, ge=1)
    weight: float = Field(default=1.0, gt=0.0)
    prefix_mode: Literal["deepseek", "vllm", "raw", "none"] | None = None
    template: str | None = None
    reasoning: bool | None = None
    """A reasoning model (no temperature, top_p or logprobs); unset: known from the preset's table."""
    thinking: bool = False
    """DeepSeek: let the model think on calls that need neither logprobs nor greedy determinism (vote, moa)."""

    @model_validator(mode="before")
    @classmethod
    def _from_spec(cls, data: Any) -> Any:
        """A member written as one word, ``[NAME=]PROVIDER/MODEL`` (``member_specs.py``)."""
        if isinstance(data, str):
            from .member_specs import parse

            return parse(data, copies=False)[0]
        return data


class PriceConfig(Strict):
    """A model's price in dollars per million tokens."""

    input: float = Field(ge=0.0)
    output: float = Field(ge=0.0)


class DisplaySettings(Strict):
    """How results are shown on stderr; never part of a record."""

    show_all: bool = Field(default=False, description="Show the whole distribution as a table.",
                           json_schema_extra={"flag": "--all"})


class RunConfig(Strict):
    """A run: its members, their defaults, and each strategy's own section (``vote:``, ``cot-decode:``...).

    The sections are the registered strategies' (``catalog.py``): each is validated by its spec's settings
    model, under the strategy's name (its Python spelling ``cot_decode`` is accepted too), and read with
    ``settings_for``; an unknown top-level key is an error naming the key the user most likely meant."""

    strategy: str | None = None
    prompt: str | None = Field(json_schema_extra={"short": "-p"}, default=None, description="One prompt to run.")
    input: str | None = Field(json_schema_extra={"short": "-i"}, default=None, description="JSONL file of {id, prompt|messages}, or - for stdin.")
    output: str | None = Field(json_schema_extra={"short": "-o"}, default=None, description="Append JSONL records to FILE; - writes them to stdout.")
    resume: bool = Field(default=False, description="Skip prompts already recorded as ok, by the same strategy and "
                                                    "settings, in the output file.")
    provider: str = Field(default="local", description="The backend of every member that names none.")
    model: str | None = Field(json_schema_extra={"short": "-m"}, default=None, description="Model name; for local, 'smollm2' or a path to a GGUF.")
    base_url: str | None = Field(default=None, description="Base URL of an OpenAI-compatible endpoint.")
    api_key_env: str | None = Field(default=None, description="NAME of the environment variable that holds the API "
                                                              "key (not the key).")
    n: int = Field(json_schema_extra={"short": "-n"}, default=1, ge=1, description="Copies of each member.")
    max_tokens: int = Field(default=256, ge=1, description="Most tokens per reply.")
    temperature: float = Field(json_schema_extra={"short": "-t"}, default=0.0, ge=0.0, description="Sampling temperature of members.")
    seed: int | None = Field(default=None, description="Random seed, for reproducible sampling.")
    max_concurrency: int = Field(default=8, ge=1, description="Most calls in flight per provider endpoint.")
    parallel_prompts: int = Field(default=4, ge=1, description="Prompts of a batch run at once.")
    timeout: float = Field(default=60.0, gt=0.0, description="Deadline in seconds for each call, connect to last "
                                                             "byte.")
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, description="Retries of a call that failed "
                                                                            "transiently.")
    quiet: bool = Field(json_schema_extra={"short": "-q"}, default=False, description="No progress or results on stderr; errors are still shown.")
    budget: float | None = Field(default=None, gt=0.0, description="Most dollars the run may spend: it stops before "
                                 "a call that could pass it, keeps the records, exits 5.")
    cache: bool = Field(default=True, description="Serve reproducible calls from the call cache and store their "
                                                  "replies.")
    cache_dir: str | None = Field(default=None, description="Directory of the call cache (default "
                                  "$ENSEMBLE_CACHE_DIR, $XDG_CACHE_HOME/ensemble or ~/.cache/ensemble).")
    prices: dict[str, PriceConfig] = Field(default={}, description="provider/model (or provider/*) -> price in "
                                           "dollars per million tokens, over the shipped price table.")
    members: list[MemberConfig] = Field(default=[], description="A member: [NAME=]PROVIDER/MODEL[*COUNT], e.g. "
                                        "openai/gpt-4o-mini or fast=ollama/llama3:8b*3; replaces the config's "
                                        "members.", json_schema_extra={"flag": "--member"})
    display: DisplaySettings = DisplaySettings()

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)
    _sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @field_validator("max_tokens", "n", "max_concurrency", "parallel_prompts", "max_retries", "seed",
                     mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("must be a whole number, not true/false")
        return value

    @field_validator("members", mode="before")
    @classmethod
    def _member_specs(cls, value: object) -> object:
        """Members written as ``[NAME=]PROVIDER/MODEL[*COUNT]``, copies expanded."""
        from .member_specs import expand

        return expand(value)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str | None) -> str | None:
        from . import catalog

        if name is None:
            return None
        found = catalog.find(name)
        if found is None:
            raise ValueError(f"not a strategy; choose one of {', '.join(catalog.names())}")
        return found.name

    @model_validator(mode="wrap")
    @classmethod
    def _strategy_sections(cls, data: Any, handler: Any) -> "RunConfig":
        """Each registered strategy's section, validated by its own settings model (errors keep their key path)."""
        if not isinstance(data, Mapping):
            return handler(data)
        from . import catalog

        data, sections, errors = dict(data), {}, []
        for spec in catalog.specs():
            for key in dict.fromkeys((spec.name, spec.section)):
                if key not in data:
                    continue
                raw = data.pop(key)
                try:
                    sections[spec.name] = raw if isinstance(raw, spec.settings) else spec.settings.model_validate(raw)
                except ValidationError as exc:
                    errors += [_line_error(error, (spec.name,)) for error in exc.errors()]
        try:
            config = handler(data)
        except ValidationError as exc:
            errors = [_line_error(error, ()) for error in exc.errors()] + errors
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        config._sections = sections
        return config

    @model_serializer(mode="wrap")
    def _with_sections(self, handler: Any, info: Any) -> dict[str, Any]:
        dumped = handler(self)
        for name, settings in self._sections.items():
            dumped[name] = settings.model_dump(mode=info.mode, exclude_unset=info.exclude_unset,
                                               exclude_none=info.exclude_none)
        return dumped

    def settings_for(self, strategy: str) -> Any:
        """The strategy's own section: as given, or its settings model's defaults."""
        from . import catalog

        spec = catalog.spec(strategy)
        return self._sections.get(spec.name) or spec.settings()

    def with_settings(self, strategy: str, settings: BaseModel) -> "RunConfig":
        """A copy with ``strategy``'s section replaced by ``settings``."""
        from . import catalog

        copy = self.model_copy()
        copy._sections = {**self._sections, catalog.spec(strategy).name: settings}
        return copy

    def under(self, base: "RunConfig", without: tuple[str, ...] = ()) -> "RunConfig":
        """This config over ``base``: every key it leaves unset, and every strategy section it lacks, is
        ``base``'s (a cascade's tier under the cascade's run), except the sections named in ``without``."""
        made = base.model_copy(update={key: getattr(self, key) for key in self.model_fields_set})
        made._sections = {**{name: section for name, section in base._sections.items() if name not in without},
                          **self._sections}
        return made


def _line_error(error: Mapping[str, Any], prefix: tuple[Any, ...]) -> Any:
    """A pydantic error as the details a ValidationError is rebuilt from, its location under ``prefix``."""
    line: dict[str, Any] = {"type": error["type"], "loc": (*prefix, *error["loc"]), "input": error.get("input")}
    if "ctx" in error:
        line["ctx"] = error["ctx"]
    return line


def holds_member(annotation: Any) -> bool:
    """Whether a setting's annotation admits a whole member (``judge: MemberConfig | None``)."""
    return MemberConfig in _models_in(annotation)


def holds_run(annotation: Any) -> bool:
    """Whether a setting's annotation admits whole run configs (a cascade's ``tiers: list[RunConfig]``)."""
    return RunConfig in _models_in(annotation)


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    from .inputs import read_file

    text = read_file(path, "config file", "a YAML config file", ConfigError)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not a {type(loaded).__name__}")
    return loaded


_UNION_MEMBER = re.compile(r"^(int|float|str|bool|none|literal\[.*\]|function-\w+\[.*\]|constrained-\w+)$")
"""The last part of a location that names which member of a union a value failed (``k.int``)."""


def _message(error: Mapping[str, Any]) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def _explain(path: str, errors: list[Mapping[str, Any]], model: type[BaseModel]) -> str:
    """For one key: an unknown key (with the known key it most likely meant), or what was wrong (all the
    forms a union accepts, joined)."""
    if errors[0]["type"] == "extra_forbidden":
        loc = [part for part in errors[0]["loc"] if isinstance(part, str)]
        close = difflib.get_close_matches(str(errors[0]["loc"][-1]), _keys_at(model, loc[:-1]), n=1, cutoff=0.6)
        return "unknown key" + (f"; did you mean '{close[0]}'?" if close else "")
    explained = "; or ".join(dict.fromkeys(_message(e) for e in errors))
    if _quotes(explained, errors[0].get("input")):
        return explained
    return f"{explained} (got {_shown(errors[0].get('input'))})"


def _quotes(message: str, value: object) -> bool:
    """Whether ``message`` already quotes the rejected value (or, for a list, the item it rejects)."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, str) and item and repr(item) in message for item in items)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds (``list[MemberConfig]``, ``MemberConfig | None``...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _keys_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The keys a mapping at ``path`` inside ``model`` may hold (field names and aliases)."""
    from . import catalog

    models, keyed = [model], False
    if model is RunConfig and path and catalog.find(path[0]) is not None:
        models, path = [catalog.spec(path[0]).settings], path[1:]
    elif model is RunConfig and not path:
        return [*RunConfig.model_fields, *catalog.names()]
    for part in path:
        if keyed:  # a mapping's own key (prices: {"openai/gpt-4o": ...}): its values are ``models``
            keyed = False
            continue
        found: list[type[BaseModel]] = []
        for candidate in models:
            fields = {name: f for name, f in candidate.model_fields.items()}
            fields.update({f.alias: f for f in candidate.model_fields.values() if f.alias})
            if part in fields:
                found += _models_in(fields[part].annotation)
                keyed = keyed or typing.get_origin(fields[part].annotation) is dict
        models = found
    return [key for m in models for name, f in m.model_fields.items() for key in (name, f.alias) if key]


def _shown(value: object) -> str:
    """A rejected value as the error shows it; a long word could be a key pasted in the wrong place."""
    if isinstance(value, str) and len(value) >= 16 and not any(c.isspace() for c in value):
        return f"a {len(value)}-character value, not shown"
    return repr(value)


def format_validation_error(source: str | None, exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per key that is wrong, naming the file (``source``) and the key path. ``source=None``: the
    values came from a front end's own options (flags, request fields), so each key is named as a setting
    (``errors.setting``) for that front end to show as its own option."""
    by_path: dict[str, list[Mapping[str, Any]]] = {}
    for error in exc.errors():
        loc = list(error["loc"])
        if loc and isinstance(loc[-1], str) and _UNION_MEMBER.match(loc[-1]):
            loc = loc[:-1]
        by_path.setdefault(".".join(str(part) for part in loc) or "(top level)", []).append(error)
    shown = model or RunConfig
    if source is None:
        return "\n".join(f"{setting(path)}: {_explain(path, errors, shown)}" for path, errors in by_path.items())
    return "\n".join(f"{source}: {path}: {_explain(path, errors, shown)}" for path, errors in by_path.items())


def spelled(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with each strategy's section under its name (``cot_decode`` becomes ``cot-decode``), so that
    overrides merge into it."""
    from . import catalog

    data = dict(data)
    for spec in catalog.specs():
        if spec.section != spec.name and spec.section in data and spec.name not in data:
            data[spec.name] = data.pop(spec.section)
    return data


def config_data(path: Path | str | None = None, environ: Mapping[str, str] | None = None,
                owned: tuple[str, ...] = (), source: str | None = None) -> dict[str, Any]:
    """The layers under the flags, as one mapping: the environment's defaults (``ENSEMBLE_PROVIDER``,
    ``ENSEMBLE_MODEL``, ``ENSEMBLE_BASE_URL``), then the YAML file over them. A strategy's section is spelled
    one way (``cot_decode`` becomes ``cot-decode``) so that overrides merge into it; ``owned`` keys belong to
    the front end (the server's prompts and outputs) and are dropped. Every front end loads configs here."""

    path = Path(path) if isinstance(path, str) else path
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {key: environ[var] for var, key in ENV_DEFAULTS.items() if environ.get(var)}
    if path is not None:
        data = deep_merge(data, spelled(read_yaml(path)))
    for key in owned:
        data.pop(key, None)
    return data


def build_config(data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                 source: str = "command line") -> RunConfig:
    """``data`` (``config_data``) with a front end's ``overrides`` on top, validated: a mistake in the file is
    named by ``source`` and key; one in the overrides by the setting, for the front end to name as its own
    option (a flag, a request field)."""
    try:
        RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None
    try:
        return RunConfig.model_validate(deep_merge(dict(data), overrides or {}))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(None, exc)) from None


def load_config(
    path: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    owned: tuple[str, ...] = (),
) -> RunConfig:
    """A ``RunConfig`` from defaults, environment, the YAML file and a front end's overrides, in that order of
    precedence (the highest last)."""
    source = str(path) if path else "command line"
    return build_config(config_data(path, environ, owned), overrides, source)
