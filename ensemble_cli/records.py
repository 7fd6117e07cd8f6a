"""JSONL records: one object per prompt, appended and flushed as each finishes; resumable.

A record carries the strategy, the run settings and a fingerprint of everything that shapes its
output, so ``--resume`` skips only prompts done by the same strategy and settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence

from .errors import InputError
from .inputs import PromptItem, read_bytes, read_stdin, tolerant_json_lines
from .secrets import redact_obj
from .usage import Tally

SCHEMA_VERSION = 2
"""2: adds ``fingerprint``, ``settings``, ``members[].role``/``max_tokens`` and ``usage.failed_calls``."""


def output_text(output: Any) -> str:
    """A record's output as one text (verbalize with several draws: one per line; none: empty)."""
    if output is None:
        return ""
    if isinstance(output, list):
        return "\n".join(output_text(o) for o in output)
    return str(output)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def fingerprint(strategy: str, settings: dict[str, Any], members: Sequence[dict[str, Any]]) -> str:
    """A short hash of what shapes a run's outputs: strategy, settings and every member's call settings."""
    shaped = json.dumps({"strategy": strategy, "settings": settings, "members": list(members)},
                        sort_keys=True, default=str)
    return hashlib.sha256(shaped.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RunInfo:
    """What every record of one run shares."""

    strategy: str
    settings: dict[str, Any]
    members: list[dict[str, Any]]
    run_id: str = field(default_factory=new_run_id)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.strategy, self.settings, self.members)


def build_record(run: RunInfo, item: PromptItem, *, output: Any, details: dict[str, Any], tally: Tally,
                 errors: Sequence[str], ok: bool) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run.run_id,
        "strategy": run.strategy,
        "fingerprint": run.fingerprint,
        "id": item.id,
        "status": "ok" if ok else "error",
        "input": item.as_record(),
        "output": output,
        "details": details,
        "members": run.members,
        "settings": run.settings,
        "usage": tally.as_dict(),
        "errors": list(errors),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class Recorded:
    """What an output file already holds: ids done by this run's settings, and records of other runs."""

    done: set[str] = field(default_factory=set)
    other: dict[str, str] = field(default_factory=dict)
    """id -> why it does not count (another strategy or other settings)."""
    records: int = 0


def parse_records(data: bytes) -> Iterator[dict[str, Any]]:
    """The well-formed records in JSONL bytes; a damaged line (cut by a kill, not UTF-8) is skipped quietly."""
    for _, record in tolerant_json_lines(data, "", lambda _: None):
        if isinstance(record, dict) and "id" in record:
            yield record


@dataclass(frozen=True)
class Located:
    """A record read back, and where it was: ``file:line``."""

    where: str
    record: dict[str, Any]


RECORDS_EXPECTED = "a JSONL file a strategy command wrote with -o (or - for stdin)"


REQUEST_ONLY = ("rejected", "cancelled")
"""The ``status`` of a line ``ensemble serve --log`` writes for a request that made no record."""


def request_only(value: Any) -> bool:
    """Whether ``value`` is a server log's line for a refused or cancelled request (a ``request_id``, no ``id``)."""
    return (isinstance(value, dict) and "id" not in value and "request_id" in value
            and value.get("status") in REQUEST_ONLY)


def read_records(sources: Sequence[str], warn: Callable[[str], None],
                 requests: list[Located] | None = None) -> list[Located]:
    """The records of JSONL files (``-`` for stdin), in order. A line that cannot be a record of this
    version (half-written, not JSON, not an object with an id, another ``schema``) is skipped and ``warn``
    names its ``file:line``; a file that cannot be read is an ``InputError``. A server log's lines for
    refused and cancelled requests go to ``requests`` (when given) instead of a warning each."""
    found: list[Located] = []
    for source in sources:
        if source == "-":
            data, name = read_stdin(), "stdin"
        else:
            data, name = read_bytes(Path(source), "records file", RECORDS_EXPECTED), source
        for where, record in tolerant_json_lines(data, name, warn):
            if requests is not None and request_only(record) and record.get("schema") == SCHEMA_VERSION:
                requests.append(Located(where, record))
            elif not isinstance(record, dict) or "id" not in record:
                warn(f"{where}: not a record (a JSON object with an id); skipped")
            elif record.get("schema") != SCHEMA_VERSION:
                warn(f"{where}: a record of schema version {record.get('schema')} (this ensemble reads "
                     f"{SCHEMA_VERSION}); skipped")
            else:
                found.append(Located(where, record))
    return found


def read_recorded(path: Path, strategy: str, print_: str) -> Recorded:
    """Scan ``path`` for ok records; a damaged line (cut by a kill, bytes that are not UTF-8) is skipped.
    Only a regular file is read: other outputs (``/dev/null``, ``/dev/stdout``, FIFOs) hold nothing to resume."""
    found = Recorded()
    if not path.exists():
        return found
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give -o a file name")
    if not path.is_file():
        return found  # a device, pipe or FIFO holds no records, and reading it would block or consume it
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the output file ({exc.strerror})") from None
    for record in parse_records(data):
        found.records += 1
        if record.get("status") != "ok":
            continue
        item_id = str(record["id"])
        if record.get("strategy") != strategy:
            found.other[item_id] = f"written by {record.get('strategy')}"
        elif record.get("fingerprint") != print_:
            found.other[item_id] = "written with other settings"
        else:
            found.done.add(item_id)
            found.other.pop(item_id, None)
    return found


def is_regular_file(stream: IO[str]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False


class RecordWriter:
    """Appends records to a file (or stdout for ``-``), one line each, flushed per record and synced
    where the target is a regular file (devices, pipes and FIFOs cannot be synced)."""

    def __init__(self, target: str | None, flag: str = "-o") -> None:
        self.target = target
        self.flag = flag
        """The setting that names the target, for error messages (``--log`` for the server's log)."""
        self._stream: IO[str] | None = None
        self._owns = False
        self._sync = False

    def __enter__(self) -> "RecordWriter":
        if self.target == "-":
            self._stream = sys.stdout
        elif self.target:
            path = Path(self.target)
            if path.is_dir():
                raise InputError(f"{path}: is a directory; give {self.flag} a file name")
            try:
                if path.parent != Path(""):
                    path.parent.mkdir(parents=True, exist_ok=True)
                tail = _damaged_tail(path)
                self._stream = path.open("a", encoding="utf-8")
            except OSError as exc:
                raise InputError(f"{path}: cannot open the output file ({exc.strerror}); give {self.flag} a file "
                                 "you can write") from None
            self._owns = True
            self._sync = is_regular_file(self._stream)
            if tail:
                self._stream.write("\n")
        return self

    def write(self, record: dict[str, Any]) -> None:
        if self._stream is None:
            return
        self._stream.write(json.dumps(redact_obj(record), ensure_ascii=False, default=_plain) + "\n")
        self._stream.flush()
        if self._sync:
            os.fsync(self._stream.fileno())

    def __exit__(self, *_: object) -> None:
        if self._owns and self._stream is not None:
            self._stream.close()


def _damaged_tail(path: Path) -> bool:
    """Whether a regular file's last line is unfinished (a kill mid-write): the next record starts on a new line."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        with path.open("rb") as stream:
            stream.seek(-1, os.SEEK_END)
            return stream.read(1) != b"\n"
    except OSError:
        return False


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars, pydantic models and other number-likes."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
