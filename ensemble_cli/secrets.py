"""Known secret values (API keys) and their redaction from every text that leaves the process.

Whoever reads a secret registers it (``register``); records, error lines, logs and tracebacks pass
through ``redact`` / ``redact_obj`` before they are written, whatever a server echoed back.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, urlsplit
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 6
_KEY_SHAPE = re.compile(r"\b(?:sk|pk|rk|tgp|gsk|xai|ds)[-_][A-Za-z0-9_\-]{12,}")
"""Strings shaped like provider API keys, redacted even when the process never read them."""

_lock = threading.Lock()
_secrets: set[str] = set()


def register(value: str | None) -> None:
    """Remember ``value`` as a secret (keys shorter than a few characters are placeholders, not secrets)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def register_url(url: str | None) -> None:
    """Register what a URL may carry as credentials: its user, password and query values
    (``https://user:KEY@host/v1``, ``https://KEY@host``, ``?api_key=KEY``)."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        register(parts.username)
        register(parts.password)
    except ValueError:  # a malformed URL: the HTTP client will refuse it
        return
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        register(value)


def known() -> frozenset[str]:
    with _lock:
        return frozenset(_secrets)


def redact(text: str) -> str:
    """``text`` with every registered secret, and anything shaped like an API key, masked."""
    if not text:
        return text
    for secret in sorted(known(), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return _KEY_SHAPE.sub(MASK, text)


def redact_obj(value: Any) -> Any:
    """``redact`` applied to every string inside dicts, lists and tuples (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_obj(k): redact_obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_obj(v) for v in value]
    return value
