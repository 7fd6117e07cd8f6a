"""Member resolution: run settings inherited, copies made, their temperatures spread or their same calls noted."""

from __future__ import annotations

import pytest

from ensemble_cli.config import load_config
from ensemble_cli.members import resolve
from ensemble_cli.session import Session
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
