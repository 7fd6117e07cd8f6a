"""Benchmark datasets: items with a gold answer, from our JSONL or from the public formats people have on disk.

Formats (each line or row is one item; a bad one is one error naming ``file:line``):

- ours (JSONL): ``id``, ``prompt`` or ``messages``, ``answer``, optional ``choices`` (a list of strings);
- GSM8K (JSONL): ``question`` and ``answer`` whose last line is ``#### N``;
- multiple choice (JSONL): ARC (``question.stem`` + ``question.choices[{label, text}]`` + ``answerKey``, or
  the flat ``question`` + ``choices {label, text}`` + ``answerKey``) and MMLU (``question``, ``choices``
  list, ``answer`` index or letter);
- multiple choice (CSV): MMLU's header-less rows ``question, A, B, C, D, answer``, or a header with
  ``question``, choice columns ``A``, ``B``, ... and ``answer``.

A name of a shipped set (``arith``, ``mc``) loads it from the package. Nothing is downloaded.
"""

from __future__ import annotations

import csv
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..extraction import extract_number
from ..inputs import PromptItem, _messages, json_lines, read_file
from ..calls import Message
from .scoring import gold_number
from ..formatting import count

LETTERS = string.ascii_uppercase[:10]
CHOICE_INSTRUCTION = "Answer with the letter of the correct choice."


@dataclass(frozen=True)
class BenchItem:
    """One question: what is asked, the gold answer (a number, a choice letter or a text), the choices."""

    id: str
    messages: tuple[Message, ...]
    answer: str
    choices: tuple[str, ...] = ()

    def prompt_item(self) -> PromptItem:
        return PromptItem(self.id, self.messages)

    def gold(self) -> dict[str, Any]:
        """What a bench record keeps of the gold answer."""
        gold: dict[str, Any] = {"answer": self.answer}
        if self.choices:
            gold["choices"] = list(self.choices)
        return gold


@dataclass(frozen=True)
class Dataset:
    name: str
    items: list[BenchItem]
    format: str

    def default_scoring(self) -> str:
        """choice when every item has choices, number when every gold is a number, else exact."""
        if self.items and all(item.choices for item in self.items):
            return "choice"
        if self.items and all(gold_number(item.answer) is not None for item in self.items):
            return "number"
        return "exact"


def shipped_sets() -> dict[str, Path]:
    """The sets shipped in the package, by name."""
    folder = resources.files("ensemble_cli") / "data" / "bench"
    return {Path(str(entry)).stem: Path(str(entry)) for entry in folder.iterdir() if str(entry).endswith(".jsonl")}


def with_choices(question: str, choices: list[str]) -> str:
    lines = [question.rstrip(), ""]
    lines += [f"{LETTERS[i]}) {choice}" for i, choice in enumerate(choices)]
    return "\n".join([*lines, "", CHOICE_INSTRUCTION])


def choice_letter(value: Any, choices: list[str], where: str) -> str:
    """A gold choice given as a letter, an index (0-based) or the choice's text, as its letter."""
    if isinstance(value, bool):
        raise InputError(f"{where}: 'answer' must be a choice letter, index or text, not true/false")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        index = int(value)
        if not 0 <= index < len(choices):
            raise InputError(f"{where}: answer index {index} is out of range for {count(len(choices), 'choice')}")
        return LETTERS[index]
    text = str(value).strip()
    if len(text) == 1 and text.upper() in LETTERS[:len(choices)]:
        return text.upper()
    if text in choices:
        return LETTERS[choices.index(text)]
    raise InputError(f"{where}: answer {value!r} is not a choice letter (A-{LETTERS[len(choices) - 1]}), "
                     "index or one of the choices")


def gsm8k_answer(answer: str, where: str) -> str:
    last = answer.strip().splitlines()[-1] if answer.strip() else ""
    if not last.startswith("####"):
        raise InputError(f"{where}: a GSM8K answer must end with a line '#### N'")
    found = extract_number(last)
    if found is None:
        raise InputError(f"{where}: no number after '####' in {last!r}")
    return found.value


def _choices_list(raw: Any, where: str) -> tuple[list[str], list[str] | None]:
    """Choice texts, and their labels where given (ARC's ``{label, text}``)."""
    if isinstance(raw, dict) and isinstance(raw.get("text"), list):
        texts, labels = raw["text"], raw.get("label")
    elif isinstance(raw, list) and raw and all(isinstance(c, dict) for c in raw):
        texts, labels = [c.get("text") for c in raw], [c.get("label") for c in raw]
    elif isinstance(raw, list):
        texts, labels = raw, None
    else:
        raise InputError(f"{where}: 'choices' must be a list of strings or ARC's {{label, text}}")
    if len(texts) < 2 or len(texts) > len(LETTERS) or not all(isinstance(t, (str, int, float)) for t in texts):
        raise InputError(f"{where}: 'choices' needs 2 to {len(LETTERS)} choice texts")
    return [str(t) for t in texts], None if labels is None else [str(label) for label in labels]


