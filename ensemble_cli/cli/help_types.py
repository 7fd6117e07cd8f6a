"""Help screens show a value's type only beside options that take a value: a flag (``--json``, ``--help``,
``--yes``) or a counted flag takes none, so it shows none. Typer labels every flag ``<bool>`` as if it read
one; importing this module (``cli/__init__.py`` does) leaves the label to options that take a value."""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_typed = getattr(TyperOption, "display_type_rich", None)
"""Typer's own labeller, where this Typer has one (0.29 and later); without it, nothing is changed."""


def _display_type(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None
    assert _typed is not None
    return _typed(self, ctx)


if _typed is not None:
    TyperOption.display_type_rich = _display_type  # type: ignore[method-assign]
