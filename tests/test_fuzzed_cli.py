"""Fuzzed command lines, configs and input files: every exit is one of the README's codes, never a traceback."""

from __future__ import annotations

import random
from pathlib import Path

from typer.testing import CliRunner

from ensemble_cli.cli import app

README_EXITS = {0, 1, 2, 3, 4, 5, 130, 143}
runner = CliRunner()


GARBAGE = ["", "-1", "0", "1e999", "nan", "abc", "\x00", "--", "{}", "[", "regex:(", "json:", "9" * 40, "é", "-"]
FLAGS = {
    "committee": ["--merge", "--top-k", "--draft", "--gate", "--stop"],
    "vote": ["--samples", "--extract", "--method", "--rounds", "--consensus", "--quorum"],
    "moa": ["--layers", "--self-moa", "--max-reference-chars", "--quorum", "--proposer-temperature"],
    "cot-decode": ["--k", "--k-max", "--extract", "--template", "--answer-prompt"],
    "verbalize": ["--k", "--variant", "--total", "--tail", "--min-prob", "--sample", "--compare"],
}
COMMON = ["--n", "--max-tokens", "--temperature", "--seed", "--max-concurrency", "--timeout", "--max-retries",
          "--parallel-prompts", "--provider", "--api-key-env"]
YAMLS = [b"a: [", b"- 1\n- 2\n", b"committee: 3\n", b"n: true\n", b"members: [{name: x, colour: red}]\n",
         b"\t: :\n", b"max_tokens: '4'\n", b"vote: {extract: 'regex:('}\n", b"!!python/object:os.system x\n"]
JSONL = [b"{", b"[]", b'{"prompt": 3}', b'{"messages": []}', b'{"messages": [{"role": "x"}]}', b"null",
         b'{"id": [1], "prompt": "a"}', b'"just a string"']


def _fuzz_case(rng: random.Random, tmp_path: Path, index: int) -> list[str]:
    command = rng.choice(sorted(FLAGS))
    args = [command, "-p", "hi"]
    for _ in range(rng.randint(1, 3)):
        flag = rng.choice(FLAGS[command] + COMMON)
        args += [flag, rng.choice(GARBAGE)]
    shape = rng.randrange(4)
    if shape == 0:
        config = tmp_path / f"c{index}.yaml"
        config.write_bytes(rng.choice(YAMLS) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 64)))
        args += ["--config", str(config)]
    elif shape == 1:
        prompts = tmp_path / f"i{index}.jsonl"
        prompts.write_bytes(b"\n".join(rng.choice(JSONL + [rng.randbytes(8)]) for _ in range(rng.randint(1, 3))))
        args = [a for a in args if a not in ("-p", "hi")] + ["--input", str(prompts)]
    return args


def test_fuzzed_command_lines_never_show_a_traceback(tmp_path, cat_server):
    _, remote_args = cat_server
    rng = random.Random(10)
    for index in range(120):
        args = _fuzz_case(rng, tmp_path, index) + remote_args
        result = runner.invoke(app, args)
        shown = f"{args}: exit {result.exit_code}\n{result.stderr}"
        assert result.exit_code in README_EXITS, shown
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, shown
        assert result.exception is None or isinstance(result.exception, SystemExit), (shown, result.exception)
