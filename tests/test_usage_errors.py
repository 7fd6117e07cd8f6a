"""Mistakes on the command line and in config keys: one ``ensemble: error:`` line naming the flag or key and
the fix (the parser's "did you mean" included), exit 2, never a box or a traceback; for every command, and
every setting checked before the embedded model loads."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import no_traceback
from ensemble_cli.cli import app

runner = CliRunner()
STRATEGIES = ["committee", "vote", "moa", "cot-decode", "verbalize", "cascade"]


def one_line(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ensemble: error: "), result.stderr
    assert not any(box in result.stderr for box in "╭│╰─") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", STRATEGIES)
def test_a_misspelt_flag_says_what_was_meant(command):
    line = one_line(runner.invoke(app, [command, "-p", "hi", "--max-tokns", "8"]), "--max-tokns: no such option")
    assert "did you mean" in line and "--max-tokens" in line and f"`ensemble {command} --help`" in line


@pytest.mark.parametrize(("args", "needles"), [
    (["vote", "-p", "hi", "--max-tokens", "-5"], ["--max-tokens: ", "greater than or equal to 1"]),
    (["vote", "-p", "hi", "--budget", "abc"], ["--budget: ", "valid number"]),
    (["verbalize", "-p", "hi", "--k", "0"], ["--k: ", "greater than or equal to 1"]),
    (["vote", "-p", "hi", "--budget", "-1"], ["--budget: ", "greater than 0"]),
    (["committee", "-p", "hi", "--merge", "median"], ["--merge: ", "'mean', 'product' or 'vote'"]),
    (["vote", "-p", "hi", "--consensus", "2"], ["--consensus: ", "less than or equal to 1"]),
    (["revote"], ["RECORDS: required", "ensemble revote --help"]),
    (["vot"], ["No such command 'vot'", "vote"]),
    (["--bogus"], ["--bogus: no such option"]),
    (["bench", "--limit", "0"], ["--limit: "]),
    (["vote", "-p", "hi", "--max-tokens"], ["--max-tokens: give it a value"]),
    (["vote", "-p", "hi", "-t", "abc"], ["error: --temperature: ", "valid number"]),
    (["show", "x.jsonl", "--id"], ["--id: give it a value"]),
    (["cache"], ["ensemble cache: name a subcommand: stats, clear, prune", "ensemble cache --help"]),
    (["cache", "prune"], ["--older-than: required"]),
    (["serve", "--port", "99999"], ["--port: ", "less than or equal to 65535"]),
    (["serve", "--port", "0"], ["--port: ", "greater than or equal to 1"]),
])
def test_bad_values_are_one_line_naming_the_flag(args, needles):
    one_line(runner.invoke(app, args), *needles)


@pytest.mark.parametrize(("yaml", "needle"), [
    ("max_token: 8\n", "max_token: unknown key; did you mean 'max_tokens'?"),
    ("members:\n  - name: a\n    tempreature: 0.5\n", "members.0.tempreature: unknown key; did you mean 'temperature'?"),
    ("vote:\n  sample: 3\n", "vote.sample: unknown key; did you mean 'samples'?"),
    ("prices:\n  openai/x: {input: 1, output: 2, ouput: 3}\n", "ouput: unknown key; did you mean 'output'?"),
    ("zzz: 1\n", "zzz: unknown key"),
])
def test_a_misspelt_config_key_gets_the_same_suggestion(tmp_path, yaml, needle):
    config = tmp_path / "run.yaml"
    config.write_text(yaml)
    line = one_line(runner.invoke(app, ["vote", "-c", str(config), "-p", "hi"]), f"{config}: ", needle)
    if needle == "zzz: unknown key":
        assert "did you mean" not in line


def test_help_and_version_still_exit_0():
    assert runner.invoke(app, ["--version"]).exit_code == 0
    result = runner.invoke(app, ["vote", "--help"])
    assert result.exit_code == 0 and "--samples" in result.stdout


def _commands(group, path=()):
    """Every command's words (``("cache", "stats")``), from the root app's click group."""
    import typer
    from typer.core import TyperGroup

    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, TyperGroup):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


def test_help_screens_show_a_type_only_beside_options_that_take_a_value():
    import typer

    commands = list(_commands(typer.main.get_command(app)))
    assert ("vote",) in commands and ("cache", "stats") in commands
    for words in commands:
        result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, words
        assert "<bool>" not in result.stdout, words
        help_row = next(line for line in result.stdout.splitlines() if "--help" in line)
        assert "<" not in help_row.split("Show this message")[0], words
    vote = runner.invoke(app, ["vote", "--help"], env={"COLUMNS": "200"}).stdout
    assert "<int range>" in next(line for line in vote.splitlines() if "--samples" in line)
    stats = runner.invoke(app, ["cache", "stats", "--help"], env={"COLUMNS": "200"}).stdout
    assert "<path>" in next(line for line in stats.splitlines() if "--cache-dir" in line)


def test_no_arguments_shows_the_help_and_exits_2():
    result = runner.invoke(app, [])
    assert result.exit_code == 2 and "committee" in result.stdout and not result.stderr.strip()


@pytest.mark.parametrize(("command", "flags", "message"), [
    ("vote", ["--extract", "nonsense"], "extract"),
    ("vote", ["--extract", "regex:("], "regex"),
    ("cot-decode", ["--extract", "json:"], "extract"),
    ("cot-decode", ["--k", "0"], "k must be 'auto' or a number of branches from 1 to 20"),
    ("cot-decode", ["--k", "many"], "k"),
    ("cot-decode", ["--template", "no question here"], "{question}"),
    ("verbalize", ["--variant", "multi", "--total", "2", "--k", "5"], "total"),
    ("committee", ["--gate", "1.5"], "gate"),
    ("moa", ["--quorum", "0"], "quorum"),
])
def test_bad_settings_fail_before_the_model_loads(command, flags, message, monkeypatch):
    import ensemble_cli.providers.local as local

    def no_loading(*_a, **_k):
        raise AssertionError("the model was loaded before the settings were checked")

    monkeypatch.setattr(local, "engine_at", no_loading)
    monkeypatch.setattr(local, "engine_for", no_loading)
    result = runner.invoke(app, [command, "-p", "x", *flags])
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and result.stderr.startswith("ensemble: error: ")
    no_traceback(result)
