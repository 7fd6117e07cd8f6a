"""Command-line flags generated from pydantic settings models: one flag per field, its type, bounds, choices
and help taken from the field, so that no strategy writes CLI code of its own (as ``llm -o`` options are
derived from a model's ``Options``).

- ``bool`` fields get ``--x/--no-x`` (a YAML ``true`` can be switched off); ``int`` and ``float`` fields their
  ``ge``/``le`` bounds; a ``Literal`` its choices in the help (the model checks the value);
- an optional text field takes ``''`` for none; a list of texts is a repeatable flag;
- a field that holds a member (``judge``) gets ``--judge SPEC`` (``member_specs.py``), ``--judge-provider`` and
  ``--judge-model``; one that also takes a word (``fallback: vote``) gets ``--fallback WORD|SPEC``;
- a list field (``members``) is a repeatable flag (``--member``);
- a field's ``json_schema_extra`` may name its flag (``{"flag": "--all"}``) and a short form (``{"short": "-p"}``).

A flag left out never overrides the YAML.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, List, Literal, Optional

import annotated_types
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ..config import MemberConfig, holds_member
from ..errors import ConfigError, setting
from ..member_specs import SYNTAX


@dataclass(frozen=True)
class Flag:
    """One generated flag: the parameter it is, and where its value goes in the run config."""

    param: str
    annotation: Any
    path: tuple[str, ...]
    """The key path its value sets, under the section the flags are made for (``("judge", "model")``)."""
    empty_is_none: bool = False

    def value(self, given: Any) -> Any:
        return None if self.empty_is_none and given == "" else given


def _bare(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None`` and whether it admitted ``None``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), len(rest) < len(args)
    return annotation, False


def _words(annotation: Any) -> list[str]:
    """The words a Literal (or a union holding one) admits."""
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return [w for arg in typing.get_args(annotation) for w in _words(arg)]


def _bounds(info: FieldInfo) -> dict[str, Any]:
    """typer's inclusive min/max from the field's ``ge``/``le`` (strict bounds are left to the model)."""
    bounds: dict[str, Any] = {}
    for rule in info.metadata:
        if isinstance(rule, annotated_types.Ge):
            bounds["min"] = rule.ge
        elif isinstance(rule, annotated_types.Le):
            bounds["max"] = rule.le
    return bounds


def _extra(info: FieldInfo, key: str) -> Any:
    extra = info.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


def _help(info: FieldInfo, words: list[str], extra: str = "") -> str:
    text = info.description or ""
    if words and not all(w in text for w in words):
        text = f"{text} One of: {', '.join(words)}."
    return f"{text} {extra}".strip()


def flags_for(model: type[BaseModel], helps: dict[str, str] | None = None,
              empty_is_none: bool = True) -> list[tuple[Flag, Any]]:
    """Every field of ``model`` as flags: (the flag, its ``Annotated`` parameter type for Typer);
    ``empty_is_none``: an optional text setting's ``''`` means none (``--answer-prompt ''``)."""
    made: list[tuple[Flag, Any]] = []
    for name, info in model.model_fields.items():
        bare, optional = _bare(info.annotation)
        words = _words(bare)
        flag = _extra(info, "flag") or "--" + name.replace("_", "-")
        short = [_extra(info, "short")] if _extra(info, "short") else []
        note = (helps or {}).get(name, "")
        if typing.get_origin(bare) in (list, List):
            option = typer.Option(flag, *short, help=_help(info, [], f"{note} Repeatable."))
            made.append((Flag(name, Optional[List[str]], (name,)), Annotated[Optional[List[str]], option]))
            continue
        if holds_member(info.annotation):
            spec_help = f"as {SYNTAX} (e.g. openai/gpt-4o-mini)"
            if words:  # a word or a member (moa.fallback: vote | {provider, model})
                made.append((Flag(name, Optional[str], (name,)), Annotated[Optional[str], typer.Option(
                    flag, help=_help(info, words, f"{note} Or a member, {spec_help}."))]))
            else:
                made.append((Flag(name, Optional[str], (name,)), Annotated[Optional[str], typer.Option(
                    flag, help=f"{(info.description or name).rstrip('.')}, {spec_help}.")]))
            for part in ("provider", "model"):
                what = MemberConfig.model_fields[part].description or part
                made.append((Flag(f"{name}_{part}", Optional[str], (name, part)), Annotated[Optional[str], typer.Option(
                    f"{flag}-{part}", help=f"{(info.description or name).rstrip('.')}: {what}.")]))
            continue
        if bare is bool:
            option = typer.Option(f"{flag}/--no-{flag.removeprefix('--')}", *short, help=_help(info, [], note))
            made.append((Flag(name, Optional[bool], (name,)), Annotated[Optional[bool], option]))
        elif bare in (int, float):
            kind = Optional[bare]  # type: ignore[valid-type]
            option = typer.Option(flag, *short, help=_help(info, [], note), **_bounds(info))
            made.append((Flag(name, kind, (name,)), Annotated[kind, option]))
        else:  # text, words, or a number-or-word (cot-decode's k): the model reads the text
            hint = "'' for none." if optional and bare is str and empty_is_none else ""
            option = typer.Option(flag, *short, help=_help(info, words, f"{note} {hint}".strip()))
            made.append((Flag(name, Optional[str], (name,), empty_is_none=bool(hint)),
                         Annotated[Optional[str], option]))
    return made


def values(flags: list[Flag], given: dict[str, Any]) -> dict[str, Any]:
    """The run-config keys the given flags set (flags left out set nothing)."""
    chosen: dict[str, Any] = {}
    for flag in flags:
        value = given.get(flag.param)
        if value is None or value == []:
            continue
        target = chosen
        for part in flag.path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):  # --judge SPEC beside --judge-model
                raise ConfigError(f"{setting(part)}: give the member as one spec or by its parts, not both")
        if isinstance(target.get(flag.path[-1]), dict):
            raise ConfigError(f"{setting(flag.path[-1])}: give the member as one spec or by its parts, not both")
        target[flag.path[-1]] = flag.value(value)
    return chosen


Command = Callable[..., None]


def command_with(flags: list[tuple[Flag, Any]], run: Callable[[dict[str, Any]], None]) -> Command:
    """A Typer command function whose keyword parameters are ``flags``; ``run`` gets the values given."""
    import inspect

    def command(**given: Any) -> None:
        run(given)

    parameters = [inspect.Parameter(flag.param, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=None)
                  for flag, annotation in flags]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command
