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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, setting

DEFAULT_MAX_RETRIES = 4

ENV_DEFAULTS = {"ENSEMBLE_PROVIDER": "provider", "ENSEMBLE_MODEL": "model", "ENSEMBLE_BASE_URL": "base_url"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MemberConfig(Strict):
    """One ensemble member. Unset fields inherit the run's top-level values."""

    name: str | None = None
    provider: str | None = None
    model: str | None = None
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


class CommitteeSettings(Strict):
    merge: Literal["mean", "product", "vote"] = Field(
        default="mean", description="How to merge distributions: mean (log-mean-exp), product or vote.")
    top_k: int = Field(default=10, ge=1, le=100, description="Top alternatives asked of each member per token.")
    draft: int = Field(default=0, ge=0, le=64,
                       description="Remote members propose up to K greedy tokens per call (lossless).")
    gate: float | None = Field(default=None, gt=0.0, le=1.0,
                               description="The first member decodes alone while its top-1 probability is at least P.")
    trace: bool = Field(default=False, description="Record every member's top-k at each step.")
    stop: list[str] = Field(default=[], description="Stop when this text appears (repeatable).")


def _extractor(spec: str, judge: bool) -> str:
    """An ``extract`` value that names a known extractor (a regex must compile), checked with the config."""
    from .extraction import get_extractor

    if not (judge and spec == "judge"):
        try:
            get_extractor(spec)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("extract: ")) from None
    return spec


class VoteSettings(Strict):
    samples: int = Field(default=1, ge=1, description="Replies per member per round.")
    extract: str = Field(default="text", description="number, choice, boxed, line, text, json:FIELD, regex:PATTERN "
                                                     "or judge.")
    method: Literal["majority", "weighted", "confidence", "borda", "irv", "usc"] = Field(
        default="majority", description="majority, weighted, confidence, borda, irv or usc.")
    rounds: int = Field(default=1, ge=1, description="Debate rounds; from round 2 members see the others' answers.")
    consensus: float = Field(default=1.0, gt=0.0, le=1.0,
                             description="Stop early when the leader has this share of the votes.")
    quorum: float = Field(default=0.5, gt=0.0, le=1.0,
                          description="Share of members that must answer for the vote to go on.")
    judge: MemberConfig | None = Field(default=None, description="The judge member (extract judge, method usc).")

    @field_validator("extract")
    @classmethod
    def _known_extractor(cls, spec: str) -> str:
        return _extractor(spec, judge=True)


class MoaSettings(Strict):
    layers: int = Field(default=3, ge=1, description="Proposer layers (the aggregator step not counted).")
    aggregator: MemberConfig | None = Field(default=None,
                                            description="The aggregator member (default: the first member's model).")
    self_moa: int | None = Field(default=None, ge=1,
                                 description="Self-MoA: the first member sampled N times as the proposers.")
    shuffle_references: bool = Field(default=False, description="Shuffle reference order per call (seeded by seed).")
    max_reference_chars: int | None = Field(default=None, ge=1,
                                            description="Truncate each reference to this many characters.")
    quorum: float = Field(default=0.5, gt=0.0, le=1.0,
                          description="Share of proposers that must answer for a layer to go on.")
    proposer_temperature: float | None = Field(default=None, ge=0.0, description="Temperature of the proposers.")
    proposer_max_tokens: int | None = Field(default=None, ge=1, description="Max tokens of each proposer reply.")
    aggregator_temperature: float | None = Field(default=None, ge=0.0, description="Temperature of the aggregator.")
    aggregator_max_tokens: int | None = Field(default=None, ge=1, description="Max tokens of the final answer.")
    reference_instruction: str | None = Field(default=None,
                                              description="Replaces our instruction to proposers about references.")
    aggregate_instruction: str | None = Field(default=None, description="Replaces our instruction to the aggregator.")
    fallback: Literal["vote"] | MemberConfig | None = Field(
        default=None, description="Who answers when the aggregator fails: 'vote' (the last layer's answers voted) "
                                  "or a second aggregator member; the answer is marked degraded.")


class CotDecodeSettings(Strict):
    k: int | Literal["auto"] = Field(
        default=10, description="Branches: a number, or 'auto' (fewest first tokens covering 90%, up to k_max).")
    k_max: int = Field(default=10, ge=1, le=20, description="Most branches with k auto.")
    extract: str = Field(default="number", description="number, choice, boxed, line, text, json:FIELD or regex:PATTERN.")
    aggregate: bool = Field(default=False, description="Sum confidences of paths with the same answer.")
    template: str = Field(default="Q: {question}\nA:", description="Question-answer template with {question}.")
    raw: bool = Field(default=False, description="Send the template as a raw prompt (no chat template), as for base "
                                                 "models.")
    answer_prompt: str | None = Field(default=" So the answer is",
                                      description="Appended to a path with no answer, then continued once.")

    @field_validator("k")
    @classmethod
    def _k_range(cls, k: int | str) -> int | str:
        if isinstance(k, int) and not 1 <= k <= 20:
            raise ValueError("k must be 'auto' or a number of branches from 1 to 20")
        return k

    @field_validator("extract")
    @classmethod
    def _known_extractor(cls, spec: str) -> str:
        return _extractor(spec, judge=False)

    @field_validator("template")
    @classmethod
    def _has_question(cls, template: str) -> str:
        if "{question}" not in template:
            raise ValueError("the template must contain {question}")
        return template


