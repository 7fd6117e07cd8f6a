"""Members written as one word: ``[NAME=]PROVIDER/MODEL[*COUNT]``, on the command line (``--member``,
``--judge``, ``--aggregator``) and in YAML (``members: [openai/gpt-4o-mini, ...]``).

The provider comes first, then the model id as the price table and ``usage.by_model`` write it
(``openai/gpt-4o-mini``, ``together/meta-llama/Llama-3.3-70B-Instruct-Turbo``, ``ollama/llama3:8b``,
``local/models/x.gguf``): everything after the first ``/`` is the model, so the ``/`` and ``:`` of real
model ids need no quoting. ``NAME=`` in front names the member; ``*COUNT`` at the end makes that many
copies (``NAME#1``, ``NAME#2``...). A provider alone (``local``) is its default model. Unnamed members
are named after the model (its last path segment, a file's stem).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

SYNTAX = "[NAME=]PROVIDER/MODEL[*COUNT]"
EXAMPLES = "openai/gpt-4o-mini, fast=ollama/llama3:8b*3, local/smollm2"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SPEC = re.compile(r"^(?:(?P<name>[^=/*]+)=)?(?P<provider>[A-Za-z0-9_-]+)(?:/(?P<model>.+?))?(?:\*(?P<count>\d+))?$")
MAX_COPIES = 1000


class SpecError(ValueError):
    """A member spec that does not parse; the message shows the syntax."""


def _providers() -> tuple[str, ...]:
    from .providers.backends import NAMES

    return tuple(NAMES)


def default_name(model: str | None, provider: str) -> str:
    """A member's name from its model id: the last path segment, a GGUF file's stem; the provider if none."""
    if not model:
        return provider
    last = PurePosixPath(model).name or model
    stem = last[: -len(".gguf")] if last.lower().endswith(".gguf") else last
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]", "-", stem).strip("-.") or provider
    return cleaned[:64]


def _check_count(spec: str) -> None:
    """A ``*`` starts the count: what follows it must be a whole number and end the spec."""
    if "*" not in spec:
        return
    count = spec.strip().rpartition("*")[2]
    if not count:
        raise SpecError(f"{spec!r}: the count after '*' is missing; write {SYNTAX}, "
                        f"with COUNT 1 to {MAX_COPIES}, e.g. local/smollm2*3")
    if not (count.isascii() and count.isdigit()):
        raise SpecError(f"{spec!r}: the count *{count} is not a whole number; write {SYNTAX}, "
                        f"with COUNT 1 to {MAX_COPIES}, e.g. local/smollm2*3")


def parse(spec: str, copies: bool = True) -> list[dict[str, Any]]:
    """The member dicts ``spec`` stands for (``copies``: a count is allowed). Raises SpecError."""
    _check_count(spec)
    found = SPEC.match(spec.strip())
    if not found:
        raise SpecError(f"{spec!r} is not a member; write {SYNTAX}, e.g. {EXAMPLES}")
    provider, model = found["provider"], found["model"]
    if provider not in _providers():
        raise SpecError(f"{spec!r}: unknown provider {provider!r}; the spec starts with one of "
                        f"{', '.join(_providers())}, then /MODEL")
    name = found["name"]
    if name is not None and not NAME.fullmatch(name):
        raise SpecError(f"{spec!r}: the name {name!r} may hold letters, digits, '.', '_' and '-' only")
    count = int(found["count"]) if found["count"] else 1
    if found["count"] and not copies:
        raise SpecError(f"{spec!r}: one member here; leave out *{count}")
    if not 1 <= count <= MAX_COPIES:
        raise SpecError(f"{spec!r}: *{count}: give 1 to {MAX_COPIES} copies")
    base = {"name": name or default_name(model, provider), "provider": provider,
            **({"model": model} if model else {})}
    if count == 1:
        return [base]
    return [{**base, "name": f"{base['name']}#{i + 1}"} for i in range(count)]


def expand(values: Any) -> Any:
    """A members list with its spec strings made member dicts (copies expanded); other items as they are.
    Names taken from models get ``-2``, ``-3``... where two specs name the same model."""
    if not isinstance(values, list):
        return values
    taken = {v.get("name") for v in values if isinstance(v, dict) and v.get("name")}
    expanded: list[Any] = []
    for value in values:
        if not isinstance(value, str):
            expanded.append(value)
            continue
        made = parse(value)
        if "=" not in value.split("/", 1)[0]:  # named after its model: make the name free
            base = made[0]["name"].split("#")[0] if len(made) > 1 else made[0]["name"]
            name, number = base, 1
            while name in taken or any(f"{name}#{i + 1}" in taken for i in range(len(made))):
                number += 1
                name = f"{base}-{number}"
            made = [{**m, "name": name if len(made) == 1 else f"{name}#{i + 1}"} for i, m in enumerate(made)]
        taken.update(m["name"] for m in made)
        expanded += made
    return expanded
