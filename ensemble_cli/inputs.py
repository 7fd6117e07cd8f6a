"""Prompts to run: one ``--prompt``, or a JSONL file (or stdin) of ``{"id", "prompt" | "messages"}``."""

from __future__ import annotations

import codecs
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import EnsembleError, InputError, setting
from .calls import Message


def empty_reason(messages: tuple[Message, ...]) -> str | None:
    """Why ``messages`` ask nothing, if they do not: no user message, or an empty last one (whitespace only)."""
    users = [m for m in messages if m.role == "user"]
    if not users:
        return "no user message"
    if not users[-1].content.strip():
        return "the prompt is empty" if len(messages) == 1 else "the last user message is empty"
    return None


@dataclass(frozen=True)
class PromptItem:
    """One prompt to run: an id and its conversation, which must ask something (never an empty prompt:
    the model would be paid to answer nothing)."""

    id: str
    messages: tuple[Message, ...]

    def __post_init__(self) -> None:
        reason = empty_reason(self.messages)
        if reason is not None:
            raise InputError(f"prompt {self.id!r}: {reason}; give it a question")

    @property
    def text(self) -> str:
        """The last user message: what strategies that re-prompt (MoA, vote rounds) quote."""
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")

    def asking(self, text: str) -> tuple[Message, ...]:
        """The conversation with its last user message replaced by ``text`` (a re-worded question)."""
        last = max((i for i, m in enumerate(self.messages) if m.role == "user"), default=len(self.messages))
        return (*self.messages[:last], Message("user", text), *self.messages[last + 1:])

    def as_record(self) -> dict[str, Any]:
        if len(self.messages) == 1:
            return {"prompt": self.messages[0].content}
        return {"messages": [m.as_dict() for m in self.messages]}


def prompt_id(text: str) -> str:
    return "p-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def from_prompt(text: str) -> PromptItem:
    if not text.strip():
        raise InputError(f"{setting('prompt')} is empty; give it a question")
    return PromptItem(prompt_id(text), (Message("user", text),))


def _messages(raw: Any, where: str) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    messages = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or entry.get("role") not in ("system", "user", "assistant") or not isinstance(entry.get("content"), str):
            raise InputError(f"{where}: messages[{index}] needs a role (system, user or assistant) and string content")
        messages.append(Message(entry["role"], entry["content"]))
    return tuple(messages)


def json_problem(exc: json.JSONDecodeError) -> str:
    """What a JSON decoder found and where, as one phrase: ``Unterminated string starting at column 88``,
    ``Expecting value at line 2, column 1`` (the line only for text of several lines). The decoder's own
    message ends in "at" where it names a place (``starting at``, ``character at``); it is said once."""
    problem = exc.msg.removesuffix(" at")
    where = f"line {exc.lineno}, column {exc.colno}" if exc.doc.count("\n") else f"column {exc.colno}"
    return f"{problem} at {where}"


def json_lines(text: str, name: str) -> Iterator[tuple[str, int, Any]]:
    """Each non-blank line of JSONL ``text`` parsed: (``name:line``, line number, value). A line that is
    not JSON is an ``InputError`` naming the file, line and column."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            yield where, number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({json_problem(exc)}); "
                             "each line must be one JSON object") from None


def tolerant_json_lines(data: bytes, name: str, warn: Callable[[str], None]) -> Iterator[tuple[str, Any]]:
    """Each non-blank line of JSONL ``data`` parsed, as (``name:line``, value), for files a run appends to
    (records): a line that is not UTF-8 or not JSON is skipped and ``warn`` is told, naming ``name:line``; a
    last line without its newline is called half-written (a run killed mid-write)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{name}:{number}"
        try:
            yield where, json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if number == len(lines):
                warn(f"{where}: half-written last line (a run stopped mid-write?); skipped")
            elif isinstance(exc, UnicodeDecodeError):
                warn(f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x}); skipped")
            else:
                warn(f"{where}: not valid JSON ({json_problem(exc)}); skipped")


def read_bytes(path: Path, what: str, expected: str, error: type[EnsembleError] = InputError) -> bytes:
    """A file the tool reads, as bytes: missing, a directory or unreadable is one ``error`` line naming it;
    ``what`` names the file ("input file") and ``expected`` what to give instead."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory; give {expected}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None


def read_file(path: Path, what: str, expected: str, error: type[EnsembleError] = InputError) -> str:
    """A file the tool reads (inputs, configs, datasets, records), as UTF-8 text: missing, a directory,
    unreadable or not UTF-8 is one ``error`` line naming it; ``what`` names the file ("input file") and
    ``expected`` what to give instead."""
    data = read_bytes(path, what, expected, error)
    try:
        return decode_utf8(data, str(path))
    except InputError as exc:
        raise error(exc.template) from None


def parse_line(obj: Any, where: str, line_number: int) -> PromptItem:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: each line must be a JSON object with 'prompt' or 'messages'")
    if "messages" in obj:
        messages = _messages(obj["messages"], where)
    elif isinstance(obj.get("prompt"), str):
        messages = (Message("user", obj["prompt"]),)
    else:
        raise InputError(f"{where}: needs a string 'prompt' or a 'messages' list")
    reason = empty_reason(messages)
    if reason is not None:
        raise InputError(f"{where}: {reason}; give each line a question")
    item_id = obj.get("id")
    return PromptItem(str(item_id) if item_id is not None else f"line-{line_number}", messages)


def decode_utf8(data: bytes, name: str) -> str:
    """``data`` as text (a UTF-8 byte-order mark is dropped); bytes that are not UTF-8 are an
    ``InputError`` naming ``name`` and the line."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{name}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); "
                         "save it as UTF-8") from None


def read_jsonl(text: str, name: str) -> list[PromptItem]:
    items: list[PromptItem] = []
    seen: set[str] = set()
    for where, number, obj in json_lines(text, name):
        item = parse_line(obj, where, number)
        if item.id in seen:
            raise InputError(f"{name}:{number}: duplicate id {item.id!r}; ids must be unique (records and "
                             f"{setting('resume')} tell prompts apart by them)")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise InputError(f"{name}: no prompts (the input is empty); give one JSON object per line with "
                         "'prompt' or 'messages'")
    return items


def read_stdin() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8", "surrogateescape")


def load_inputs(prompt: str | None, input_path: str | None) -> list[PromptItem]:
    if prompt is not None and input_path is not None:
        raise InputError(f"give either {setting('prompt')} or {setting('input')}, not both")
    if prompt is not None:
        return [from_prompt(prompt)]
    if input_path is None:
        raise InputError(f"nothing to run: give {setting('prompt')} or {setting('input')} (a JSONL file, or - for stdin)")
    if input_path == "-":
        return read_jsonl(decode_utf8(read_stdin(), "stdin"), "stdin")
    path = Path(input_path)
    return read_jsonl(read_file(path, "input file", "--input a JSONL file (or - for stdin)"), str(path))
