"""A content-addressed cache of member calls, in SQLite, shared by every command and process.

A call's key is a hash of the endpoint (provider name, base URL and the member options that change the
wire request; never the API key), the model and the whole request. Only requests the backend makes
reproducible are served from it or stored (``Provider.reproducible``: temperature 0 where the backend
applies it, or a seed it honours); a sampled reply is never replayed. Completions are stored as JSON.

Several processes and threads may read and write at once: the database is in WAL mode with a busy
timeout, and writes are ``INSERT OR REPLACE``. A damaged file is removed and rebuilt empty with a
one-line warning; a cache that cannot be opened at all is switched off with a warning, never a crash.

Each entry keeps its bookkeeping: how often it was served (``hits``) and when it was last stored or served
(``last_used``), for ``ensemble cache stats`` and ``ensemble cache prune``. A file written before these
columns existed gains them when it is opened, every entry kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from .calls import Completion, Request, TokenLogprob, TopToken, Usage

FORMAT = 1
"""Part of every key: bump it when the stored shape of a completion changes."""
FILE_NAME = "calls.sqlite3"
BUSY_TIMEOUT_S = 30.0
DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def default_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$ENSEMBLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ensemble``, else ``~/.cache/ensemble``."""
    environ = os.environ if environ is None else environ
    if environ.get("ENSEMBLE_CACHE_DIR"):
        return Path(environ["ENSEMBLE_CACHE_DIR"]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "ensemble"


class CallTarget(Protocol):
    """What the cache needs of a provider (``providers.base.Provider`` has it)."""

    def identity(self) -> tuple[Any, ...]: ...

    def reproducible(self, request: Request) -> bool: ...


def same_call_key(provider: CallTarget, request: Request) -> str | None:
    """The key of the reply ``request`` always gets from ``provider``, or None where the backend does not
    make it reproducible (``Provider.reproducible``). A greedy call's seed changes nothing, so calls that
    differ only in their seeds at temperature 0 are the same call."""
    if not provider.reproducible(request):
        return None
    unseeded = request.but(seed=None)
    if request.temperature == 0 and provider.reproducible(unseeded):
        request = unseeded
    return call_key(provider, request)


def call_key(provider: CallTarget, request: Request) -> str:
    shaped = {"format": FORMAT, "endpoint": list(provider.identity()), "request": dataclasses.asdict(request)}
    return hashlib.sha256(json.dumps(shaped, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def dump(completions: list[Completion]) -> str:
    return json.dumps([dataclasses.asdict(c) for c in completions])


def _top(items: list[dict[str, Any]]) -> tuple[TopToken, ...]:
    return tuple(TopToken(t["text"], t["logprob"], t.get("is_end", False)) for t in items)


def load(text: str) -> list[Completion]:
    completions = []
    for c in json.loads(text):
        completions.append(Completion(
            text=c["text"],
            tokens=tuple(TokenLogprob(t["text"], t["logprob"], _top(t["top"])) for t in c["tokens"]),
            finish_reason=c["finish_reason"],
            usage=Usage(**c["usage"]),
            latency_s=c["latency_s"],
            provider=c["provider"],
            model=c["model"],
            retries=c["retries"],
            end_logprobs=_top(c["end_logprobs"]),
            cpu_s=c.get("cpu_s", 0.0),
        ))
    return completions


def warn_stderr(message: str) -> None:
    print(f"ensemble: warning: {message}", file=sys.stderr, flush=True)


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock this step needs (it will let go)."""
    return "locked" in str(exc) or "busy" in str(exc)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    if name:
        return name in DAMAGED
    text = str(exc)
    return "not a database" in text or "malformed" in text


BOOKKEEPING = (("hits", "INTEGER NOT NULL DEFAULT 0"), ("last_used", "REAL"))
"""Columns added to a cache file written before they existed: how often an entry was served, and when last."""


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the bookkeeping columns an older cache file lacks, keeping every entry (its last use: when it was
    stored). Processes migrating one file at once may race: a column another added first is no error."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    for name, kind in BOOKKEEPING:
        if name in present:
            continue
        try:
            conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {kind}")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise
    conn.execute("UPDATE calls SET last_used = created WHERE last_used IS NULL")


@dataclasses.dataclass(frozen=True)
class ModelEntries:
    """One ``provider/model``'s share of the cache."""

    provider: str
    model: str
    entries: int
    hits: int


@dataclasses.dataclass(frozen=True)
class CacheStats:
    """What a cache file holds: entries, bytes on disk (with its write-ahead log), hits recorded, the oldest
    and newest entry and the last use (epoch seconds), and the entries per provider and model."""

    path: str
    exists: bool
    entries: int = 0
    bytes: int = 0
    hits: int = 0
    oldest: float | None = None
    newest: float | None = None
    last_used: float | None = None
    models: tuple[ModelEntries, ...] = ()


def _first_completion(text: str) -> tuple[str, str]:
    try:
        first = json.loads(text)[0]
        return str(first.get("provider") or "unknown"), str(first.get("model") or "unknown")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "unknown", "unknown"


class CallCache:
    """One SQLite file of completions by call key; opened on first use, safe to share between threads."""

    def __init__(self, directory: Path, warn: Callable[[str], None] = warn_stderr) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME
        self.warn = warn
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._rebuilt = False
        self.disabled = False

    # Opening and repair

    def _connect(self) -> sqlite3.Connection:
        """A connection in WAL mode on the created table. Switching a file to WAL takes a lock that SQLite's
        busy timeout does not wait for, so processes opening a new cache together retry that step."""
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                return self._connect_once()
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connect_once(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, completions TEXT NOT NULL, "
                         "created REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0, last_used REAL)")
            _migrate(conn)
            conn.execute("SELECT 1 FROM calls LIMIT 1").fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> sqlite3.Connection | None:
        if self._conn is None and not self.disabled:
            try:
                self._conn = self._with_repair(self._connect)
            except (sqlite3.Error, OSError) as exc:
                self._off(f"cannot open it ({exc})")
        return self._conn

    def _with_repair(self, action: Callable[[], Any]) -> Any:
        """Run ``action``; if the file turns out damaged, rebuild it once and run it again."""
        try:
            return action()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc) or self._rebuilt:
                raise
            self._rebuild(exc)
            return action()

    def _rebuild(self, exc: sqlite3.DatabaseError) -> None:
        self._rebuilt = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.warn(f"the call cache {self.path} was damaged ({exc}); rebuilt it empty")

    def _off(self, why: str) -> None:
        self.disabled = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.warn(f"call cache {self.path} switched off for this run: {why}")

    # Reading and writing

    def get(self, key: str) -> list[Completion] | None:
        """The completions stored under ``key``, or None."""
        with self._lock:
            if self._open() is None:
                return None
            try:
                row = self._with_repair(lambda: self._need().execute(
                    "SELECT completions FROM calls WHERE key = ?", (key,)).fetchone())
            except sqlite3.Error as exc:
                self._off(str(exc))
                return None
        if row is None:
            return None
        try:
            found = load(row[0])
        except (ValueError, KeyError, TypeError):
            return None  # an entry from an older shape: treated as a miss and replaced
        self._count_hit(key)
        return found

    def _count_hit(self, key: str) -> None:
        """A served entry: one hit more, used now (bookkeeping only; a failure here fails no call)."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.execute("UPDATE calls SET hits = hits + 1, last_used = ? WHERE key = ?", (time.time(), key))
            except sqlite3.Error:
                pass

    def put(self, key: str, completions: list[Completion]) -> None:
        text = dump(completions)
        now = time.time()
        with self._lock:
            if self._open() is None:
                return
            try:
                self._with_repair(lambda: self._need().execute(
                    "INSERT OR REPLACE INTO calls (key, completions, created, hits, last_used) VALUES (?, ?, ?, 0, ?)",
                    (key, text, now, now)))
            except sqlite3.Error as exc:
                self._off(str(exc))

    def _need(self) -> sqlite3.Connection:
        """The open connection (reopened after a rebuild)."""
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    # Looking after it (`ensemble cache`): these raise sqlite3.Error and OSError for the caller to report

    def stats(self) -> CacheStats:
        """What the file holds; a cache never made reads as empty (and is not created)."""
        if not self.path.exists():
            return CacheStats(str(self.path), exists=False)
        with self._lock:
            conn = self._need()
            entries, hits, oldest, newest, last_used = conn.execute(
                "SELECT count(*), coalesce(sum(hits), 0), min(created), max(created), max(last_used) FROM calls").fetchone()
            per: dict[tuple[str, str], list[int]] = {}
            for text, hit in conn.execute("SELECT completions, hits FROM calls"):
                shares = per.setdefault(_first_completion(text), [0, 0])
                shares[0] += 1
                shares[1] += int(hit)
        size = sum(Path(f"{self.path}{suffix}").stat().st_size for suffix in ("", "-wal")
                   if Path(f"{self.path}{suffix}").exists())
        models = tuple(ModelEntries(provider, model, n, h) for (provider, model), (n, h) in sorted(per.items()))
        return CacheStats(str(self.path), True, int(entries), size, int(hits), oldest, newest, last_used, models)

    def remove(self, unused_since: float | None = None) -> int:
        """Remove every entry, or those last used before ``unused_since`` (epoch seconds); how many went. The
        file is compacted after, so that its size on disk shrinks too."""
        if not self.path.exists():
            return 0
        with self._lock:
            conn = self._need()
            if unused_since is None:
                removed = conn.execute("DELETE FROM calls").rowcount
            else:
                removed = conn.execute("DELETE FROM calls WHERE coalesce(last_used, created) < ?",
                                       (unused_since,)).rowcount
            if removed:
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(removed)

    def __len__(self) -> int:
        with self._lock:
            conn = self._open()
            return 0 if conn is None else int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
