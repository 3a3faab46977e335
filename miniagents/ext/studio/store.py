"""The store of recorded runs: a SQLite file (stdlib ``sqlite3``), written in batches by a thread.

A run is a row of ``studio_runs`` (its name, the command that ran it, when it started and
ended, how it ended, the run it was forked from) and its events, numbered from 1 in the
order they happened, kept in chunks: a row of ``studio_chunks`` per batch the recorder
wrote, its events pickled as plain values, read back as one JSON array (see
:mod:`miniagents.ext.studio.events`)::

    studio_runs:    id | name | command | cwd | started | ended | status | error | forked_from ...
    studio_chunks:  run | first | count | data
                    r1  | 1     | 3     | [("node", 1, None, "agent", "EDITOR", ...), ...]

A recording program writes through a :class:`RunWriter`: the program's loop only appends
to a queue, and the writer's thread writes what came, one chunk per batch, every
:data:`FLUSH_INTERVAL` seconds. Readers (the studio, ``miniagents studio show``) read the
file at any time, from any process: it is in WAL mode, so reading never waits for the
writer. A read of a run's events in the recording process itself first writes what its open
writers of the run still queue (so that a program reads back what it recorded, before its
recorder closes). A run whose process ended without closing it (killed) shows as ``"lost"``;
one whose recorder was dropped unclosed (or open at exit) ends as ``"abandoned"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import socket
import sqlite3
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar

from miniagents.arguments import check_path
from miniagents.ext.sqlite_files import SQLiteFile, damaged_sqlite_file, is_damaged_sqlite
from miniagents.ext.studio.errors import (
    StudioConfigurationError,
    StudioDamagedRunError,
    StudioNotFoundError,
    StudioRunTooLargeError,
    StudioStoreError,
    _checked,
)
from miniagents.ext.studio.events import RunEvent, batch_json, decode_batch, event_of
from miniagents.promising.lowlevel import logger, loop_runs

__all__ = [
    "ABANDONED",
    "CHUNK_EVENTS",
    "DEFAULT_STORE",
    "FLUSH_INTERVAL",
    "MAX_RUN_EVENTS",
    "STORE_VARIABLE",
    "Chunk",
    "RunInfo",
    "RunStatus",
    "RunStore",
    "RunWriter",
    "WrittenChunk",
    "checked_store",
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

CHUNK_EVENTS = 5_000
"""The most events of one chunk (a bigger batch is written as several)."""

MAX_RUN_EVENTS = 200_000
"""The most events of a run that one reading of it takes whole by default: the studio's
(``studio_app(max_run_events=...)``) and its commands' (``miniagents studio show --max-events
N``); a process reading 200,000 small events grew to about 300 MB."""

_SCHEMA_VERSION = "1"

_R = TypeVar("_R")


def _events_from(first: int) -> Callable[[bytes | str], list[RunEvent]]:
    """What reads a chunk (as JSON text) as its events, the first numbered ``first``."""

    def read(data: bytes | str) -> list[RunEvent]:
        return [event_of(first + index, item) for index, item in enumerate(json.loads(data))]

    return read


Chunk: TypeAlias = tuple[int, int, str]
"""A chunk of a run's events as read: the number of its first, how many, the JSON array."""

WrittenChunk: TypeAlias = tuple[int, int, bytes]
"""A chunk as written: the number of its first, how many, the encoded batch."""

RunStatus: TypeAlias = Literal["running", "ok", "failed", "lost", "abandoned"]
"""How a run stands: still running, ended well, ended with an error, its process gone
without saying how it ended, or its recorder (or writer) dropped unclosed (or open at exit)."""

ABANDONED = (
    "Its recorder was dropped without being closed (or was open as the program exited); "
    "what it had recorded was written. Close the Recorder (its `with` block, or close()), "
    "or use record_runs()."
)
"""The error of a run whose recorder (or writer) was dropped unclosed."""


_GIVE_STORE = 'Give the file of the runs, e.g. RunStore("miniagents_runs.sqlite").'
"""How to give a store's file, in the error of one that is no path."""


def _directory_refused(path: Path) -> StudioConfigurationError:
    """The error of a store that is a directory, naming ``store`` (its option, ``--store``)."""
    error = StudioConfigurationError(
        f"The store of recorded runs {str(path)!r} is a directory, not the file of the runs: "
        f"give a file in it, e.g. {str(path / DEFAULT_STORE)!r}."
    )
    error.parameter = "store"
    return error


