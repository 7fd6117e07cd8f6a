"""Every front end loads a config as the CLI does: the ``ENSEMBLE_*`` defaults under the YAML, flags on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from ensemble_cli.bench.arms import load_plan
from ensemble_cli.server.served import load_one

ENV = {"ENSEMBLE_PROVIDER": "vllm", "ENSEMBLE_MODEL": "from-env", "ENSEMBLE_BASE_URL": "http://127.0.0.1:9/v1"}


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ens.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def environment(monkeypatch):
    for var, value in ENV.items():
        monkeypatch.setenv(var, value)


def _server(path: Path):
    return load_one(path).config


def _bench(path: Path):
    plan = load_plan(path, "number")
    configs = [arm.config for arm in plan.arms if arm.config is not None]
    assert configs, "the bench plan has arms to run"
    return configs[0]


def _plugin(path: Path):
    pytest.importorskip("llm")
    from ensemble_cli.llm_plugin import EnsembleModel

    model = EnsembleModel("ens", path)
    assert model.problem is None, model.problem
    return model.config


FRONT_ENDS = {"server": _server, "bench": _bench, "llm plugin": _plugin}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_each_front_end_applies_the_environment_defaults_under_the_yaml(front_end, tmp_path, environment):
    text = "strategy: vote\nvote:\n  samples: 2\n" if front_end != "bench" else "score: number\n"
    config = FRONT_ENDS[front_end](_file(tmp_path, text))
    assert (config.provider, config.model, config.base_url) == ("vllm", "from-env", ENV["ENSEMBLE_BASE_URL"])


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_each_front_end_lets_the_yaml_win_over_the_environment(front_end, tmp_path, environment):
    body = "model: from-yaml\nprovider: ollama\n"
    text = ("strategy: vote\n" if front_end != "bench" else "score: number\n") + body
    config = FRONT_ENDS[front_end](_file(tmp_path, text))
    assert (config.provider, config.model) == ("ollama", "from-yaml")