class VerbalizeSettings(Strict):
    k: int = Field(default=5, ge=1, description="Responses asked for per turn.")
    variant: Literal["standard", "cot", "multi"] = Field(
        default="standard", description="standard, cot (reason first) or multi (several turns).")
    total: int | None = Field(default=None, ge=1, description="multi: keep asking until this many responses.")
    tail: float | None = Field(default=None, gt=0.0, le=1.0,
                               description="Ask for tail responses, each with probability below T.")
    min_prob: float | None = Field(default=None, ge=0.0, le=1.0,
                                   description="Drop parsed responses below P, then renormalise.")
    min_keep: int = Field(default=1, ge=1, description="Keep at least this many with min_prob.")
    sample: int = Field(default=1, ge=0, description="Draws from the distribution (same seed, same draws).")
    compare: Literal["direct"] | None = Field(
        default=None, description="'direct': also sample the prompt plainly and compare diversity.")
    embedding_model: str | None = Field(default=None,
                                        description="The embeddings model for compare's cosine similarity.")
    instruction: str | None = Field(default=None, description="Replaces our instruction text ({k}, {request}, {tail}).")

    @model_validator(mode="after")
    def _multi_needs_total(self) -> "VerbalizeSettings":
        if self.variant == "multi" and (self.total or 0) < self.k:
            raise ValueError("the multi variant needs a total of at least k")
        return self


class PriceConfig(Strict):
    """A model's price in dollars per million tokens."""

    input: float = Field(ge=0.0)
    output: float = Field(ge=0.0)


class DisplaySettings(Strict):
    """How results are shown on stderr; never part of a record."""

    show_all: bool = False
    """verbalize: the whole distribution as a table."""


class RunConfig(Strict):
    strategy: Literal["committee", "vote", "moa", "cot-decode", "verbalize"] | None = None
    prompt: str | None = Field(default=None, description="One prompt to run.")
    input: str | None = Field(default=None, description="JSONL file of {id, prompt|messages}, or - for stdin.")
    output: str | None = Field(default=None, description="Append JSONL records to FILE; - writes them to stdout.")
    resume: bool = Field(default=False, description="Skip prompts already recorded as ok, by the same strategy and "
                                                    "settings, in the output file.")
    provider: str = Field(default="local", description="The backend of every member that names none.")
    model: str | None = Field(default=None, description="Model name; for local, 'smollm2' or a path to a GGUF.")
    base_url: str | None = Field(default=None, description="Base URL of an OpenAI-compatible endpoint.")
    api_key_env: str | None = Field(default=None, description="NAME of the environment variable that holds the API "
                                                              "key (not the key).")
    n: int = Field(default=1, ge=1, description="Copies of each member.")
    max_tokens: int = Field(default=256, ge=1, description="Most tokens per reply.")
    temperature: float = Field(default=0.0, ge=0.0, description="Sampling temperature of members.")
    seed: int | None = Field(default=None, description="Random seed, for reproducible sampling.")
    max_concurrency: int = Field(default=8, ge=1, description="Most calls in flight per provider endpoint.")
    parallel_prompts: int = Field(default=4, ge=1, description="Prompts of a batch run at once.")
    timeout: float = Field(default=60.0, gt=0.0, description="Deadline in seconds for each call, connect to last "
                                                             "byte.")
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, description="Retries of a call that failed "
                                                                            "transiently.")
    quiet: bool = Field(default=False, description="No progress or results on stderr; errors are still shown.")
    budget: float | None = Field(default=None, gt=0.0, description="Most dollars the run may spend: it stops before "
                                 "a call that could pass it, keeps the records, exits 5.")
    cache: bool = Field(default=True, description="Serve reproducible calls from the call cache and store their "
                                                  "replies.")
    cache_dir: str | None = Field(default=None, description="Directory of the call cache (default "
                                  "$ENSEMBLE_CACHE_DIR, $XDG_CACHE_HOME/ensemble or ~/.cache/ensemble).")
    prices: dict[str, PriceConfig] = Field(default={}, description="provider/model (or provider/*) -> price in "
                                           "dollars per million tokens, over the shipped price table.")
    members: list[MemberConfig] = []
    committee: CommitteeSettings = CommitteeSettings()
    vote: VoteSettings = VoteSettings()
    moa: MoaSettings = MoaSettings()
    cot_decode: CotDecodeSettings = Field(default=CotDecodeSettings(), alias="cot-decode")
    verbalize: VerbalizeSettings = VerbalizeSettings()
    display: DisplaySettings = DisplaySettings()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("max_tokens", "n", "max_concurrency", "parallel_prompts", "max_retries", "seed",
                     mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("must be a whole number, not true/false")
        return value

    def settings_for(self, strategy: str) -> BaseModel:
        """The strategy's own section."""
        return getattr(self, strategy.replace("-", "_"))


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    from .errors import InputError
    from .inputs import decode_utf8

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; give a YAML config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        text = decode_utf8(data, str(path))
    except InputError as exc:
        raise ConfigError(exc.template) from None
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
    messages = list(dict.fromkeys(_message(e) for e in errors))
    return f"{'; or '.join(messages)} (got {_shown(errors[0].get('input'))})"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds (``list[MemberConfig]``, ``MemberConfig | None``...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _keys_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The keys a mapping at ``path`` inside ``model`` may hold (field names and aliases)."""
    models, keyed = [model], False
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


def load_config(
    path: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunConfig:
    """Build a ``RunConfig`` from defaults, environment, the YAML file and flag overrides."""
    path = Path(path) if isinstance(path, str) else path
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {key: environ[var] for var, key in ENV_DEFAULTS.items() if environ.get(var)}
    source = str(path) if path else "command line"
    if path is not None:
        yaml_data = read_yaml(path)
        if "cot_decode" in yaml_data and "cot-decode" not in yaml_data:
            yaml_data["cot-decode"] = yaml_data.pop("cot_decode")  # one spelling, so flags merge into it
        data = deep_merge(data, yaml_data)
    try:
        RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None
    data = deep_merge(data, overrides or {})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(None, exc)) from None
