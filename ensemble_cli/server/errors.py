"""OpenAI-style error objects: one exception type the app turns into ``{"error": {...}}`` responses.

Every message passes through ``secrets.redact`` on its way out, whatever an upstream echoed back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..secrets import redact, redact_obj

TYPES = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error",
         502: "upstream_error", 504: "timeout_error", 503: "server_shutting_down"}
"""The statuses with a type of their own; any other 4xx is the client's mistake, any other 5xx the server's."""


def error_type(status: int) -> str:
    """The OpenAI error ``type`` of an HTTP status: ``invalid_request_error`` for a client's mistake (4xx)."""
    return TYPES.get(status, "invalid_request_error" if 400 <= status < 500 else "server_error")


@dataclass
class ApiError(Exception):
    """An HTTP error with an OpenAI-shaped body; ``param`` names the request field at fault."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields beside ``error`` in the body: the ``ensemble`` object saying what a failed run had gathered."""
    logged: bool = False
    """Written to the request log already (a refusal is logged once, however far it travels)."""

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict[str, Any]:
        return {**error_body(self.status, self.message, self.param, self.code), **redact_obj(self.extra)}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": redact(message), "type": error_type(status),
                      "param": param, "code": code}}
