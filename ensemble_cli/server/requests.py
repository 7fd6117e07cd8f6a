"""A chat-completions request mapped onto an ensemble: run-config overrides, the prompt, output options.

Each standard parameter goes to the run-config key that means the same thing for the ensemble's
strategy; the ``ensemble`` extension object holds the strategy's own settings, validated by the same
pydantic models as the config files. A parameter the ensemble cannot honour is refused with a 400
that says so, never silently dropped.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..inputs import PromptItem, empty_reason
from .. import catalog
from ..calls import Message
from ..strategies.spec import StrategySpec
from .errors import ApiError

MAX_TOP_LOGPROBS = 20
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (1,), "top_p": (1, 1.0), "presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0),
    "parallel_tool_calls": (True, False), "store": (False,), "metadata": ({},), "tools": ([],),
    "tool_choice": ("none",), "stream_options": ({},), "service_tier": ("auto", "default"),
}
"""Standard parameters accepted only at the value that asks for nothing (null is always accepted)."""
class ChatRequest(BaseModel):
    """The fields of ``POST /v1/chat/completions`` the server reads; any other field must be neutral."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    user: str | None = None
    ensemble: dict[str, Any] | None = None


@dataclass
class Plan:
    """What one request asks of its ensemble."""

    overrides: dict[str, Any]
    item: PromptItem
    stream: bool
    include_usage: bool
    logprobs: bool
    top_logprobs: int
    user: str | None


REQUEST_PARAMS = ("max_tokens", "temperature", "seed")
"""Run settings a request sets with a standard parameter of the same name."""


def parse_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(p) for p in error["loc"])
        raise ApiError(400, f"{param}: {error['msg']}", param=param) from None


def _content(raw: Any, index: int) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in raw):
        return "".join(str(p.get("text", "")) for p in raw)
    raise ApiError(400, f"messages[{index}].content: only text content is supported (a string or text parts)",
                   param=f"messages[{index}].content")


def messages_of(raw: list[dict[str, Any]]) -> tuple[Message, ...]:
    messages = []
    for index, entry in enumerate(raw):
        role = entry.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise ApiError(400, f"messages[{index}].role: {role!r} is not supported; use system, user or assistant "
                           "(ensembles do not call tools)", param=f"messages[{index}].role")
        messages.append(Message(role, _content(entry.get("content"), index)))
    reason = empty_reason(tuple(messages))
    if reason is not None:
        raise ApiError(400, f"messages: {reason}; the request must ask something", param="messages")
    return tuple(messages)


def _refuse_extras(request: ChatRequest) -> None:
    for key, value in (request.model_extra or {}).items():
        if value is None or value in NEUTRAL.get(key, ()):
            continue
        raise ApiError(400, f"{key}: not supported by ensemble models; leave it out", param=key)


def _set(overrides: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = overrides
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def request_path(spec: StrategySpec, param: str) -> tuple[str, ...]:
    """The run-config key a standard parameter sets for this strategy (moa: the aggregator's)."""
    own = spec.request_keys.get(param)
    return (spec.name, own) if own else (param,)


def plan(request: ChatRequest, spec: StrategySpec, request_id: str) -> Plan:
    """The overrides and prompt of ``request`` for an ensemble of ``spec``'s strategy (checks what needs no
    config): each standard parameter goes where the strategy's spec says, or is refused where it cannot be
    honoured."""
    _refuse_extras(request)
    overrides: dict[str, Any] = {}
    if request.max_tokens and request.max_completion_tokens and request.max_tokens != request.max_completion_tokens:
        raise ApiError(400, "max_tokens and max_completion_tokens differ; give one", param="max_tokens")
    limit = request.max_completion_tokens or request.max_tokens
    if limit is not None:
        _set(overrides, request_path(spec, "max_tokens"), limit)
    if request.temperature is not None:
        if spec.greedy_only and request.temperature != 0:
            raise ApiError(400, f"temperature: {spec.name} decodes greedily; leave temperature out or set it to 0",
                           param="temperature")
        _set(overrides, request_path(spec, "temperature"), request.temperature)
    if request.seed is not None:
        overrides["seed"] = request.seed
    if request.stop:
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop)
        if spec.stop_key is None:
            raise ApiError(400, f"stop: the {spec.name} strategy cannot stop on strings", param="stop")
        _set(overrides, (spec.name, spec.stop_key), stops)
    wants_logprobs = bool(request.logprobs)
    top = request.top_logprobs or 0
    if top and not wants_logprobs:
        raise ApiError(400, "top_logprobs: needs logprobs: true", param="top_logprobs")
    if wants_logprobs:
        if spec.distribution is None:
            raise ApiError(400, f"logprobs: the {spec.name} strategy has no token distribution to report",
                           param="logprobs")
        if top and request.stream:
            raise ApiError(400, "top_logprobs: the alternatives are known once a step is merged and recorded; "
                           "ask without stream, or stream with logprobs and no top_logprobs", param="top_logprobs")
        if top and spec.trace_key:
            _set(overrides, (spec.name, spec.trace_key), True)
    include_usage = bool((request.stream_options or {}).get("include_usage"))
    if request.stream_options and not request.stream:
        raise ApiError(400, "stream_options: only allowed with stream: true", param="stream_options")
    unknown_options = set(request.stream_options or {}) - {"include_usage"}
    if unknown_options:
        name = sorted(unknown_options)[0]
        raise ApiError(400, f"stream_options.{name}: not supported", param=f"stream_options.{name}")
    if request.ensemble:
        members = spec.config_only()
        for key, value in request.ensemble.items():
            if key in members and (isinstance(value, dict) or not _word_setting(spec, key)):
                raise ApiError(400, f"ensemble.{key}: members (and their endpoints and keys) are set on the "
                               "server, not per request", param=f"ensemble.{key}")
        section = overrides.setdefault(spec.name, {})
        for key, value in request.ensemble.items():
            if key in section and section[key] != value:
                raise ApiError(400, f"ensemble.{key}: conflicts with the standard parameter that sets it",
                               param=f"ensemble.{key}")
            section[key] = value
    item = PromptItem(request_id, messages_of(request.messages))
    return Plan(overrides, item, request.stream, include_usage, wants_logprobs, top, request.user)


def _word_setting(spec: StrategySpec, key: str) -> bool:
    """Whether a member setting also takes a word (``moa.fallback: vote``), which a request may give."""
    return any(typing.get_origin(arg) is Literal for arg in typing.get_args(spec.settings.model_fields[key].annotation))


def request_name(path: str) -> str:
    """How the server names a setting in its error messages: the request field that sets it
    (``ensemble.extract``, ``max_tokens``), else where the server's operator sets it."""
    section, _, key = path.partition(".")
    if not key and path in REQUEST_PARAMS:
        return path
    spec = catalog.find(section)
    if key and spec is not None and "." not in key and key not in spec.config_only():
        return f"ensemble.{key}"
    return f"{path} in the ensemble's config (set on the server)"


def explain(exc: ValidationError, spec: StrategySpec) -> ApiError:
    """A config validation error of a request's overrides, naming the request's key."""
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"]]
    if loc and loc[0] in (spec.name, spec.section):
        loc = ["ensemble", *loc[1:]]
    param = ".".join(loc) or "ensemble"
    kind: Literal["unknown key"] | str = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
    return ApiError(400, f"{param}: {kind}", param=param)
