"""Retry policy: the openai SDK runs the one retry loop; this module holds what it cannot know.

The SDK (``openai._base_client``) retries connection errors, timeouts, 408, 409, 429 and 5xx,
honours ``retry-after-ms`` / ``Retry-After`` and ``x-should-retry``, backs off exponentially with
jitter, and tells how many retries it took (``LegacyAPIResponse.retries_taken``; the
``x-stainless-retry-count`` header of the last request when it gives up). What it cannot know is
that some error *bodies* say a retry will never succeed; ``permanent_reason`` recognises those, and
the transport marks such responses ``x-should-retry: false`` so the SDK stops at once.
"""

from __future__ import annotations

import json
from typing import Any, Mapping


RETRY_COUNT_HEADER = "x-stainless-retry-count"
"""Set by the openai SDK on every request: how many retries preceded it."""

CONTEXT_MESSAGES = ("context_length_exceeded", "maximum context length", "context length", "exceeds the available "
                    "context size", "context window", "too many tokens")
"""Error codes and text (lowercased) that say the prompt does not fit the model's context."""


PERMANENT_MESSAGES = (
    "must be created with embedding=true",  # llama.cpp: embeddings asked of a server started without them
    "embeddings are not enabled",
    "does not support embeddings",
    "model not found",
    *CONTEXT_MESSAGES,
)
"""Error text (lowercased) that no retry can fix, whatever the status code."""

QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded"})
"""A 429 with one of these codes is an empty account, not a rate limit: waiting does not help."""


def error_fields(body: Any) -> tuple[str, str]:
    """The ``(code, message)`` of an OpenAI-style error body (``{"error": {...}}`` or a bare string)."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError:
            return "", body.decode("utf-8", "replace")[:500]
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return "", body[:500]
    error = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(error, str):
        return "", error
    if not isinstance(error, Mapping):
        return "", ""
    code = error.get("code") or error.get("type") or ""
    message = error.get("message") or ""
    return str(code), str(message)


def is_quota_exhausted(status: int, body: Any) -> bool:
    code, message = error_fields(body)
    return status == 429 and (code in QUOTA_CODES or "insufficient_quota" in message or "exceeded your current quota" in message)


def is_context_length(code: str, message: str) -> bool:
    text = f"{code} {message}".lower()
    return any(marker in text for marker in CONTEXT_MESSAGES)


def permanent_reason(status: int, body: Any) -> str | None:
    """Why a failed response must not be retried, or None when retrying may help."""
    if status in (401, 403):
        return "authentication"
    if is_quota_exhausted(status, body):
        return "quota exhausted"
    code, message = error_fields(body)
    text = f"{code} {message}".lower()
    if any(marker in text for marker in PERMANENT_MESSAGES):
        return "the server says it cannot do this"
    return None


def retries_of(exc: BaseException) -> int:
    """Retries the SDK spent before raising ``exc`` (read from its last request's retry-count header)."""
    request = getattr(exc, "request", None)
    if request is None:
        response = getattr(exc, "response", None)
        request = getattr(response, "request", None)
    try:
        return int(request.headers.get(RETRY_COUNT_HEADER, 0)) if request is not None else 0
    except (ValueError, RuntimeError):
        return 0
