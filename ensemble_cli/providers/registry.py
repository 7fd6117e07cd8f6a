"""Builds providers for members: one instance per endpoint and model, one HTTP client per run."""

from __future__ import annotations

import asyncio
import os
from functools import partial
from typing import Mapping

import httpx

from ..config import MemberConfig, RunConfig
from ..errors import AuthError, ConfigError
from .base import Provider
from .openai_compat import Endpoint, OpenAICompatibleProvider, PerLoop, make_client
from .presets import PRESETS

NO_KEY = "sk-no-key-required"
BACKENDS = ("local", *PRESETS)


class ProviderRegistry:
    """Owns the shared ``httpx.AsyncClient`` and the per-endpoint concurrency bounds."""

    def __init__(
        self,
        run: RunConfig,
        http_client: httpx.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.run = run
        self.environ = os.environ if environ is None else environ
        self._given_http = http_client
        self._http = PerLoop(self._new_http)
        self._opened: list[httpx.AsyncClient] = []
        self._endpoints: dict[tuple[str, str, str | None], Endpoint] = {}
        self._providers: dict[tuple[str, str | None, str | None, str | None], Provider] = {}

    def _new_http(self) -> httpx.AsyncClient:
        if self._given_http is not None:
            return self._given_http
        limits = httpx.Limits(max_connections=max(self.run.max_concurrency * 4, 20))
        client = httpx.AsyncClient(timeout=httpx.Timeout(self.run.timeout), limits=limits)
        self._opened.append(client)
        return client

    def provider_for(self, member: MemberConfig) -> Provider:
        backend = member.provider or self.run.provider
        cache_key = (backend, member.model, member.base_url, member.prefix_mode)
        provider = self._providers.get(cache_key)
        if provider is None:
            provider = self._build(backend, member)
            self._providers[cache_key] = provider
        return provider

    def _build(self, backend: str, member: MemberConfig) -> Provider:
        label = f"member '{member.name}'"
        if backend == "local":
            from .local import LocalProvider

            return LocalProvider(member.model, label=label)
        preset = PRESETS.get(backend)
        if preset is None:
            raise ConfigError(f"{label}: unknown provider {backend!r}; choose one of {', '.join(BACKENDS)}")
        base_url = member.base_url or preset.base_url
        if not base_url:
            raise ConfigError(f"{label}: provider {backend!r} needs a base URL; pass --base-url or set base_url")
        if not member.model:
            raise ConfigError(f"{label}: provider {backend!r} needs a model name; pass --model or set model")
        key_env = member.api_key_env or preset.api_key_env
        api_key = self.environ.get(key_env, "") if key_env else ""
        if key_env and not api_key:
            raise AuthError(f"{label}: no API key: set {key_env} or pass --api-key-env VAR")
        endpoint_key = (backend, base_url.rstrip("/"), key_env)
        endpoint = self._endpoints.get(endpoint_key)
        if endpoint is None:
            endpoint = Endpoint(
                preset=preset,
                base_url=base_url.rstrip("/"),
                clients=PerLoop(partial(make_client, base_url, api_key or NO_KEY, self._http.get, self.run.timeout)),
                limiters=PerLoop(partial(asyncio.Semaphore, self.run.max_concurrency)),
                timeout_s=self.run.timeout,
                max_retries=self.run.max_retries,
                api_key_env=key_env,
            )
            self._endpoints[endpoint_key] = endpoint
        return OpenAICompatibleProvider(
            endpoint, member.model, label, member.prefix_mode or preset.prefix_mode, member.template or "chatml"
        )

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        for client in self._opened:
            if not client.is_closed:
                try:
                    await client.aclose()
                except RuntimeError:  # opened on an event loop that has since closed
                    pass
        self._opened.clear()
