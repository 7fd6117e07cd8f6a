"""Lists of backends in messages and help are derived from the one capability table (providers/backends.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.config import load_config
from ensemble_cli.errors import CapabilityError, ConfigError
from ensemble_cli.providers import backends
from ensemble_cli.providers.presets import PRESETS
from ensemble_cli.session import Session

runner = CliRunner()


def prefix_capable() -> list[str]:
    return [name for name, caps in backends.table().items() if caps.prefix_continuation]


def test_the_table_covers_every_backend():
    assert list(backends.table()) == ["local", *PRESETS, "llm"] == list(backends.NAMES)
    assert "together" in prefix_capable() and "llm" not in prefix_capable() and "openai" not in prefix_capable()


@pytest.mark.parametrize("strategy", ["committee", "cot-decode"])
def test_a_prefix_refusal_names_every_backend_that_can(strategy):
    config = load_config(None, {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "K"})
    with pytest.raises(CapabilityError) as info:
        Session(config, environ={"K": "sk-placeholder-000000"}).prepare(strategy)
    for name in prefix_capable():
        assert name in str(info.value), name


def test_an_unknown_provider_lists_every_backend():
    with pytest.raises(ConfigError) as info:
        Session(load_config(None, {"provider": "nope"})).prepare("vote")
    assert all(name in str(info.value) for name in backends.NAMES)


def test_provider_help_lists_every_backend():
    shown = " ".join(runner.invoke(app, ["vote", "--help"], env={"COLUMNS": "400"}).stdout.split())
    assert all(name in shown for name in backends.NAMES)


def test_the_providers_command_shows_the_table(capsys):
    from ensemble_cli.cli.providers_cmd import rows

    listed = {row["name"]: row["capabilities"] for row in rows()}
    for name, caps in backends.table().items():
        assert listed[name]["prefix_continuation"] == caps.prefix_continuation
        assert listed[name]["max_top_logprobs"] == caps.max_top_logprobs
