"""A strategy is one module and its spec; every front end derives what it needs from the spec.

A test-only strategy, registered at run time, is then served with no other change by the CLI (its command
and flags), the library (``ensemble_cli.run`` and ``ensemble_cli.NAME``), the server (a model, its
request keys) and the llm plugin (a model, its options), and its records pass the record schema.
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections import defaultdict

import httpx
import llm
import pytest
import yaml
from conftest import REPO
from fake_server import ReplyModel
from pydantic import Field
from serve_helpers import serve
from typer.testing import CliRunner

import ensemble_cli
from ensemble_cli import catalog
from ensemble_cli.calls import Request
from ensemble_cli.cli import app, strategy_command
from ensemble_cli.cli.strategy_commands import common_flags, strategy_flags
from ensemble_cli.config import load_config
from ensemble_cli.errors import ConfigError
from ensemble_cli.schema import record_model
from ensemble_cli.session import Session
from ensemble_cli.strategies.base import Member, StrategyResult, call
from ensemble_cli.strategies.details import Model, Settings
from ensemble_cli.strategies.spec import Build, StrategySpec
from ensemble_cli.usage import Tally

runner = CliRunner()


class EchoSettings(Settings):
    times: int = Field(default=1, ge=1, le=5, description="How many times to repeat the reply.")
    shout: bool = Field(default=False, description="Upper-case the reply.")


class EchoDetails(Model):
    reply: str
    times: int
    finish_reason: str = "stop"


class Echo:
    """Asks its first member once and repeats the reply."""

    def __init__(self, members: list[Member], settings: EchoSettings) -> None:
        self.member, self.settings, self.notes = members[0], settings, []

    def called(self) -> list[Member]:
        return [self.member]

    async def run(self, item, emit=None, tally=None) -> StrategyResult:
        tally = tally or Tally()
        request = Request(self.member.messages(item.messages), max_tokens=self.member.max_tokens,
                          temperature=self.member.temperature)
        reply = (await call(self.member, request, tally))[0]
        text = " ".join([reply.text.upper() if self.settings.shout else reply.text] * self.settings.times)
        details = EchoDetails(reply=reply.text, times=self.settings.times, finish_reason=reply.finish_reason)
        return StrategyResult(output=text, details=details, tally=tally)


ECHO = StrategySpec(name="echo-test", summary="Repeats one member's reply (a test-only strategy).",
                    settings=EchoSettings, details=EchoDetails, build=lambda made: Echo(made.members, made.settings),
                    one_member=True, measure=lambda details: {"confidence": 1.0})


@pytest.fixture
def echo():
    catalog.register(ECHO)
    yield ECHO
    catalog.unregister(ECHO.name)


@pytest.fixture
def upstream(fake_server):
    return fake_server({"a": ReplyModel(lambda ctx: "Hello")})


def remote(server) -> dict:
    return {"provider": "vllm", "model": "a", "base_url": server.base_url, "max_retries": 0}


def test_the_cli_serves_a_strategy_registered_at_run_time(echo, upstream):
    listed = runner.invoke(app, ["--help"]).stdout
    assert "echo-test" in listed and "Repeats one member's reply" in listed
    result = runner.invoke(app, ["echo-test", "-p", "Say hello.", "--times", "2", "--shout", "--provider", "vllm",
                                 "--model", "a", "--base-url", upstream.base_url, "-o", "-", "-q"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["output"] == "HELLO HELLO" and record["strategy"] == "echo-test"
    record_model().model_validate(record)  # the schema knows its details
    bad = runner.invoke(app, ["echo-test", "-p", "x", "--times", "9"])
    assert bad.exit_code == 2 and "--times: " in bad.stderr


def test_the_config_and_the_library_serve_it(echo, upstream, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"strategy": "echo-test", "echo-test": {"times": 3}, **remote(upstream)}))
    assert load_config(config).settings_for("echo-test").times == 3
    config.write_text("echo_test:\n  tims: 2\n")
    result = runner.invoke(app, ["echo-test", "-c", str(config), "-p", "x"])
    assert result.exit_code == 2 and "echo-test.tims: unknown key; did you mean 'times'?" in result.stderr
    assert ensemble_cli.run("echo-test", "Say hello.", times=2, **remote(upstream)).output == "Hello Hello"
    assert ensemble_cli.echo_test("Say hello.", **remote(upstream)).output == "Hello"


def test_the_server_and_the_llm_plugin_serve_it(echo, upstream, tmp_path, monkeypatch):
    ensembles = tmp_path / "home" / "ensembles"
    config = {"strategy": "echo-test", **remote(upstream)}
    with serve(ensembles, {"parrot": config}) as url:
        models = httpx.get(f"{url}/v1/models").json()["data"]
        reply = httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
            "model": "parrot", "messages": [{"role": "user", "content": "Say hello."}], "ensemble": {"times": 2}})
        refused = httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
            "model": "parrot", "messages": [{"role": "user", "content": "x"}], "ensemble": {"loud": True}})
    assert [m["strategy"] for m in models] == ["echo-test"]
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["choices"][0]["message"]["content"] == "Hello Hello"
    assert body["ensemble"]["strategy"] == "echo-test" and body["ensemble"]["confidence"] == 1.0
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "ensemble.loud"
    monkeypatch.setenv("ENSEMBLE_HOME", str(tmp_path / "home"))
    model = llm.get_model("ensemble-parrot")
    assert {"times", "shout", "max_tokens"} <= set(model.Options.model_fields)
    assert model.prompt("Say hello.", times=3).text() == "Hello Hello Hello"


def test_every_setting_has_a_flag_and_every_flag_a_setting():
    common = {flag.param for flag, _ in common_flags()}
    for spec in catalog.specs():
        command = strategy_command(spec)
        params = {p.name for p in command.params}
        own = {flag.param for flag, _ in strategy_flags(spec)}
        assert params == common | own, spec.name
        expected = set()
        for name in spec.settings.model_fields:
            if name in spec.member_settings():
                expected |= {f"{name}_provider", f"{name}_model"} | ({name} if f"{name}" in own else set())
            else:
                expected.add(name)
        assert own == expected | set(spec.display), spec.name


def test_a_strategys_name_appears_in_at_most_three_modules_outside_strategies():
    """The registry, the package exports and the bench's default arms; every other module derives."""
    names = {spec.name for spec in catalog.specs()} | {spec.section for spec in catalog.specs()}
    found: dict[str, set[str]] = defaultdict(set)
    for path in (REPO / "ensemble_cli").rglob("*.py"):
        if "strategies" in path.relative_to(REPO).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found[str(path.relative_to(REPO))].add(node.value)
    assert set(found) <= {"ensemble_cli/catalog.py", "ensemble_cli/__init__.py", "ensemble_cli/bench/arms.py"}, found


def test_a_spec_builds_its_strategy_from_bound_members():
    from scripted import ScriptedProvider

    made = ECHO.build(Build(load_config(None), EchoSettings(times=2), [Member("m", ScriptedProvider("hi"))]))
    from ensemble_cli.inputs import from_prompt

    assert asyncio.run(made.run(from_prompt("q"))).output == "hi hi"


def test_catalog_builds_every_strategy_and_refuses_an_unknown_one():
    from ensemble_cli import catalog

    assert catalog.names() == ("committee", "vote", "moa", "cot-decode", "verbalize", "cascade")
    session = Session(load_config(None, {"provider": "vllm", "model": "toy", "base_url": "http://127.0.0.1:9/v1",
                                         "cascade": {"tiers": [{"strategy": "vote"}, {"strategy": "moa"}]}}))
    for name in catalog.names():
        assert session.prepare(name).info.strategy == name  # built and validated, nothing called
    with pytest.raises(ConfigError, match="unknown strategy 'debate'"):
        session.prepare("debate")
