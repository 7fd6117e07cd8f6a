"""JSONL records: one object per prompt, appended and flushed as each finishes; resumable."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

from .errors import InputError

SCHEMA_VERSION = 1


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def completed_ids(path: Path) -> set[str]:
    """Ids of prompts whose record in ``path`` finished without error (an unfinished last line is ignored)."""
    if not path.exists():
        return set()
    done: set[str] = set()
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("status") == "ok" and "id" in record:
                done.add(str(record["id"]))
    return done


class RecordWriter:
    """Appends records to a file (or stdout for ``-``), one line each, flushed and synced per record."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self._stream: IO[str] | None = None
        self._owns = False

    def __enter__(self) -> "RecordWriter":
        if self.target == "-":
            self._stream = sys.stdout
        elif self.target:
            path = Path(self.target)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                needs_newline = path.exists() and path.stat().st_size > 0 and not _ends_with_newline(path)
                self._stream = path.open("a", encoding="utf-8")
            except OSError as exc:
                raise InputError(f"{path}: cannot open the output file ({exc.strerror})") from None
            self._owns = True
            if needs_newline:
                self._stream.write("\n")
        return self

    def write(self, record: dict[str, Any]) -> None:
        if self._stream is None:
            return
        self._stream.write(json.dumps(record, ensure_ascii=False, default=_plain) + "\n")
        self._stream.flush()
        if self._owns:
            os.fsync(self._stream.fileno())

    def __exit__(self, *_: object) -> None:
        if self._owns and self._stream is not None:
            self._stream.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as stream:
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) == b"\n"


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and other number-likes."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
