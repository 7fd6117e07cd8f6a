"""What the call cache holds (``ensemble cache stats``), as Rich tables and as JSON; no computation here."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

from ..cache import CacheStats
from ..formatting import file_size
from .views import key_values

MOMENTS = ("oldest", "newest", "last_used")
"""The figures that are moments (epoch seconds in ``CacheStats``, UTC ISO 8601 when shown)."""


def moment(epoch: float | None) -> str | None:
    """Epoch seconds as a UTC time to the second: ``2025-05-01T12:00:00+00:00``."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def as_json(figures: dict[str, Any]) -> dict[str, Any]:
    """``CacheStats`` as ``dataclasses.asdict`` gives it, with its moments as UTC ISO 8601 times."""
    return {key: moment(value) if key in MOMENTS else value for key, value in figures.items()}


def stats_view(stats: CacheStats) -> RenderableType:
    if not stats.exists:
        return key_values("call cache", {"path": stats.path, "entries": "0 (no cache file yet)"})
    whole = key_values("call cache", {
        "path": stats.path, "entries": str(stats.entries), "size": f"{file_size(stats.bytes)} ({stats.bytes} bytes)",
        "hits recorded": str(stats.hits), "oldest": moment(stats.oldest) or "-", "newest": moment(stats.newest) or "-",
        "last used": moment(stats.last_used) or "-",
    })
    if not stats.models:
        return whole
    models = Table(title="per provider/model", title_justify="left")
    for column in ("provider", "model", "entries", "hits"):
        models.add_column(column, no_wrap=True, justify="right" if column in ("entries", "hits") else "left")
    for share in stats.models:
        models.add_row(share.provider, share.model, str(share.entries), str(share.hits))
    return Group(whole, models)
