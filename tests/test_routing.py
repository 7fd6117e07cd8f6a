"""Routed names in the core, the library and the `llm` plugin: `ENSEMBLE@PROVIDER/MODEL` parsed once, the members
that name no upstream switched as `--provider/--model` switch them, the ones that name theirs kept.

Remote calls go to the fake upstream, which `openai` reaches through `OPENAI_BASE_URL` (set by whoever runs
the process, as for the openai SDK)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from fake_server import ReplyModel

from ensemble_cli.config import MemberConfig, RunConfig, build_config
from ensemble_cli.errors import ConfigError
from ensemble_cli.providers.registry import ProviderRegistry
from ensemble_cli.routing import Gate, Route, RouteError, parse, switch

KEY = "sk-routing-test-key-0123456789abcdef"


@pytest.mark.parametrize("name, route", [
    ("vote@openai/gpt-4o-mini", Route("vote", "openai", "gpt-4o-mini")),
    ("moa-lite@deepseek/deepseek-v4-flash", Route("moa-lite", "deepseek", "deepseek-v4-flash")),
    ("vote@together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
     Route("vote", "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")),
    ("vote@ollama/llama3:8b", Route("vote", "ollama", "llama3:8b")),
    ("vote@local", Route("vote", "local", None)),
    ("a@openai/x@y", Route("a", "openai", "x@y")),
])
def test_names_split_on_the_first_at_and_read_the_rest_as_a_member_spec(name, route):
    assert parse(name) == route and parse(name).name == name


def test_the_library_parses_files_and_keyless_providers_the_server_refuses():
    gate = Gate({"OPENAI_API_KEY": KEY}, {"smollm2": "smollm2"})
    with pytest.raises(RouteError, match="never names a file"):
        gate.admit(parse("vote@local/models/x.gguf"))
    assert parse("vote@local/models/x.gguf").model == "models/x.gguf"  # the library's caller owns its files
    assert gate.admit(parse("vote@openai/mini")) == "mini" and gate.admit(parse("vote@local")) == "smollm2"
    assert gate.providers() == ["local", "openai"]
    assert Gate({"OPENAI_API_KEY": ""}, {}).providers() == []


def test_judges_and_tiers_that_name_half_an_upstream_are_refused_by_where_they_are():
    judge = {"strategy": "vote", "vote": {"extract": "judge", "judge": {"provider": "local"}}}
    with pytest.raises(RouteError, match=r"vote\.judge names its own provider 'local' but not the rest"):
        switch(judge, parse("v@openai/mini"), "v.yaml")
    tiers = {"strategy": "cascade", "cascade": {"tiers": [{"strategy": "vote"}, {"strategy": "vote", "model": "big"}]}}
    with pytest.raises(RouteError, match=r"cascade\.tiers\[1\] names its own model 'big'"):
        switch(tiers, parse("c@openai/mini"), "c.yaml")
    tiers["cascade"]["tiers"][1] = {"strategy": "vote", "members": [{"name": "x", "model": "big"}]}
    with pytest.raises(RouteError, match=r"cascade\.tiers\[1\]\.members\[0\] 'x' names its own model 'big'"):
        switch(tiers, parse("c@openai/mini"), "c.yaml")


def test_a_route_that_would_switch_no_member_is_refused():
    pool = {"strategy": "vote", "members": ["local/smollm2", "local/gemma3-270m"]}
    with pytest.raises(RouteError, match=r"every member of 'pool' names its own provider and model, so the route "
                                         r"to openai/mini would change nothing; ask for 'pool' itself"):
        switch(pool, parse("pool@openai/mini"), "pool.yaml")
    judged = {**pool, "vote": {"method": "usc", "judge": {"name": "j"}}}
    assert switch(judged, parse("pool@openai/mini"), "pool.yaml")[2].settings_for("vote").judge is not None
    tiers = {"strategy": "cascade", "cascade": {"tiers": [{"strategy": "vote", "members": ["local/smollm2"]},
                                                        {"strategy": "vote", "members": ["openai/gpt-4o"]}]}}
    with pytest.raises(RouteError, match="would change nothing"):
        switch(tiers, parse("c@openai/mini"), "c.yaml")
    tiers["cascade"]["tiers"][1] = {"strategy": "vote"}
    switch(tiers, parse("c@openai/mini"), "c.yaml")  # the second tier is switched


def test_members_that_name_their_upstream_keep_the_ensembles_endpoint():
    data = {"strategy": "vote", "provider": "vllm", "base_url": "http://127.0.0.1:1/v1", "model": "home",
            "members": [{"name": "a"}, {"name": "own", "provider": "vllm", "model": "big"}, "openai/gpt-4o"]}
    routed, kept, config = switch(data, parse("v@openai/mini"), "v.yaml")
    assert routed["provider"] == "openai" and routed["base_url"] is None and kept["base_url"] == data["base_url"]
    a, own, spec = config.members
    assert (a.provider, a.model, a.base_url) == (None, None, None)  # filled from the switched top level
    assert (own.provider, own.model, own.base_url) == ("vllm", "big", "http://127.0.0.1:1/v1")
    assert (spec.provider, spec.model) == ("openai", "gpt-4o")
    assert build_config(data).members[1].base_url is None, "the ensemble's own config is not touched"


def test_a_provider_moves_by_its_base_url_variable(registry_for):
    environ = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "http://127.0.0.1:5/v1"}
    provider = registry_for(environ).provider_for(MemberConfig(name="m", provider="openai", model="mini"))
    assert provider.base_url == "http://127.0.0.1:5/v1"
    own = ProviderRegistry(RunConfig(), environ=environ).provider_for(
        MemberConfig(name="m", provider="openai", model="mini", base_url="http://127.0.0.1:6/v1"))
    assert own.base_url == "http://127.0.0.1:6/v1", "a member's own base_url still wins"


@pytest.fixture
def upstream(fake_server):
    return fake_server({"mini": ReplyModel(lambda ctx: "Paris"), "home": ReplyModel(lambda ctx: "Lyon")})


@pytest.fixture
def homes(tmp_path, monkeypatch, upstream):
    """A user ensemble 'capital' (two members on a keyless vllm endpoint), openai moved to the fake upstream."""
    user = tmp_path / "ensemble" / "ensembles"
    user.mkdir(parents=True)
    (user / "capital.yaml").write_text(yaml.safe_dump({
        "strategy": "vote", "provider": "vllm", "base_url": upstream.base_url, "model": "home", "cache": False,
        "temperature": 0.5, "max_tokens": 8, "members": [{"name": "a"}, {"name": "b"}],
        "vote": {"extract": "text", "rounds": 1}}))
    env = {"ENSEMBLE_HOME": str(tmp_path / "ensemble"), "LLM_USER_PATH": str(tmp_path / "llm"),
           "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": upstream.base_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def models_called(upstream) -> list[str]:
    return [entry["body"]["model"] for entry in upstream.requests if entry["path"].endswith("/chat/completions")]


def test_the_library_runs_a_named_ensemble_and_its_routed_name(homes, upstream):
    from ensemble_cli import run_ensemble

    assert run_ensemble("capital", "Capital of France?").output == "Lyon"
    assert models_called(upstream) == ["home", "home"]
    upstream.reset_counters()
    result = run_ensemble("capital@openai/mini", "Capital of France?", rounds=1, max_tokens=4)
    assert result.output == "Paris" and {m["model"] for m in result.members} == {"mini"}
    assert models_called(upstream) == ["mini", "mini"]
    assert upstream.headers_seen[-1]["authorization"] == f"Bearer {KEY}"
    with pytest.raises(ConfigError, match="no named ensemble 'nope'; choose one of .*capital"):
        run_ensemble("nope@openai/mini", "q")
    with pytest.raises(RouteError, match="unknown provider 'bogus'"):
        run_ensemble("capital@bogus/x", "q")


def test_the_llm_plugin_runs_a_routed_name_an_alias_points_at(homes, upstream):
    llm = pytest.importorskip("llm", reason="the llm package comes with the 'local' extra")
    llm_dir = os.path.join(homes["LLM_USER_PATH"])
    os.makedirs(llm_dir, exist_ok=True)
    with open(os.path.join(llm_dir, "aliases.json"), "w") as f:
        json.dump({"capital-mini": "ensemble-capital@openai/mini", "broken": "ensemble-capital@openai/http://x"}, f)
    response = llm.get_model("ensemble-capital@openai/mini").prompt("Capital of France?")
    assert response.text() == "Paris" and models_called(upstream) == ["mini", "mini"]
    assert response.json()["members"][0]["model"] == "mini"
    with pytest.raises(llm.ModelError, match="looks like a URL"):
        llm.get_model("broken").prompt("q").text()
    upstream.reset_counters()
    done = subprocess.run([sys.executable, "-m", "llm", "-m", "capital-mini", "Capital of France?"],
                          capture_output=True, text=True, env={**os.environ, **homes}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Paris" and models_called(upstream) == ["mini", "mini"]
