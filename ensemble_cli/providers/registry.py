"""Builds providers for members: one instance per endpoint and model, one HTTP transport per registry.

A registry is created and closed (``await registry.aclose()``) inside one running event loop; its
transport, SDK clients and semaphores are made lazily on first use within that loop.
"""

from __future__ import annotations

import asyncio
import re
import os
from typing import Mapping

import httpx

from .. import secrets
from ..config import MemberConfig, RunConfig
from ..errors import AuthError, ConfigError, setting
from .backends import NAMES
from .base import Provider
from .endpoint import Endpoint
from .openai_compat import MemberOptions, OpenAICompatibleProvider
from .presets import PRESETS
from .transport import ClientTransport

NO_KEY = "sk-no-key-required"
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def member_options(member: MemberConfig) -> MemberOptions:
    """The member's ``reasoning`` and ``thinking`` keys."""
    return MemberOptions(reasoning=member.reasoning, thinking=member.thinking)


class ProviderRegistry:
    """Owns the HTTP transport and the per-endpoint concurrency bounds of one run."""

    def __init__(
        self,
        run: RunConfig,
        http_client: httpx.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.run = run
        self.environ = os.environ if environ is None else environ
        self._given_http = http_client
        self._transport: httpx.AsyncBaseTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._endpoints: dict[tuple[str, str, str | None], Endpoint] = {}
        self._providers: dict[tuple, Provider] = {}
        self.notes: list[str] = []
        """Remarks about the providers built (settings a backend cannot apply), said once per run."""

    def _transport_for_loop(self) -> httpx.AsyncBaseTransport:
        """The shared transport, made on first use inside the running loop (remade if the loop changed)."""
        loop = asyncio.get_running_loop()
        if self._transport is None or self._loop is not loop:
            if self._given_http is not None:
                self._transport = ClientTransport(self._given_http)
            else:
                limits = httpx.Limits(max_connections=max(self.run.max_concurrency * 4, 20))
                self._transport = httpx.AsyncHTTPTransport(limits=limits)
            self._loop = loop
        return self._transport

    def provider_for(self, member: MemberConfig) -> Provider:
        backend = member.provider or self.run.provider
        options = member_options(member)
        cache_key = (backend, member.model, member.base_url, member.prefix_mode, member.template,
                     member.api_key_env, options)
        provider = self._providers.get(cache_key)
        if provider is None:
            provider = self._build(backend, member, options)
            self._providers[cache_key] = provider
        return provider

    def _build(self, backend: str, member: MemberConfig, options: MemberOptions) -> Provider:
        label = f"member '{member.name}'"
        if backend == "local":
            from .local import LocalProvider

            local = LocalProvider(member.model, label="the local model", template=member.template)
            if local.plain_prompts:
                note = (f"local model '{local.model}' has no chat template (a base model): its prompts are written in "
                        f"{local.prompt_form()}; set a member's {setting('template')} to choose another")
                if note not in self.notes:
                    self.notes.append(note)
            return local
        if backend == "llm":
            from .llm_backend import LlmProvider

            provider = LlmProvider(member.model, label, self.run.max_concurrency)
            self.notes += [n for n in provider.notes if n not in self.notes]
            return provider
        preset = PRESETS.get(backend)
        if preset is None:
            raise ConfigError(f"{label}: unknown provider {backend!r}; choose one of {', '.join(NAMES)}")
        moved = self.environ.get(preset.base_url_env) if preset.base_url_env else None
        base_url = member.base_url or moved or preset.base_url
        secrets.register_url(base_url)
        if not base_url:
            raise ConfigError(f"{label}: provider {backend!r} needs a base URL; set {setting('base_url')}")
        model = member.model or preset.default_model
        if not model:
            raise ConfigError(f"{label}: provider {backend!r} needs a model name; set {setting('model')}")
        key_env = member.api_key_env or preset.api_key_env
        if key_env and not VARIABLE_NAME.fullmatch(key_env):
            secrets.register(key_env)  # most likely the key itself, pasted where its variable's name belongs
            raise ConfigError(f"{label}: {setting('api_key_env')} must be the NAME of an environment variable that "
                              "holds the key (e.g. OPENAI_API_KEY), not the key; the value given is not shown")
        api_key = self.environ.get(key_env, "") if key_env else ""
        secrets.register(api_key)
        if key_env and not api_key:
            raise AuthError(f"{label}: no API key: set the environment variable {key_env}, or name the variable "
                            f"that holds the key with {setting('api_key_env')}")
        endpoint_key = (backend, base_url.rstrip("/"), key_env)
        endpoint = self._endpoints.get(endpoint_key)
        if endpoint is None:
            endpoint = Endpoint(preset, base_url, api_key or NO_KEY, key_env, timeout_s=self.run.timeout,
                                max_retries=self.run.max_retries, max_concurrency=self.run.max_concurrency,
                                transport_for=self._transport_for_loop)
            self._endpoints[endpoint_key] = endpoint
        # one provider serves every member with these settings: its errors name the endpoint, and the
        # strategy that called it names the member
        return OpenAICompatibleProvider(endpoint, model, f"provider '{backend}'",
                                        member.prefix_mode or preset.prefix_mode, member.template, options)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        for endpoint in self._endpoints.values():
            await endpoint.aclose()
        if self._transport is not None and self._given_http is None:
            try:
                await self._transport.aclose()
            except RuntimeError:  # opened on an event loop that has since closed
                pass
        self._transport = None
