"""One base URL with its key, its openai SDK client and its concurrency bound, shared by its members.

The SDK client and the ``EndpointTransport`` under it are made on first use, inside the running event
loop. A registry belongs to one loop; ``transport_for`` hands out the registry's shared transport for
the loop that is running, so an endpoint rebuilds its client if it is ever used from a later loop
(library callers that run one ``asyncio.run`` per strategy call).
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai

from .presets import Preset
from .transport import EndpointTransport


def display_url(url: str) -> str:
    """``url`` without credentials or query string (``https://user:KEY@host/v1?api_key=KEY`` → ``https://host/v1``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Endpoint:
    def __init__(self, preset: Preset, base_url: str, api_key: str, api_key_env: str | None, *, timeout_s: float,
                 max_retries: int, max_concurrency: int,
                 transport_for: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self.preset = preset
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        self._api_key = api_key
        self._transport_for = transport_for
        self._client: openai.AsyncOpenAI | None = None
        self._bound_to: httpx.AsyncBaseTransport | None = None
        self.transport: EndpointTransport | None = None
        self.ignores_n: set[str] = set()
        """Models whose replies held fewer choices than ``n``: later calls make separate calls at once."""

    @property
    def shown_url(self) -> str:
        return display_url(self.base_url)

    @property
    def root_url(self) -> str:
        """The server root, for native routes (``/props``, ``/api/generate``) beside the OpenAI ``/v1`` ones."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def client(self) -> openai.AsyncOpenAI:
        inner = self._transport_for()
        if self._client is None or self._bound_to is not inner:
            self.transport = EndpointTransport(inner, self.max_concurrency, self.timeout_s)
            http = httpx.AsyncClient(transport=self.transport, timeout=httpx.Timeout(self.timeout_s))
            # openai 3.x runs on httpx2 and accepts an httpx AsyncClient too
            self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, http_client=http,  # type: ignore[arg-type]
                                              max_retries=self.max_retries, timeout=self.timeout_s)
            self._bound_to = inner
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()
            except RuntimeError:  # opened on an event loop that has since closed
                pass
            self._client = None
