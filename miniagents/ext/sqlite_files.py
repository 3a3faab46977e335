"""SQLite files a user names: kept open by a store, and what it means that one is damaged.

The extensions keep records in SQLite files that a user names: a call cache's
(``SQLiteCallStore``, ``SQLCallStore`` on a ``sqlite:///`` URL), a batch run's journal,
``ChatHistorySQL``'s, the studio's store of runs, the database of durable runs. Where such a
file holds something else (garbage, another program's data) or was partly overwritten,
SQLite says ``file is not a database`` or ``database disk image is malformed``, a line that
names neither the file nor what to do. :func:`damaged_sqlite_file` tells it once for them
all; each store raises the sentence as its own error::

    sqlite3.DatabaseError: file is not a database
      -> "The SQLite file 'calls.sqlite' (a call cache's) is not a SQLite database, or is
          damaged (file is not a database): move it away ..., or give another path."

A store that keeps such a file open itself (``SQLiteCallStore``, the studio's ``RunStore``)
keeps it in a :class:`SQLiteFile`: opened and set up at its first use, one thread at a
time, closed when the store is closed or goes, and let go of when SQLite says it is damaged
(the next use opens the path again: a new file, once the damaged one is moved away).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from miniagents.promising.errors import MiniAgentsError

__all__ = ["SQLiteFile", "damaged_sqlite_file", "is_damaged_sqlite", "is_locked_sqlite"]

_R = TypeVar("_R")

_DAMAGED_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
"""SQLite's primary codes of a damaged file (``SQLITE_CORRUPT``) and of a non-database."""

_DAMAGED = ("file is not a database", "database disk image is malformed", "malformed database")
"""What SQLite says first (lower case) of such a file: for a driver that gives no code."""


def is_damaged_sqlite(error: BaseException) -> bool:
    """Whether SQLite said ``error`` of a file that is not a database, or a damaged one.

    Told by SQLite's result code where the driver gives it (``sqlite3``'s
    ``sqlite_errorcode``: ``SQLITE_CORRUPT`` or ``SQLITE_NOTADB``), never by words that a
    name in the message may hold (``no such table: file is not a database``, a trigger's
    ``RAISE`` text). Only an error that carries no code (of a driver other than ``sqlite3``)
    is told by SQLite's own first words.

    Args:
        error: The driver's error (``sqlite3.DatabaseError``), or SQLAlchemy's around it.
    """
    original = getattr(error, "orig", None) or error
    code = getattr(original, "sqlite_errorcode", None)  # (set by sqlite3 itself)
    if isinstance(code, int):
        return code & 0xFF in _DAMAGED_CODES  # (the low byte: the primary code)
    said = str(original).strip().lower()
    return said.startswith(_DAMAGED)


def is_locked_sqlite(error: BaseException) -> bool:
    """Whether SQLite said ``error`` because another connection held the file locked too long.

    Told by ``sqlite3``'s result code (``SQLITE_BUSY``, ``SQLITE_LOCKED``): the store's wait
    for the lock (its ``timeout``) ran out.
    """
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _LOCKED_CODES


_LOCKED_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
"""SQLite's primary codes of a file another connection holds locked."""


def damaged_sqlite_file(
    path: str | os.PathLike[str],
    error: BaseException,
    whose: str,
    another: str = "give another path",
) -> str:
    """The sentence for a SQLite file that is not a database, or a damaged one.

    Args:
        path: The file.
        error: What SQLite said (the driver's error, or SQLAlchemy's around it).
        whose: Whose file it is, e.g. ``"a call cache's"``.
        another: How to give the store another file, for the message's end.
    """
    text = str(getattr(error, "orig", None) or error).strip()
    said = text.splitlines()[0].strip() if text else type(error).__name__
    return (
        f"The SQLite file {os.fspath(path)!r} ({whose}) is not a SQLite database, or is "
        f"damaged ({said}): move it away (its records are lost; the sqlite3 shell's .recover "
        f"may save some), so that a new one is made there, or {another}."
    )


class SQLiteFile:
    """A SQLite file a store keeps open between its uses (see the module).

    Args:
        path: The file (made, with its folder, when first opened).
        setup: What is done on a new connection before its first use (its journal mode, its
            tables), in a transaction; an error it raises closes the connection again.
        failed: The error to raise for an error of SQLite or of the file system, given it
            and whether it came while the file was being opened (the error itself: it is
            raised as it is).
        timeout: Seconds a use waits for a lock another connection holds, before SQLite
            gives up with ``database is locked``.
    """

    __slots__ = ("__weakref__", "_failed", "_held", "_lock", "_setup", "path", "timeout")

    def __init__(
        self,
        path: str | os.PathLike[str],
        setup: Callable[[sqlite3.Connection], object],
        failed: Callable[[OSError | sqlite3.Error, bool], BaseException],
        timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._setup = setup
        self._failed = failed
        self._lock = threading.Lock()
        self._held: list[sqlite3.Connection] = []  # the open connection, if any
        # closed when the store goes, if not before (a store nobody closes must not leave
        # an open file to the collector: Python 3.13 warns of it); one for every opening
        weakref.finalize(self, _let_go, self._held)

    def using(self, work: Callable[[sqlite3.Connection], _R]) -> _R:
        """What ``work`` does with the open file, in one transaction, one thread at a time.

        Raises:
            BaseException: what ``failed`` gives for an error of SQLite or of the file system
                (an error of the package, e.g. one ``setup`` raised, goes through as it is).
        """
        with self._lock:
            held = self._held
            opening = False
            try:
                if not held:
                    opening = True
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    connection = sqlite3.connect(
                        self.path, timeout=self.timeout, check_same_thread=False
                    )
                    opening = False
                    self._set_up(connection)
                with held[0]:
                    return work(held[0])
            except (OSError, sqlite3.Error) as error:
                if isinstance(error, MiniAgentsError):
                    raise
                if is_damaged_sqlite(error):
                    _let_go(held)
                raised = self._failed(error, opening)
                if raised is error:
                    raise
                raise raised from error

    def close(self) -> None:
        """Close the file (it opens again at the next use)."""
        with self._lock:
            _let_go(self._held)

    def _set_up(self, connection: sqlite3.Connection) -> None:
        try:
            with connection:
                self._setup(connection)
        except BaseException:
            connection.close()  # (opened again at the next use)
            raise
        self._held.append(connection)


def _let_go(held: list[sqlite3.Connection]) -> None:
    """Close the connection ``held`` keeps, if any."""
    while held:
        held.pop().close()
