"""Help screens show a value's type only beside options that take a value: a flag (``--json``, ``--help``,
``--yes``) or a counted flag takes none, so it shows none. Typer labels every flag ``<bool>`` as if it read
one; importing this module (``cli/__init__.py`` does) leaves the label to options that take a value."""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_typed = TyperOption.display_type_rich


def _display_type(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None
    return _typed(self, ctx)


TyperOption.display_type_rich = _display_type  # type: ignore[method-assign]
