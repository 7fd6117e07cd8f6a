"""Members bound from config, prompt templates of vote and verbalize, the CLI's error boundary."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from ensemble_cli.cli.common import error_boundary
from ensemble_cli.cli.providers_cmd import providers
from ensemble_cli.config import MemberConfig, load_config
from ensemble_cli.errors import AuthError, ConfigError, StrategyError
from ensemble_cli.providers.registry import ProviderRegistry
from ensemble_cli.strategies import verbalize_prompts, vote_prompts
from ensemble_cli.strategies.committee_sources import group_members
from ensemble_cli.wiring import bind_extra, bind_members


def test_members_and_judge_are_bound_with_inherited_settings():
    config = load_config(None, {"temperature": 0.3, "max_tokens": 20, "n": 2,
                                "members": [{"name": "a", "system": "S"}, {"name": "b", "temperature": 0.9}]})
    registry = ProviderRegistry(config)
    members = bind_members(config, registry)
    assert [(m.name, m.temperature, m.max_tokens) for m in members] == [
        ("a#1", 0.3, 20), ("a#2", 0.3, 20), ("b#1", 0.9, 20), ("b#2", 0.9, 20)]
    assert members[0].provider is members[3].provider  # one embedded model for all
    groups = group_members(members)
    assert [[m.name for m in g.members] for g in groups] == [["a#1", "a#2"], ["b#1", "b#2"]]
    judge = bind_extra(config, registry, MemberConfig(system="judge"), "judge")
    assert judge.name == "judge" and judge.temperature == 0.3 and judge.system == "judge"
    assert bind_extra(config, registry, None, "judge") is None


def test_prompt_texts():
    debate = vote_prompts.debate("Q?", [("42", "long reasoning " * 50), (None, "no idea")])
    assert debate.startswith("Q?") and "Agent 1: answer: 42." in debate and "Agent 2: answer: (none given)" in debate
    assert len(debate) < 1000  # reasoning is cut to its end
    assert "1 > 2" not in vote_prompts.ranking("Q?", ["a", "b"]) and "2 > 1" in vote_prompts.ranking("Q?", ["a", "b"])
    first = verbalize_prompts.first_request("standard", "Tell a joke.", 4, 0.1, None)
    assert "Write 4 different responses" in first and "below 0.1" in first and first.endswith("Tell a joke.")
    assert "<thinking>" in verbalize_prompts.first_request("cot", "x", 2, None, None)


@pytest.mark.parametrize(("error", "code"), [(ConfigError("bad"), 2), (AuthError("key"), 3),
                                              (StrategyError("no"), 1), (KeyboardInterrupt(), 130)])
def test_error_boundary_maps_errors_to_exit_codes(error, code, capsys):
    with pytest.raises(typer.Exit) as info:
        with error_boundary():
            raise error
    assert info.value.exit_code == code
    err = capsys.readouterr().err
    assert err.startswith("ensemble: ") and "Traceback" not in err


def test_traceback_flag_reraises(monkeypatch):
    monkeypatch.setenv("ENSEMBLE_TRACEBACK", "1")
    with pytest.raises(ConfigError):
        with error_boundary():
            raise ConfigError("bad")


def test_module_entry_point_and_providers_listing(capsys):
    """`python -m ensemble_cli` runs ensemble_cli/__main__.py."""
    result = subprocess.run([sys.executable, "-m", "ensemble_cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("ensemble ")
    providers()
    assert "llamacpp" in capsys.readouterr().out