def _mc_answer(value: Any, texts: list[str], labels: list[str] | None, where: str) -> str:
    if labels is not None and str(value) in labels:  # ARC labels may be 1..4 instead of A..D
        return LETTERS[labels.index(str(value))]
    return choice_letter(value, texts, where)


def parse_object(obj: Any, where: str, line_number: int, stem: str) -> tuple[BenchItem, str]:
    """One JSONL object in any of the JSON formats; returns the item and the format's name."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: each line must be a JSON object")
    item_id = str(obj["id"]) if obj.get("id") is not None else f"{stem}-{line_number}"
    question = obj.get("question")
    if isinstance(question, dict):  # ARC's original layout
        texts, labels = _choices_list(question.get("choices"), where)
        stem_text = question.get("stem")
        if not isinstance(stem_text, str):
            raise InputError(f"{where}: ARC 'question' needs a string 'stem'")
        answer = _mc_answer(obj.get("answerKey"), texts, labels, where)
        return BenchItem(item_id, (Message("user", with_choices(stem_text, texts)),), answer, tuple(texts)), "arc"
    if "answer" not in obj and "answerKey" not in obj:
        raise InputError(f"{where}: needs a gold 'answer' (or 'answerKey')")
    raw_answer = obj.get("answer", obj.get("answerKey"))
    if "choices" in obj:
        texts, labels = _choices_list(obj["choices"], where)
        if "messages" in obj:
            messages = _messages(obj["messages"], where)
        else:
            text = obj.get("prompt", question)
            if not isinstance(text, str):
                raise InputError(f"{where}: needs a string 'prompt' or 'question'")
            messages = (Message("user", with_choices(text, texts)),)
        answer = _mc_answer(raw_answer, texts, labels, where)
        return BenchItem(item_id, messages, answer, tuple(texts)), "multiple choice"
    if isinstance(question, str) and isinstance(raw_answer, str) and "####" in raw_answer:
        return BenchItem(item_id, (Message("user", question),), gsm8k_answer(raw_answer, where)), "gsm8k"
    if "messages" in obj:
        messages = _messages(obj["messages"], where)
    elif isinstance(obj.get("prompt", question), str):
        messages = (Message("user", str(obj.get("prompt", question))),)
    else:
        raise InputError(f"{where}: needs a string 'prompt' (or 'question') or a 'messages' list")
    if isinstance(raw_answer, bool) or not isinstance(raw_answer, (str, int, float)) or str(raw_answer).strip() == "":
        raise InputError(f"{where}: 'answer' must be a non-empty string or number")
    return BenchItem(item_id, messages, str(raw_answer).strip()), "jsonl"


def read_jsonl(path: Path) -> Dataset:
    items: list[BenchItem] = []
    formats: set[str] = set()
    for where, number, obj in json_lines(read_file(path, "dataset", "--dataset a .jsonl or .csv file"), str(path)):
        item, kind = parse_object(obj, where, number, path.stem)
        items.append(item)
        formats.add(kind)
    return Dataset(path.stem, _unique(items, path), "+".join(sorted(formats)) or "jsonl")


def read_csv(path: Path) -> Dataset:
    text = read_file(path, "dataset", "--dataset a .jsonl or .csv file")
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read as CSV ({exc})") from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    items: list[BenchItem] = []
    if "question" in header and "answer" in header:
        columns = [i for i, h in enumerate(header) if len(h) == 1 and h.upper() in LETTERS]
        if len(columns) < 2:
            raise InputError(f"{path}:1: a CSV header needs choice columns named A, B, C, ...")
        q, a = header.index("question"), header.index("answer")
        id_column = header.index("id") if "id" in header else None
        body = list(enumerate(rows[1:], start=2))
    else:
        columns, q, a, id_column = [], 0, -1, None
        body = list(enumerate(rows, start=1))
    for number, row in body:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{number}"
        if len(row) < 4 or (columns and len(row) < len(header)):
            raise InputError(f"{where}: a row needs a question, at least two choices and an answer")
        texts = [row[i] for i in columns] if columns else row[1:-1]
        item_id = row[id_column] if id_column is not None else f"{path.stem}-{number}"
        answer = choice_letter(row[a].strip(), texts, where)
        items.append(BenchItem(item_id, (Message("user", with_choices(row[q], texts)),), answer, tuple(texts)))
    return Dataset(path.stem, _unique(items, path), "multiple choice csv")


def _unique(items: list[BenchItem], path: Path) -> list[BenchItem]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise InputError(f"{path}: duplicate id {item.id!r}; ids must be unique (records and --resume use them)")
        seen.add(item.id)
    if not items:
        raise InputError(f"{path}: no items")
    return items


def load_dataset(spec: str) -> Dataset:
    """A dataset file (.jsonl or .csv), or the name of a shipped set."""
    path = Path(spec)
    if not path.exists():
        shipped = shipped_sets()
        if spec in shipped:
            path = shipped[spec]
        else:
            raise InputError(f"{spec}: dataset not found; give a .jsonl or .csv file, or a shipped set: "
                             f"{', '.join(sorted(shipped))}")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a .jsonl or .csv file")
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    return read_jsonl(path)
