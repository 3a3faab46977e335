"""The store of recorded runs: a SQLite file (stdlib ``sqlite3``), written in batches by a thread.

A run is a row of ``studio_runs`` (its name, the command that ran it, when it started and
ended, how it ended, the run it was forked from) and its events, rows of
``studio_events`` numbered from 1 in the order they happened::

    studio_runs:    id | name | command | cwd | started | ended | status | error | forked_from ...
    studio_events:  run | seq | t | kind | data (JSON)
                    r1  | 1   | ... | node     | {"id": 1, "parent": null, "kind": "agent", ...}
                    r1  | 2   | ... | call     | {"id": 1, "node": 1, "model": "gpt-4o-mini", ...}
                    r1  | 3   | ... | tokens   | {"call": 1, "items": [[t, ["text", "Hel"]], ...]}

(:mod:`miniagents.ext.studio.recorder` says what each kind of event holds.) A recording
program writes through a :class:`RunWriter`: the program's loop only appends to a queue,
and the writer's thread turns what came into rows and writes them, one transaction per
batch, every :data:`FLUSH_INTERVAL` seconds. Readers (the studio, ``miniagents studio
show``) read the file at any time, from any process: it is in WAL mode, so reading never
waits for the writer. A run whose process ended without closing it (killed) shows as
``"lost"``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from miniagents.ext.studio.errors import StudioNotFoundError, StudioStoreError
from miniagents.promising.lowlevel import logger

__all__ = [
    "DEFAULT_STORE",
    "FLUSH_INTERVAL",
    "STORE_VARIABLE",
    "RunEvent",
    "RunInfo",
    "RunStatus",
    "RunStore",
    "RunWriter",
    "new_run_id",
    "store_path",
]

DEFAULT_STORE = Path("miniagents_runs.sqlite")
"""The file runs are recorded in when none is given (nor :data:`STORE_VARIABLE`): in the
current folder."""

STORE_VARIABLE = "MINIAGENTS_STUDIO"
"""The environment variable that names the store (the recorder's, and the studio's)."""

FLUSH_INTERVAL = 0.05
"""Seconds at most between two batches a :class:`RunWriter` writes (what a live view lags)."""

_SCHEMA_VERSION = "1"

RunStatus: TypeAlias = Literal["running", "ok", "failed", "lost"]
"""How a run stands: still running, ended well, ended with an error, or its process gone
without saying how it ended."""


def store_path(given: str | os.PathLike[str] | None = None) -> Path:
    """The store's file: ``given``, else :data:`STORE_VARIABLE`, else :data:`DEFAULT_STORE`."""
    if given is not None:
        return Path(given)
    named = os.environ.get(STORE_VARIABLE)
    return Path(named) if named else DEFAULT_STORE