def store_path(given: str | os.PathLike[str] | None = None) -> Path:
    """The store's file: ``given``, else :data:`STORE_VARIABLE`, else :data:`DEFAULT_STORE`."""
    if given is not None:
        return Path(
            check_path(
                given, "store", owner="The studio", fix=_GIVE_STORE, error=StudioConfigurationError
            )
        )
    named = os.environ.get(STORE_VARIABLE)
    return Path(named) if named else DEFAULT_STORE


def checked_store(store: object, owner: str) -> RunStore:
    """``store``, if it is a :class:`RunStore` (what ``owner`` reads runs from).

    Raises:
        StudioConfigurationError: for anything else (its file's path, say), naming ``owner``.
    """
    return _checked(
        store, RunStore, "store", owner, "Open the file", 'RunStore("miniagents_runs.sqlite")'
    )


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
        damaged: Why its row cannot be read, if it cannot (then it has no command, no fork,
            and its error says so; :meth:`RunStore.run` refuses it).
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
    damaged: str | None = None

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
            "damaged": self.damaged,
        }


class RunStore:
    """The recorded runs in a SQLite file (made, with its folder, when first written).

    Its methods block (a query, or a write): call them from a thread in async code
    (``asyncio.to_thread``). One store may serve several threads.

    Args:
        path: The file (see :func:`store_path`).

    Raises:
        StudioConfigurationError: for a path that is none, or a directory (its
            ``parameter``: ``"store"``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        check_path(path, "path", owner="RunStore", fix=_GIVE_STORE, error=StudioConfigurationError)
        self.path = Path(path)
        if self.path.is_dir():
            raise _directory_refused(self.path)
        self._file = SQLiteFile(path, self._set_up, self._failed)
        self._opened: tuple[int, int] | None = None  # (the open file's st_dev and st_ino)

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------

    def runs(self, limit: int = 200) -> list[RunInfo]:
        """The latest ``limit`` runs, the latest first (none if the file does not exist).

        A run whose row is damaged is among them, marked (``damaged``). What this process's
        open writers in this store's file queue is written first, and those closing are
        waited for (as :meth:`run` does): a run whose recorder closed is listed ended.
        """
        self._flush_writers()
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
            StudioDamagedRunError: if the run's row cannot be read.
        """
        self._flush_writers(run_id)
        found = self._found(run_id)
        if found.damaged is not None:
            raise StudioDamagedRunError(found.damaged)
        return found

    def _found(self, run_id: str) -> RunInfo:
        """The run ``run_id`` (or the latest), damaged or not (see :meth:`run`)."""
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

    def chunks(self, run_id: str, after: int = 0, limit: int = 20) -> list[Chunk]:
        """The run's chunks of events after number ``after``, at most ``limit`` of them.

        The first is cut to begin right after ``after`` when ``after`` is inside it. What
        this process's open writers of the run still queue is written first.
        """
        self._flush_writers(run_id)
        return self._chunks(run_id, after, limit)

    def _chunks(self, run_id: str, after: int, limit: int) -> list[Chunk]:
        if not self.path.exists():
            return []
        rows = self._query(
            "SELECT first, count, data FROM studio_chunks WHERE run = ? AND first > ? "
            "ORDER BY first LIMIT ?",
            (run_id, after, limit),
        )
        found = [
            (int(first), int(count), self._read(batch_json, run_id, data))
            for first, count, data in rows
        ]
        if after > 0:
            holding = self._query(
                "SELECT first, count, data FROM studio_chunks WHERE run = ? AND first <= ? "
                "ORDER BY first DESC LIMIT 1",
                (run_id, after),
            )
            if holding and holding[0][0] + holding[0][1] - 1 > after:
                first, _, data = holding[0]
                rest = self._read(decode_batch, run_id, data)[after - first + 1 :]
                found.insert(0, (after + 1, len(rest), json.dumps(rest, ensure_ascii=False)))
        return found

    def _read(self, read: Callable[[bytes | str], _R], run_id: str, data: bytes | str) -> _R:
        """A chunk's events as ``read`` gives them (see :mod:`~miniagents.ext.studio.events`)."""
        try:
            return read(data)
        except Exception as error:  # (what a damaged or foreign chunk raises varies)
            raise StudioStoreError(
                f"The store {self.path} holds events of the run {run_id!r} that cannot be "
                f"read ({type(error).__name__}: {error}); it was not written by a recorder "
                "(or was damaged). Delete the run, or give another store."
            ) from error

    def events(self, run_id: str, after: int = 0) -> list[RunEvent]:
        """The run's events after number ``after``, in order (those of 20 chunks at most)."""
        return self._events(run_id, self.chunks(run_id, after))

    def _events(self, run_id: str, chunks: list[Chunk]) -> list[RunEvent]:
        return [
            event
            for first, _, data in chunks
            for event in self._read(_events_from(first), run_id, data)
        ]

    def all_events(self, run_id: str, max_events: int | None = None) -> list[RunEvent]:
        """Every event of the run, in order: those recorded before the read (not chasing more).

        Args:
            run_id: The run.
            max_events: The most events read (``None``: no limit).

        Raises:
            StudioRunTooLargeError: if the run has more than ``max_events`` events (said
                before they are read; a live run that grows past it, as soon as seen).
        """
        if max_events is not None and self.path.exists():
            last = self._query(
                "SELECT first + count - 1 FROM studio_chunks WHERE run = ? "
                "ORDER BY first DESC LIMIT 1",
                (run_id,),
            )
            self._check_size(run_id, int(last[0][0]) if last else 0, max_events)
        self._flush_writers(run_id)
        found: list[RunEvent] = []
        while True:
            more = self._events(run_id, self._chunks(run_id, found[-1].seq if found else 0, 20))
            if not more:
                return found
            found += more
            if max_events is not None:
                self._check_size(run_id, found[-1].seq, max_events)

    def _check_size(self, run_id: str, events: int, max_events: int) -> None:
        if events > max_events:
            raise StudioRunTooLargeError(
                f"The run {run_id!r} has {events:,} events, more than the {max_events:,} "
                "read at once here; read more with studio_app(max_run_events=...) or, on "
                "the command line, --max-events N (the memory it takes grows with the events)."
            )

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

    def end_run(
        self, run_id: str, status: RunStatus, error: str | None, *, if_running: bool = False
    ) -> None:
        """Say how the run ended, now (``if_running``: unless it was said already)."""
        self._query(
            "UPDATE studio_runs SET ended = ?, status = ?, error = ? WHERE id = ?"
            + (" AND status = 'running'" if if_running else ""),
            (time.time(), status, error, run_id),
        )

    def append(self, run_id: str, chunks: Sequence[WrittenChunk]) -> None:
        """Add chunks of events to the run, at once (each numbered from its first)."""
        self._many(
            "INSERT INTO studio_chunks (run, first, count, data) VALUES (?, ?, ?, ?)",
            [(run_id, first, count, data) for first, count, data in chunks],
        )

    def delete(self, run_id: str) -> None:
        """Forget the run and its events."""
        self._found(run_id)  # (it must exist; a damaged one may go)
        self._query("DELETE FROM studio_chunks WHERE run = ?", (run_id,))
        self._query("DELETE FROM studio_runs WHERE id = ?", (run_id,))

    def close(self) -> None:
        """Close the file (it opens again at the next use)."""
        self._file.close()
        self._opened = None

    def _flush_writers(self, run_id: str | None = None) -> None:
        """Write now what this process's writers in this store's file queue (``None``: all runs').

        A writer closed without waiting (in a running loop) is waited for instead: its
        thread writes its last batch and says how the run ended.

        The file is told by its identity (device and inode: whatever path, folder or link
        named it), the one each store opened, or, for one not open, the one its path names.
        """
        file = self._opened or _identity(self.path)
        with _open_lock:
            writers = list(_open_writers)
        for writer in writers:
            if (
                run_id in (None, writer.run_id)
                and file is not None
                and writer.store._opened == file
            ):
                writer.flush(None)

    # -- the file --------------------------------------------------------------------------

    def _query(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._file.using(
            lambda connection: connection.execute(sql, parameters).fetchall()
        )
        return rows

    def _many(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        self._file.using(lambda connection: connection.executemany(sql, rows))

    def _set_up(self, connection: sqlite3.Connection) -> None:
        self._opened = _identity(self.path)
        connection.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            connection.execute(statement)
        found = connection.execute("SELECT value FROM studio_meta WHERE key = 'schema'").fetchone()
        if found is None:
            connection.execute(
                "INSERT INTO studio_meta (key, value) VALUES ('schema', ?)", (_SCHEMA_VERSION,)
            )
        elif found[0] != _SCHEMA_VERSION:
            raise StudioStoreError(
                f"The store {self.path} was written by another version of the studio "
                f"(schema {found[0]}, this one reads {_SCHEMA_VERSION}); give another "
                "file, or delete this one."
            )

    def _failed(self, error: OSError | sqlite3.Error, opening: bool) -> StudioStoreError:
        if opening:
            return StudioStoreError(
                f"Cannot open the store of recorded runs {self.path}: {error}. Give a file in "
                "a folder you can write (--store, or the MINIAGENTS_STUDIO variable)."
            )
        if is_damaged_sqlite(error):
            return StudioStoreError(
                damaged_sqlite_file(
                    self.path,
                    error,
                    "the studio's store of recorded runs",
                    "give another file with --store (or the MINIAGENTS_STUDIO variable)",
                )
            )
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
    "CREATE TABLE IF NOT EXISTS studio_chunks (run TEXT NOT NULL, first INTEGER NOT NULL, "
    "count INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run, first)) WITHOUT ROWID",
)

_RUN_COLUMNS = "id, name, command, cwd, started, ended, status, error, forked_from, fork, pid, host"


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    run_id, name, command, cwd, started, ended, status, error, forked_from, fork, pid, host = row
    if status == "running" and _gone(pid, host):
        status = "lost"
    info = RunInfo(
        id=str(run_id),
        name=str(name),
        command=(),
        cwd=str(cwd),
        started=float(started),
        ended=None if ended is None else float(ended),
        status=status,
        error=error,
        forked_from=forked_from,
        fork=None,
    )
    try:
        parts = json.loads(command)
        forked = None if fork is None else json.loads(fork)
    except (ValueError, RecursionError, TypeError) as broken:
        why = f"{type(broken).__name__}: {broken}"
    else:
        if not isinstance(parts, list) or not all(isinstance(part, str) for part in parts):
            why = f"its command is {command!r:.80}, not a list of texts"
        elif forked is not None and not isinstance(forked, dict):
            why = f"its fork is {fork!r:.80}, not an object"
        else:
            return dataclasses.replace(info, command=tuple(parts), fork=forked)
    damaged = (
        f"The record of the run {info.id!r} is damaged ({why}): it cannot be shown, forked "
        "or compared. Delete it (RunStore.delete), or record the program again."
    )
    return dataclasses.replace(info, status="failed", error=damaged, damaged=damaged)


def _identity(path: Path) -> tuple[int, int] | None:
    """The file ``path`` names as its device and inode numbers (``None``: there is none)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


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


class RunWriter:
    """Writes one run's events in batches, from a thread of its own (see the module).

    ``put(item)`` only appends to a queue (a ``deque``: safe from any thread, and cheap on
    the program's loop); every ``interval`` seconds the thread takes what came, has
    ``encode`` write it as one chunk, and adds it to the run (as several chunks, past
    :data:`CHUNK_EVENTS`). A batch that cannot be written is logged (once) and dropped:
    the program goes on.

    Close it (:meth:`close`). One dropped unclosed (or open as the interpreter exits) still
    writes what it queued, ends its run as ``"abandoned"`` (if it was still running) and
    warns (a ``ResourceWarning``, as an unclosed file does); its thread ends. Dropped in a
    running loop, it writes nothing there: its thread writes the last batch and the end.

    Args:
        store: The store.
        run_id: The run (its row opened already).
        encode: Writes a batch of queued items as one chunk (see
            :func:`~miniagents.ext.studio.events.encode_batch`).
        interval: Seconds between two batches, at most.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        encode: Callable[[list[tuple[Any, ...]]], bytes],
        interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.interval = interval
        self._batches = batches = _Batches(store, run_id, encode)
        self.put: Callable[[tuple[Any, ...]], None] = batches.queue.append  # (one call per item)
        self._stop = batches.stop
        self._thread = batches.thread = threading.Thread(  # (holding its batches, not the writer:
            target=_write_every,  # one nobody holds goes)
            args=(batches, interval),
            name=f"miniagents-studio:{run_id}",
            daemon=True,
        )
        self._dropped = weakref.finalize(self, _abandoned, batches)
        with _open_lock:
            _open_writers.add(batches)
        self._thread.start()

    @property
    def written(self) -> int:
        """How many events it has written so far."""
        return self._batches.next - 1

    def close(
        self, timeout: float = 60.0, *, ending: tuple[RunStatus, str | None] | None = None
    ) -> None:
        """Write what is queued, then stop the thread (wait ``timeout`` seconds at most).

        What is put after drops (the run has ended: what still streams is not its).

        Args:
            timeout: Seconds to wait for the thread's last batch (``0``: return at once,
                the thread writes it; a read of the run in this process waits for it).
            ending: How the run ended (its status and error), said by the thread after
                its last batch, if the run is still running (``None``: the caller says it).
        """
        self._batches.ending = ending
        self.put = _dropped
        self._dropped.detach()
        self._stop.set()
        self.flush(timeout)

    def flush(self, timeout: float | None = None) -> None:
        """Write what is queued now, in the calling thread.

        Once closed, it waits for the thread's last batch instead (``timeout`` seconds at
        most; ``None``: until it is written).
        """
        self._batches.flush(timeout)


class _Batches:
    """A writer's queue and how it is written: what its thread and its finalizer hold."""

    __slots__ = (
        "__weakref__",
        "encode",
        "ending",
        "next",
        "queue",
        "run_id",
        "stop",
        "store",
        "thread",
        "warned",
        "writing",
    )

    def __init__(
        self, store: RunStore, run_id: str, encode: Callable[[list[tuple[Any, ...]]], bytes]
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.encode = encode
        self.queue: deque[tuple[Any, ...]] = deque()
        self.writing = threading.Lock()
        self.next = 1
        self.warned = False
        self.ending: tuple[RunStatus, str | None] | None = None  # (said after the last batch)
        self.stop = threading.Event()  # (set: the last batch is the thread's, then the end)
        self.thread: threading.Thread | None = None

    def flush(self, timeout: float | None) -> None:
        """Write what is queued now; once stopping, wait for the thread's last batch instead."""
        thread = self.thread
        if not self.stop.is_set():
            self.write()
        elif thread is not None and threading.current_thread() is not thread:
            thread.join(timeout)

    def write(self) -> None:
        """Write what is queued as a batch (an error logged once: the events are dropped)."""
        with self.writing:
            queue = self.queue
            if not queue:
                return
            batch = [queue.popleft() for _ in range(len(queue))]
            try:
                chunks: list[WrittenChunk] = []
                for start in range(0, len(batch), CHUNK_EVENTS):
                    part = batch[start : start + CHUNK_EVENTS]
                    chunks.append((self.next + start, len(part), self.encode(part)))
                self.store.append(self.run_id, chunks)
                self.next += len(batch)
            except Exception as error:
                if not self.warned:
                    self.warned = True
                    logger.warning(
                        "The studio's recorder could not write to %s (%s: %s); some events "
                        "of the run %s are missing. This is logged once.",
                        self.store.path,
                        type(error).__name__,
                        error,
                        self.run_id,
                    )


def _dropped(_item: tuple[Any, ...]) -> None:
    """What a closed writer's ``put`` is: nothing."""


def _abandoned(batches: _Batches) -> None:
    """A writer dropped unclosed (or open at exit): its thread ends its run; warn.

    The thread writes what the writer queued, then ends the run as ``"abandoned"``.

    Dropped in a running loop, it returns at once (no write in the loop's thread); elsewhere
    it waits for the thread (at exit, the thread would not outlive the interpreter).
    """
    batches.ending = ("abandoned", ABANDONED)
    batches.stop.set()
    if not loop_runs():
        batches.flush(60.0)
    warnings.warn(
        f"A RunWriter of the run {batches.run_id!r} was dropped without being closed; what "
        "it queued was written and its run ended as abandoned. Close it (writer.close()).",
        ResourceWarning,
        stacklevel=2,
    )


def _write_every(batches: _Batches, interval: float) -> None:
    """A writer's thread: its batches every ``interval`` seconds, the last at its stop, the end."""
    while True:
        stopping = batches.stop.wait(interval)
        batches.write()
        if stopping:
            break
    if batches.ending is not None:
        with contextlib.suppress(StudioStoreError):  # (a store that cannot be written: as a batch)
            batches.store.end_run(batches.run_id, *batches.ending, if_running=True)
    with _open_lock:
        _open_writers.discard(batches)


_open_writers: weakref.WeakSet[_Batches] = weakref.WeakSet()
"""The writers open (or closing) in this process, by their batches: what a read of their run
writes first, or waits for (else a program that reads its own run back before its recorder
closes would read what the writer's thread happened to write so far: nothing, within its
interval). Held weakly; a writer's thread takes its own out as it ends."""
_open_lock = threading.Lock()
