"""Config loading: validation messages, precedence, members."""

from __future__ import annotations

import pytest

from ensemble_cli.config import load_config
from ensemble_cli.members import listed
from ensemble_cli.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_and_path(tmp_path):
    path = write(tmp_path, "committee:\n  merge: mean\n  mergee: vote\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: committee.mergee: unknown key; did you mean 'merge'?"


def test_wrong_type_names_key_and_expected_type(tmp_path):
    path = write(tmp_path, "members:\n  - name: a\n    temperature: hot\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: members.0.temperature:")
    assert "valid number" in message and "'hot'" in message


def test_malformed_yaml_gives_line(tmp_path):
    path = write(tmp_path, "n: 3\nmembers: [a, b\n")
    with pytest.raises(ConfigError, match=r"malformed YAML at line \d+"):
        load_config(path)


def test_top_level_must_be_mapping(tmp_path):
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_precedence_flag_over_yaml_over_env(tmp_path):
    path = write(tmp_path, "model: from-yaml\nn: 2\n")
    env = {"ENSEMBLE_MODEL": "from-env", "ENSEMBLE_PROVIDER": "vllm"}
    config = load_config(path, {"n": 7}, environ=env)
    assert (config.model, config.provider, config.n) == ("from-yaml", "vllm", 7)
    assert load_config(path, {"model": "from-flag"}, environ=env).model == "from-flag"


def test_bad_override_names_the_setting_for_the_front_end_to_show(tmp_path):
    with pytest.raises(ConfigError, match=r"^committee.merge: ") as info:
        load_config(None, {"committee": {"merge": "median"}})
    assert info.value.text(lambda path: f"<{path}>").startswith("<committee.merge>: ")


def test_members_inherit_and_replicate():
    config = load_config(None, {
        "provider": "local", "temperature": 0.5, "n": 2,
        "members": [{"name": "a", "system": "be brief"}, {"name": "b", "temperature": 0.1, "weight": 2}],
    })
    members = listed(config)
    assert [m.name for m in members] == ["a#1", "a#2", "b#1", "b#2"]
    assert [m.temperature for m in members] == [0.5, 0.5, 0.1, 0.1]
    assert members[0].system == "be brief" and members[2].weight == 2
    assert all(m.provider == "local" for m in members)


def test_cot_decode_section_uses_its_dashed_name(tmp_path):
    config = load_config(write(tmp_path, "cot-decode:\n  k: auto\n"))
    assert config.settings_for("cot-decode").k == "auto"


def test_cot_decode_section_in_either_spelling_merges_with_flags(tmp_path):
    config = load_config(write(tmp_path, "cot_decode:\n  k: 3\n"), {"cot-decode": {"extract": "text"}})
    assert (config.settings_for("cot-decode").k, config.settings_for("cot-decode").extract) == (3, "text")
