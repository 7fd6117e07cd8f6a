"""The record schema: generated from the typed details, printed by `ensemble schema`, and true of real records."""

from __future__ import annotations

import json

import pytest
from scripted import ScriptedProvider
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.config import load_config
from ensemble_cli.inputs import from_prompt
from ensemble_cli.schema import record_model
from ensemble_cli.session import Session
from ensemble_cli.sinks.collect import Collector

TAGGED = "<response><text>Blue</text><probability>0.6</probability></response>"


@pytest.mark.parametrize(("strategy", "config"), [
    ("committee", {"n": 2, "max_tokens": 4}),
    ("vote", {"n": 3, "temperature": 0.5, "vote": {"extract": "number", "rounds": 2}}),
    ("moa", {"n": 2, "moa": {"layers": 2}}),
    ("cot-decode", {"max_tokens": 6, "cot-decode": {"k": 2}}),
    ("verbalize", {"verbalize": {"k": 1}}),
])
def test_real_records_of_every_strategy_match_the_schema(strategy, config):
    provider = ScriptedProvider(default=lambda request: TAGGED if "different response" in request.messages[-1].content
                                else "The answer is 42.")
    collector = Collector()
    Session(load_config(None, config), provider=provider).run_sync(strategy, [from_prompt("q?")], [collector])
    (record,) = collector.records
    assert record["status"] == "ok"
    parsed = record_model().model_validate(record)
    assert type(parsed.details).__name__.lower().startswith(strategy.replace("-", ""))
    assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == record  # nothing lost or added


def test_schema_command_prints_the_json_schema():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert set(schema["required"]) >= {"schema", "strategy", "id", "status", "details", "usage"}
    assert {"CommitteeDetails", "VoteDetails", "MoaDetails", "CotDecodeDetails", "VerbalizeDetails"} <= set(schema["$defs"])


def test_schema_command_function_prints_the_same_schema(capsys):
    from ensemble_cli.cli.schema_cmd import schema
    from ensemble_cli.schema import record_schema

    schema()
    assert json.loads(capsys.readouterr().out) == record_schema()
