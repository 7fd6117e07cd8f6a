"""README.md's console examples against today's output.

Every marked block's commands run once (docs/readme_examples.py, the embedded model where the block
uses it) and the block's structure must be today's: the commands, table titles, headers and row
labels, the shape of the usage line, note and error lines, and the seeded answers. Numbers, timings
and ids may differ. A block that looks like an example but has no marker fails, so that a new example
cannot drift unmarked. Regenerate the blocks with ``python docs/readme_examples.py``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
README_TEXT = (REPO / "README.md").read_text(encoding="utf-8")


def load_examples() -> ModuleType:
    """docs/readme_examples.py as a module (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("readme_examples", REPO / "docs" / "readme_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


examples = load_examples()


def block_params() -> list:
    params = []
    for block in examples.marked_blocks(README_TEXT):
        example = examples.EXAMPLES.get(block.name)
        marks = [pytest.mark.embedded] if example is None or example.embedded else []
        if example is not None and example.pool:
            marks.append(pytest.mark.pool)  # it runs Gemma 3 270M too: skipped without the pool extra
        params.append(pytest.param(block, id=block.name, marks=marks))
    return params


@pytest.fixture(scope="module")
def workspace():
    with examples.Workspace() as shared:
        yield shared


# The README's blocks


@pytest.mark.parametrize("block", block_params())
def test_block_shows_what_its_commands_print_today(block, workspace):
    assert block.name in examples.EXAMPLES, f"no example '{block.name}' in docs/readme_examples.py"
    today = examples.regenerate(block, workspace)
    assert today, f"'{block.name}' printed nothing"
    diff = examples.drift(block.fence.body, today, examples.EXAMPLES[block.name].seeded, block.name)
    assert not diff, "README block drifted; run python docs/readme_examples.py\n" + "\n".join(diff)


def test_every_example_is_marked_and_every_marker_is_known():
    assert examples.problems(README_TEXT) == []
    assert {block.name for block in examples.marked_blocks(README_TEXT)} == set(examples.EXAMPLES)


# The structure check


SHOWN = """\
$ ensemble vote --config configs/vote.yaml
running p-9c69ae9f632c: What is 7 + 5? Reply with the number only.
  round 1 plain -> 12
  round 1 careful
12
vote (majority)
┏━━━━━━━━┳━━━━━━━┓
┃ answer ┃ votes ┃
┡━━━━━━━━╇━━━━━━━┩
│ 12     │ 1     │
└────────┴───────┘
summary
┌─────────┬──────┐
│ winner  │ 12   │
│ wall s  │ 0.87 │
└─────────┴──────┘
usage: 4 calls, 543 tokens, cost $0.00, 5.67 CPU s in-process""".splitlines()


def edited(lines: list[str], old: str, new: str) -> list[str]:
    assert any(old in line for line in lines), old
    return [line.replace(old, new) for line in lines]


@pytest.mark.parametrize("old, new", [
    ("543 tokens", "61 tokens"), ("5.67 CPU", "0.4 CPU"), ("│ 1     │", "│ 3     │"), ("0.87", "1.2"),
    ("p-9c69ae9f632c", "p-0123abcd4567"),
], ids=["tokens", "cpu", "votes", "timing", "prompt id"])
def test_numbers_timings_and_ids_may_differ(old, new):
    assert examples.drift(SHOWN, edited(SHOWN, old, new)) == []


@pytest.mark.parametrize("today", [
    SHOWN[:-1],
    edited(SHOWN, "4 calls,", "4 call(s),"),
    SHOWN[:2] + ["note vote: 2 calls of member 'm' at temperature 0 give the same reply"] + SHOWN[2:],
    edited(SHOWN, "vote (majority)", "vote (weighted)"),
    edited(SHOWN, "┃ votes ┃", "┃ count ┃"),
    edited(SHOWN, "│ winner  │", "│ leader  │"),
    edited(SHOWN, "  round 1 careful", "  layer 1 careful"),
    SHOWN[:4] + ["15"] + SHOWN[5:],
    SHOWN[:9] + SHOWN[10:],
], ids=["usage line gone", "usage shape", "new note", "title", "header", "row label", "progress", "answer",
        "row gone"])
def test_structure_may_not_differ(today):
    assert examples.drift(SHOWN, today) != []


def test_an_unseeded_answer_may_differ_but_not_its_structure():
    other_answer = SHOWN[:4] + ["15"] + SHOWN[5:]
    assert examples.drift(SHOWN, other_answer, seeded=False) == []
    assert examples.drift(SHOWN, SHOWN[:-1], seeded=False) != []


def test_rewrapped_text_is_the_same_text():
    shown = ["$ llm -m ensemble-committee \"Why?\"", "The sky is blue because", "of Rayleigh scattering."]
    today = ["$ llm -m ensemble-committee \"Why?\"", "The sky is blue because of Rayleigh scattering."]
    assert examples.drift(shown, today) == []
    assert examples.drift(shown, today[:1] + ["The sky is blue because of the sea."]) != []


# Finding blocks and commands


def test_a_console_example_without_a_marker_is_reported():
    text = "\n".join([
        "<!-- example: vote -->", "```console", "$ ensemble vote -p hi", "12", "```",
        "```console", "$ ensemble committee -p hi", "hello", "```",
        "```", "$ ensemble moa -p hi", "```",
        "```python", "print('not an example')", "```",
    ])
    unmarked = examples.unmarked_examples(text)
    assert [line.split(": ", 1)[1] for line in unmarked] == ["$ ensemble committee -p hi", "$ ensemble moa -p hi"]


def test_commands_go_on_while_a_quote_is_open_or_a_line_ends_in_a_backslash():
    body = ["$ curl -s URL -d '{\"model\": \"committee\",", "    \"max_tokens\": 3}'", "{\"id\": 1}",
            "$ curl -s URL \\", "    -d '{}'", "{\"error\": 1}", "$ echo \"$(dirname \"$(llm logs path)\")\"", "/x"]
    steps = examples.split_steps(body)
    assert [len(step.command) for step in steps] == [2, 2, 1]
    assert [step.output for step in steps] == [["{\"id\": 1}"], ["{\"error\": 1}"], ["/x"]]


def test_rewrite_replaces_the_marked_block_and_nothing_else():
    text = "intro\n<!-- example: vote -->\n```console\n$ ensemble vote -p hi\nold\n```\noutro\n"
    block = examples.marked_blocks(text)[0]
    new = examples.rewrite(text, {block.marker: ["$ ensemble vote -p hi", "new"]})
    assert new == text.replace("old", "new")


def test_a_marker_must_say_what_its_example_leaves_out():
    name = next(name for name, example in examples.EXAMPLES.items() if example.abridge is not None)
    text = f"<!-- example: {name} -->\n```console\n$ true\n```\n"
    assert any("marker should read" in problem for problem in examples.problems(text))


# Abridging


def test_abridged_completion_leaves_out_the_keys_and_rounds_logprobs():
    completion = {"id": "chatcmpl-1", "created": 1, "system_fingerprint": "fp",
                  "choices": [{"message": {"content": "The", "refusal": None}, "logprobs": {"content": [
                      {"token": tok, "logprob": -0.123456, "bytes": [1],
                       "top_logprobs": [{"token": tok, "logprob": -0.123456, "bytes": [1]}] * 3}
                      for tok in ("The", " sky", " is", " blue", " because")]}}],
                  "ensemble": {"members": [{"name": f"member {i}", "provider": "local"} for i in range(6)]}}
    lines = examples.abridge_completion(json.dumps(completion, separators=(",", ":")).splitlines())
    assert len(lines) > 1 and all(len(line) <= examples.JSON_WIDTH for line in lines)
    shown = json.loads("\n".join(lines))
    assert shown == examples.prune(completion)
    text = "\n".join(lines)
    assert all(f'"{key}"' not in text for key in examples.ABRIDGED_KEYS)
    assert '"logprob": -0.123,' in text and "0.123456" not in text


def test_abridging_keeps_output_that_is_not_json():
    lines = ["curl: (7) Failed to connect"]
    assert examples.abridge_completion(lines) == lines


def test_cut_tables_and_usage_only():
    answer_at = SHOWN.index("12")
    assert examples.cut_tables(SHOWN[1:]) == SHOWN[1:answer_at + 1] + ["..."]
    assert examples.usage_only(SHOWN[1:]) == ["...", SHOWN[-1]]


def test_check_exits_1_when_a_block_drifted(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    budget = examples.EXAMPLES["budget"]
    readme.write_text(f"{budget.marker('budget')}\n```\n$ ensemble vote -c run.yaml -i prompts.jsonl -o out.jsonl "
                      "--budget 0.0095 -q\nensemble: error: an old message\n```\n", encoding="utf-8")
    monkeypatch.setattr(examples, "README", readme)
    assert examples.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "-line: ensemble: error: an old message" in out and "+line: ensemble: error:" in out