def new_run_id() -> str:
    """A new run's id: when it starts, then 6 random hex digits (``20261130-101500-a1b2c3``)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunInfo:
    """A recorded run, as its row says.

    Attributes:
        id: Its id (sortable by start: ``20261130-101500-a1b2c3``).
        name: Its name (the program's file, unless given).
        command: How to run the program again (empty: it cannot be forked).
        cwd: The folder it ran in.
        started: When it started (seconds since the epoch).
        ended: When it ended, if it has.
        status: How it stands (see :data:`RunStatus`).
        error: The error it ended with (``"KeyError: 'x'"``), if any.
        forked_from: The run it is a fork of, if any.
        fork: What the fork changed (see :mod:`miniagents.ext.studio.fork`), if a fork.
    """

    id: str
    name: str
    command: tuple[str, ...]
    cwd: str
    started: float
    ended: float | None
    status: RunStatus
    error: str | None
    forked_from: str | None
    fork: Mapping[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        """The run as JSON values (for the studio's page)."""
        return {
            "id": self.id,
            "name": self.name,
            "forkable": bool(self.command),
            "started": self.started,
            "ended": self.ended,
            "status": self.status,
            "error": self.error,
            "forked_from": self.forked_from,
            "fork": None if self.fork is None else dict(self.fork),
        }


@dataclass(frozen=True)
class RunEvent:
    """One event of a run: its number (from 1), its time, its kind and what it holds."""

    seq: int
    t: float
    kind: str
    data: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The event as JSON values."""
        return {"seq": self.seq, "t": self.t, "kind": self.kind, "data": self.data}


class RunStore:
    """The recorded runs in a SQLite file (made, with its folder, when first written).

    Its methods block (a query, or a write): call them from a thread in async code
    (``asyncio.to_thread``). One store may serve several threads.

    Args:
        path: The file (see :func:`store_path`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------

    def runs(self, limit: int = 200) -> list[RunInfo]:
        """The latest ``limit`` runs, the latest first (none if the file does not exist)."""
        if not self.path.exists():
            return []
        rows = self._query(
            f"SELECT {_RUN_COLUMNS} FROM studio_runs ORDER BY started DESC LIMIT ?", (limit,)
        )
        return [_run_info(row) for row in rows]

    def run(self, run_id: str) -> RunInfo:
        """The run ``run_id``; ``"last"``: the latest one.

        Raises:
            StudioNotFoundError: if the store has no such run.
        """
        if run_id == "last":
            found = self.runs(1)
            if not found:
                raise StudioNotFoundError(
                    f"The store {self.path} holds no run yet; record one first "
                    "(miniagents run your_program.py)."
                )
            return found[0]
        rows = (
            self._query(f"SELECT {_RUN_COLUMNS} FROM studio_runs WHERE id = ?", (run_id,))
            if self.path.exists()
            else []
        )
        if not rows:
            raise StudioNotFoundError(
                f"The store {self.path} holds no run {run_id!r}; give the id of a recorded "
                "run (miniagents studio list shows them), or 'last'."
            )
        return _run_info(rows[0])

    def events(self, run_id: str, after: int = 0, limit: int = 5_000) -> list[RunEvent]:
        """The run's events after number ``after``, in order, at most ``limit`` of them."""
        rows = self._query(
            "SELECT seq, t, kind, data FROM studio_events WHERE run = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (run_id, after, limit),
        )
        return [
            RunEvent(int(seq), float(t), str(kind), json.loads(data)) for seq, t, kind, data in rows
        ]

    def all_events(self, run_id: str) -> list[RunEvent]:
        """Every event of the run, in order."""
        found: list[RunEvent] = []
        while True:
            more = self.events(run_id, found[-1].seq if found else 0)
            if not more:
                return found
            found += more

    # -- writing ---------------------------------------------------------------------------

    def open_run(self, info: RunInfo) -> None:
        """Add the row of a run that starts (``info.status`` ``"running"``)."""
        self._query(
            "INSERT INTO studio_runs (id, name, command, cwd, started, ended, status, error, "
            "forked_from, fork, pid, host) "
            "VALUES (?, ?, ?, ?, ?, NULL, 'running', NULL, ?, ?, ?, ?)",
            (
                info.id,
                info.name,
                json.dumps(list(info.command)),
                info.cwd,
                info.started,
                info.forked_from,
                None if info.fork is None else json.dumps(dict(info.fork), ensure_ascii=False),
                os.getpid(),
                socket.gethostname(),
            ),
        )

    def end_run(self, run_id: str, status: RunStatus, error: str | None) -> None:
        """Say how the run ended, now."""
        self._query(
            "UPDATE studio_runs SET ended = ?, status = ?, error = ? WHERE id = ?",
            (time.time(), status, error, run_id),
        )

    def append(self, run_id: str, first: int, rows: Sequence[tuple[float, str, str]]) -> None:
        """Add events ``(t, kind, data JSON)`` to the run, numbered from ``first``, at once."""
        self._many(
            "INSERT INTO studio_events (run, seq, t, kind, data) VALUES (?, ?, ?, ?, ?)",
            [(run_id, first + index, t, kind, data) for index, (t, kind, data) in enumerate(rows)],
        )

    def delete(self, run_id: str) -> None:
        """Forget the run and its events."""
        self.run(run_id)  # (it must exist)
        self._query("DELETE FROM studio_events WHERE run = ?", (run_id,))
        self._query("DELETE FROM studio_runs WHERE id = ?", (run_id,))

    def close(self) -> None:
        """Close the file (it opens again at the next use)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- the file --------------------------------------------------------------------------

    def _query(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            connection = self._connected()
            try:
                with connection:
                    return connection.execute(sql, parameters).fetchall()
            except sqlite3.Error as error:
                raise self._store_error(error) from error

    def _many(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        with self._lock:
            connection = self._connected()
            try:
                with connection:
                    connection.executemany(sql, rows)
            except sqlite3.Error as error:
                raise self._store_error(error) from error

    def _connected(self) -> sqlite3.Connection:
        connection = self._connection
        if connection is not None:
            return connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise StudioStoreError(
                f"Cannot open the store of recorded runs {self.path}: {error}. Give a file in "
                "a folder you can write (--store, or the MINIAGENTS_STUDIO variable)."
            ) from error
        # closed when the store goes, if not before (no open file left to the collector)
        weakref.finalize(self, connection.close)
        try:
            with connection:
                connection.execute("PRAGMA journal_mode=WAL")
                for statement in _SCHEMA:
                    connection.execute(statement)
                found = connection.execute(
                    "SELECT value FROM studio_meta WHERE key = 'schema'"
                ).fetchone()
                if found is None:
                    connection.execute(
                        "INSERT INTO studio_meta (key, value) VALUES ('schema', ?)",
                        (_SCHEMA_VERSION,),
                    )
                elif found[0] != _SCHEMA_VERSION:
                    raise StudioStoreError(
                        f"The store {self.path} was written by another version of the studio "
                        f"(schema {found[0]}, this one reads {_SCHEMA_VERSION}); give another "
                        "file, or delete this one."
                    )
        except sqlite3.Error as error:
            connection.close()
            raise self._store_error(error) from error
        except StudioStoreError:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _store_error(self, error: sqlite3.Error) -> StudioStoreError:
        return StudioStoreError(
            f"The store of recorded runs {self.path} cannot be used: {error}. Is it a store "
            "of recorded runs (a SQLite file that miniagents run wrote)? Give another file "
            "with --store (or the MINIAGENTS_STUDIO variable)."
        )


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS studio_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS studio_runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "command TEXT NOT NULL, cwd TEXT NOT NULL, started REAL NOT NULL, ended REAL, "
    "status TEXT NOT NULL, error TEXT, forked_from TEXT, fork TEXT, pid INTEGER, host TEXT)",
    "CREATE INDEX IF NOT EXISTS studio_runs_by_start ON studio_runs (started)",
    "CREATE TABLE IF NOT EXISTS studio_events (run TEXT NOT NULL, seq INTEGER NOT NULL, "
    "t REAL NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run, seq)) "
    "WITHOUT ROWID",
)

_RUN_COLUMNS = "id, name, command, cwd, started, ended, status, error, forked_from, fork, pid, host"


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    run_id, name, command, cwd, started, ended, status, error, forked_from, fork, pid, host = row
    if status == "running" and _gone(pid, host):
        status = "lost"
    return RunInfo(
        id=str(run_id),
        name=str(name),
        command=tuple(str(part) for part in json.loads(command)),
        cwd=str(cwd),
        started=float(started),
        ended=None if ended is None else float(ended),
        status=status,
        error=error,
        forked_from=forked_from,
        fork=None if fork is None else json.loads(fork),
    )


def _gone(pid: object, host: object) -> bool:
    """Whether the process ``pid`` of this machine has ended (another machine's: unknown)."""
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # (someone else's process: it is there)
        return False
    return False


Encode = Callable[[list[tuple[Any, ...]]], list[tuple[float, str, Mapping[str, Any]]]]
"""Turns the items a recorder queued into events ``(t, kind, data)``, in the writer's thread."""


class RunWriter:
    """Writes one run's events in batches, from a thread of its own (see the module).

    ``put(item)`` only appends to a queue (a ``deque``: safe from any thread, and cheap on
    the program's loop); every :data:`FLUSH_INTERVAL` seconds the thread takes what came,
    has ``encode`` turn it into events, and writes them in one transaction. A batch that
    cannot be written is logged (once) and dropped: the program goes on.

    Args:
        store: The store.
        run_id: The run (its row opened already).
        encode: Turns a batch of items into events.
        interval: Seconds between two batches, at most.
    """

    def __init__(
        self, store: RunStore, run_id: str, encode: Encode, interval: float = FLUSH_INTERVAL
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.interval = interval
        self._encode = encode
        self._queue: deque[tuple[Any, ...]] = deque()
        self.put: Callable[[tuple[Any, ...]], None] = self._queue.append  # (one call per item)
        self._writing = threading.Lock()
        self._next = 1
        self._stop = threading.Event()
        self._warned = False
        self._thread = threading.Thread(
            target=self._loop, name=f"miniagents-studio:{run_id}", daemon=True
        )
        self._thread.start()

    @property
    def written(self) -> int:
        """How many events it has written so far."""
        return self._next - 1

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread (wait ``timeout`` seconds at most)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def flush(self) -> None:
        """Write what is queued now, in the calling thread (with the writer's lock)."""
        self._write()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._write()
        self._write()

    def _write(self) -> None:
        with self._writing:
            queue = self._queue
            if not queue:
                return
            batch = [queue.popleft() for _ in range(len(queue))]
            try:
                events = self._encode(batch)
                rows = [
                    (t, kind, json.dumps(data, ensure_ascii=False, default=_text))
                    for t, kind, data in events
                ]
                self.store.append(self.run_id, self._next, rows)
                self._next += len(rows)
            except Exception as error:
                if not self._warned:
                    self._warned = True
                    logger.warning(
                        "The studio's recorder could not write to %s (%s: %s); some events "
                        "of the run %s are missing. This is logged once.",
                        self.store.path,
                        type(error).__name__,
                        error,
                        self.run_id,
                    )


def _text(value: object) -> str:
    """What JSON cannot hold, as text."""
    return repr(value)
