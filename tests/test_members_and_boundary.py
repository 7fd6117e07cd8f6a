"""Member resolution (every default applied once), prompt texts, and the CLI's error boundary."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ensemble_cli import secrets
from ensemble_cli.cli.boundary import Terminated, guarded
from ensemble_cli.cli.providers_cmd import providers
from ensemble_cli.config import load_config
from ensemble_cli.errors import AuthError, ConfigError, ProviderError, StrategyError
from ensemble_cli.members import resolve
from ensemble_cli.session import Session
from ensemble_cli.strategies import verbalize_prompts, vote_prompts
from ensemble_cli.strategies.committee_groups import group_members


REMOTE = {"provider": "vllm", "model": "toy", "base_url": "http://127.0.0.1:9/v1"}


def test_members_inherit_run_settings_and_are_copied():
    config = load_config(None, {"temperature": 0.3, "max_tokens": 20, "n": 2,
                                "members": [{"name": "a", "system": "S"}, {"name": "b", "temperature": 0.9}],
                                "vote": {"judge": {"system": "judge"}}, **REMOTE})
    roster = resolve(config, "vote")
    assert [(m.name, m.temperature, m.max_tokens, m.provider) for m in roster.members] == [
        ("a#1", 0.3, 20, "vllm"), ("a#2", 0.3, 20, "vllm"), ("b#1", 0.9, 20, "vllm"), ("b#2", 0.9, 20, "vllm")]
    assert roster.roles.get("judge") is not None
    assert (roster.roles["judge"].name, roster.roles["judge"].temperature, roster.roles["judge"].system) == ("judge", 0.3, "judge")
    prepared = Session(config).prepare("committee")
    members = prepared.strategy.called()  # type: ignore[attr-defined]
    assert members[0].provider is members[3].provider  # one provider for all members of one endpoint and model
    groups = group_members(members)
    assert [[m.name for m in g.members] for g in groups] == [["a#1", "a#2"], ["b#1", "b#2"]]


@pytest.mark.parametrize(("overrides", "strategy", "temperatures", "noted"), [
    ({"n": 3}, "moa", [0.4, 0.7, 1.0], "spread"),
    ({"moa": {"self_moa": 3}}, "moa", [0.4, 0.7, 1.0], "spread"),
    ({"n": 3, "moa": {"proposer_temperature": 0.5}}, "moa", [0.5, 0.5, 0.5], None),
    ({"n": 3, "moa": {"proposer_temperature": 0.0}}, "moa", [0.0, 0.0, 0.0], "the 3 calls of 'm' at temperature 0 "
                                                                            "are the same call, made once"),
    ({"n": 5}, "vote", [0.0] * 5, "the 5 calls of 'm' at temperature 0 are the same call, made once and counted 5"),
    ({"vote": {"samples": 3}}, "vote", [0.0], "the 3 calls of 'm' at temperature 0 are the same call"),
    ({"n": 3, "temperature": 0.7}, "vote", [0.7] * 3, None),
    ({"members": [{"name": "a"}, {"name": "b"}]}, "verbalize", [0.0], "ignoring b"),
])
def test_identical_deterministic_copies_are_varied_or_reported(overrides, strategy, temperatures, noted):
    prepared = Session(load_config(None, {**overrides, **REMOTE})).prepare(strategy)
    called = [m for m in prepared.info.members if m["role"] in ("member", "proposer")]
    assert [m["temperature"] for m in called] == temperatures
    notes = " ".join(prepared.notes)
    assert (noted in notes) if noted else not notes


def test_moa_record_lists_every_called_member_with_its_real_settings():
    config = load_config(None, {"n": 3, "moa": {"aggregator_temperature": 0.2}, **REMOTE})
    info = Session(config).prepare("moa").info  # nothing is called: preparing a run makes no call
    assert [(m["name"], m["role"], m["temperature"]) for m in info.members] == [
        ("m#1", "proposer", 0.4), ("m#2", "proposer", 0.7), ("m#3", "proposer", 1.0), ("aggregator", "aggregator", 0.2)]


def test_prompt_texts():
    debate = vote_prompts.debate("Q?", [("42", "long reasoning " * 50), (None, "no idea")])
    assert debate.startswith("Q?") and "Agent 1: answer: 42." in debate and "Agent 2: answer: (none given)" in debate
    assert len(debate) < 1000  # reasoning is cut to its end
    assert "1 > 2" not in vote_prompts.ranking("Q?", ["a", "b"]) and "2 > 1" in vote_prompts.ranking("Q?", ["a", "b"])
    first = verbalize_prompts.first_request("standard", "Tell a joke.", 4, 0.1, None)
    assert "Write 4 different responses" in first and "below 0.1" in first and first.endswith("Tell a joke.")
    assert "<thinking>" in verbalize_prompts.first_request("cot", "x", 2, None, None)


@pytest.mark.parametrize(("error", "code", "shown"), [
    (ConfigError("bad"), 2, "error: bad"), (AuthError("key"), 3, "error: key"), (ProviderError("down"), 4, "down"),
    (StrategyError("no"), 1, "error: no"), (KeyboardInterrupt(), 130, "interrupted"),
    (Terminated(), 143, "terminated"), (ZeroDivisionError("boom"), 1, "internal error: ZeroDivisionError: boom"),
])
def test_error_boundary_maps_errors_to_exit_codes(error, code, shown, capsys):
    def fail() -> None:
        raise error

    assert guarded(fail) == code
    err = capsys.readouterr().err
    assert err.startswith("ensemble: ") and shown in err and "Traceback" not in err


def test_traceback_flag_prints_a_redacted_traceback(monkeypatch, capsys):
    monkeypatch.setenv("ENSEMBLE_TRACEBACK", "1")
    secrets.register("sk-test-boundary-secret-0001")
    def fail() -> None:
        raise AuthError("rejected: Bearer sk-test-boundary-secret-0001")

    status = guarded(fail)
    err = capsys.readouterr().err
    assert status == 3 and "Traceback" in err
    assert "sk-test-boundary-secret-0001" not in err and secrets.MASK in err


def test_module_entry_point_and_providers_listing(capsys):
    """`python -m ensemble_cli` runs ensemble_cli/__main__.py."""
    result = subprocess.run([sys.executable, "-m", "ensemble_cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("ensemble ")
    providers()
    assert "llamacpp" in capsys.readouterr().out


def test_catalog_builds_every_strategy_and_refuses_an_unknown_one():
    from ensemble_cli import catalog

    assert catalog.names() == ("committee", "vote", "moa", "cot-decode", "verbalize", "cascade")
    session = Session(load_config(None, {**REMOTE, "cascade": {"tiers": [{"strategy": "vote"}, {"strategy": "moa"}]}}))
    for name in catalog.names():
        assert session.prepare(name).info.strategy == name  # built and validated, nothing called
    with pytest.raises(ConfigError, match="unknown strategy 'debate'"):
        session.prepare("debate")
