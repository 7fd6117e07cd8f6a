"""What every strategy's typed details share: a strict base model, and their dump into a record.

Each strategy declares its own details model in its module (``strategies/<name>.py``) and names it in its
spec; records dump them, views render them (``sinks/views.py``, keyed by the model), and ``ensemble
schema`` prints the JSON Schema generated from them. Optional fields a strategy did not set are left out
of a record.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Settings(BaseModel):
    """The base of a strategy's settings section: unknown keys are errors; assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def dump(details: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """A record's ``details``: typed details as JSON (unset optional fields left out); a failed
    prompt's partial details (plain dicts) as they are."""
    if isinstance(details, BaseModel):
        return details.model_dump(mode="json", exclude_unset=True)
    return details
