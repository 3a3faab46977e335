"""What a failure of the database of durable runs means, said in one line.

DBOS keeps its record of the runs in a system database (a SQLite file, or PostgreSQL),
through SQLAlchemy and the database's driver. A failure there reaches the caller as the
library's error, with a traceback of a hundred lines through DBOS and SQLAlchemy; this
module tells what it means instead, as one ``DurableDatabaseError`` whose message names the
cause and the fix::

    SQLite SQLITE_BUSY "database is locked"  -> locked: another process holds it
    SQLite SQLITE_LOCKED "database table is locked"
                                           -> a statement of this process holds a table
    SQLite "file is not a database",
           "database disk image is malformed" -> damaged: move it away (damaged_sqlite_file)
    SQLite SQLITE_CANTOPEN, _READONLY, _PERM,
           _IOERR, _FULL                   -> cannot be opened or written: permissions, disk
    PostgreSQL SQLSTATE class 08, or no server answered a connection
                                           -> cannot be reached: the server, the URL
    PostgreSQL, the server refused to connect (no such database or role)
                                           -> refused the connection: the URL's names
    PostgreSQL SQLSTATE 53300, too many connections (of the server, a role, a database)
                                           -> busy: try again later, or raise its limit
    PostgreSQL SQLSTATE 57P03, a server starting up, in recovery or shutting down
                                           -> not ready: try again once it has started
    PostgreSQL SQLSTATE 57P01, 57P02, a session the server ended (stopped, or killed with
           pg_terminate_backend, or after a crash)
                                           -> lost the connection: the server, try again
    PostgreSQL SQLSTATE 57P05, 25P03, a session the server ended for being idle
           (idle_session_timeout, idle_in_transaction_session_timeout)
                                           -> ended as idle: raise that timeout, or call again
    anything else of the database          -> failed, with the driver's first line

Each is told by the code the driver gives (sqlite3's ``sqlite_errorcode``; psycopg 3's
``sqlstate``, psycopg2's ``pgcode``), never by words that a name in the message may hold
(a database called ``"connect_log"`` or ``"locked_runs"``). The words count only where the
driver gives no code: a SQLite error of a driver other than Python's ``sqlite3`` (its
first words, SQLite's own), and psycopg's or psycopg2's failure to connect, which libpq
gives without the server's SQLSTATE (whether the server answered is then told by libpq's
own framing, "... failed: FATAL:"; a server that answered is then told busy by the first
words of its own message for SQLSTATE 53300, which come before any name it quotes, as
"too many connections for role "x"" or "sorry, too many clients already", and not ready by
those of 57P03, "the database system is starting up" or "... is shutting down").

A value or a constraint that the database refused (SQLAlchemy's ``IntegrityError`` or
``DataError``, where the library's own tables are written) is told by :func:`refused_value`
as a ``DurableDataError``: the value, or a table changed by something else.

Only errors of the database itself are told (the driver's, or SQLAlchemy's around it) and
only those raised by DBOS's own code or ours: an error that the agent's own code raised
(recorded as its run's end, raised again) is the agent's, and stays as it is.
"""

from __future__ import annotations

import re
import sqlite3
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Literal

from miniagents.ext.dbos._sqlite import sqlite_path
from miniagents.ext.dbos.errors import DurableDatabaseError, DurableDataError
from miniagents.ext.sqlite_files import damaged_sqlite_file, is_damaged_sqlite

__all__ = [
    "connection_failure",
    "database_failure",
    "first_line",
    "refused_value",
    "sqlite_code",
    "sqlite_failure",
]

_UNWRITABLE = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
    }
)
"""SQLite's primary codes of a file that cannot be opened or written."""

_CODE_OF_WORDS = (
    ("database is locked", sqlite3.SQLITE_BUSY),
    ("database table is locked", sqlite3.SQLITE_LOCKED),
    ("database schema is locked", sqlite3.SQLITE_LOCKED),
    ("unable to open database file", sqlite3.SQLITE_CANTOPEN),
    ("attempt to write a readonly database", sqlite3.SQLITE_READONLY),
    ("disk i/o error", sqlite3.SQLITE_IOERR),
    ("database or disk is full", sqlite3.SQLITE_FULL),
)
"""SQLite's own first words of an error, and its code: for a driver that gives no code."""

_CONNECTION_EXCEPTION = "08"
"""The class of PostgreSQL's SQLSTATEs of a connection that failed or was lost."""

_SERVER_ANSWERED = re.compile(r"\bfailed: (?:FATAL|PANIC|ERROR):\s*")
"""libpq's framing of a connection that the server refused, before the server's words."""

_TOO_MANY_CONNECTIONS = "53300"
"""PostgreSQL's SQLSTATE of a server, role or database that has all the connections it takes."""

_TOO_MANY_WORDS = (
    "sorry, too many clients already",
    "too many connections for ",
    "remaining connection slots are reserved",
)
"""The first words of the server's messages of SQLSTATE 53300 (libpq passes on no code)."""

_CANNOT_CONNECT_NOW = "57P03"
"""PostgreSQL's SQLSTATE of a server that takes no connections yet, or no more (not ready)."""

_NOT_READY_WORDS = (
    "the database system is starting up",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "the database system is in recovery mode",
    "the database system is shutting down",
)
"""The server's messages of SQLSTATE 57P03 (libpq passes on no code): starting up, in
recovery (a standby that takes no connections: hot standby off, or not yet consistent), or
shutting down."""

_SESSION_ENDED = frozenset({"57P01", "57P02"})
"""PostgreSQL's SQLSTATEs of a session that the server ended (it is stopping, an
administrator's ``pg_terminate_backend``, or another process of it crashed): class 57, not 08,
but a connection lost all the same."""

_IDLE_ENDED = frozenset({"57P05", "25P03"})
"""PostgreSQL's SQLSTATEs of a session that the server ended for being idle: for longer than
its ``idle_session_timeout`` (57P05), or in an open transaction for longer than its
``idle_in_transaction_session_timeout`` (25P03). Neither is of class 08, yet the connection
is gone."""

_DRIVERS = ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "psycopg_pool")
"""The packages whose frames a database error passes through on its way up from DBOS."""


def sqlite_failure(path: str, error: BaseException, waited: float) -> DurableDatabaseError:
    """The error for a SQLite file of durable runs that failed with ``error`` (one line).

    Args:
        path: The file.
        error: The driver's error (or SQLAlchemy's around it).
        waited: Seconds a connection waits for a lock, for the locked file's message.
    """
    said = first_line(error)
    code = sqlite_code(error)
    where = f"The SQLite file {path!r} of durable runs"
    if code == sqlite3.SQLITE_BUSY:
        return DurableDatabaseError(
            f"{where} is locked by another process ({said}; waited {waited:g} s): stop that "
            "process, or give database_url another file."
        )
    if code == sqlite3.SQLITE_LOCKED:
        return DurableDatabaseError(
            f"{where} has a table held by another connection of this process ({said}; SQLite "
            "does not wait for it), such as a read cursor still open on it: read that cursor "
            "to its end or close it, or give database_url a file that nothing else of this "
            "process opens."
        )
    if is_damaged_sqlite(error):
        whose, another = "the database of durable runs", "give database_url another file"
        return DurableDatabaseError(damaged_sqlite_file(path, error, whose, another))
    if code in _UNWRITABLE:
        return DurableDatabaseError(
            f"{where} cannot be opened or written ({said}): check that this process may read "
            "and write it and its folder, and that the disk has room."
        )
    return DurableDatabaseError(f"{where} failed ({_kind(error)}: {said}).")


def sqlite_code(error: BaseException) -> int | None:
    """SQLite's primary result code of ``error`` (SQLAlchemy's, or its driver's), if any.

    Python's ``sqlite3`` gives it (``sqlite_errorcode``, an extended code whose low byte is
    the primary one). An error that carries none (of a SQLite driver other than ``sqlite3``)
    is told by SQLite's own words at the start of its message, the last resort; ``None``
    for an error of neither (not SQLite's, or ``sqlite3``'s own, as on a closed connection).
    """
    original = getattr(error, "orig", None) or error
    code = getattr(original, "sqlite_errorcode", None)  # (set by sqlite3 itself)
    if isinstance(code, int):
        return code & 0xFF
    said = first_line(original).lower()
    return next((code for words, code in _CODE_OF_WORDS if said.startswith(words)), None)


def database_failure(
    error: BaseException, url: str, shown: str, waited: float
) -> DurableDatabaseError | None:
    """The one-line error for a failure of the database of runs, else ``None``.

    ``None`` for an error that is not the database's, or that the agent's own code raised.

    Args:
        error: What a call of DBOS (or ours, on its database) raised.
        url: The database's URL.
        shown: The URL as errors show it (without a password).
        waited: Seconds a connection waits for a lock or a server, for the messages.
    """
    if isinstance(error, DurableDatabaseError):
        return None  # told already
    driver = _driver_error(error)
    if driver is None or not _raised_by_the_store(error):
        return None
    if url.startswith("sqlite"):
        return sqlite_failure(sqlite_path(url), driver, waited)
    said = first_line(driver)
    connecting = connection_failure(driver)
    if connecting == "unreached":
        return DurableDatabaseError(
            f"The database of durable runs {shown} cannot be reached ({_kind(driver)}: "
            f"{said}; waited {waited:g} s at most): check the URL, and that the server runs "
            "and accepts connections."
        )
    if connecting == "busy":
        return DurableDatabaseError(
            f"The server of the database of durable runs {shown} has all the connections it "
            f"takes ({_kind(driver)}: {said}): it is busy, not refusing this URL. Try again "
            "once other clients have closed theirs, or raise the server's max_connections "
            "(or the role's or the database's CONNECTION LIMIT), or use fewer connections "
            "(a pooler such as PgBouncer in front of it)."
        )
    if connecting == "unready":
        return DurableDatabaseError(
            f"The server of the database of durable runs {shown} is not ready for connections "
            f"({_kind(driver)}: {said}): it is starting up, in recovery or shutting down, not "
            "refusing this URL. Try again once it has started (a standby in recovery takes "
            "connections only with hot_standby on, or once it is promoted)."
        )
    if connecting == "lost":
        return DurableDatabaseError(
            f"The database of durable runs {shown} lost its connection ({_kind(driver)}: "
            f"{said}): the server was stopped, or it ended this session (an administrator's "
            "pg_terminate_backend, or a crash of the server). Check that the server runs and "
            "accepts connections, then try again."
        )
    if connecting == "idle":
        return DurableDatabaseError(
            f"The server of the database of durable runs {shown} ended this session for being "
            f"idle ({_kind(driver)}: {said}): its idle_session_timeout (or "
            "idle_in_transaction_session_timeout, for a transaction left open) is shorter "
            "than a connection of this process stays unused. Raise it on the server, or for "
            "this role or database (0 turns it off), or call again: a durable run reconnects "
            "and retries on its own, and approvals and run listings open a new connection at "
            "their next call."
        )
    if connecting == "refused":
        return DurableDatabaseError(
            f"The server of the database of durable runs {shown} refused the connection "
            f"({_kind(driver)}: {said}): check the URL's database name, user and password, "
            "and that the server lets that user connect to that database."
        )
    return DurableDatabaseError(
        f"The database of durable runs {shown} failed ({_kind(driver)}: {said})."
    )


def connection_failure(
    error: BaseException,
) -> Literal["unreached", "refused", "busy", "unready", "lost", "idle"] | None:
    """Which failure of a connection a PostgreSQL driver's ``error`` is, if it is one.

    ``"unreached"``, ``"refused"``, ``"busy"``, ``"unready"``, ``"lost"`` or ``"idle"``;
    ``None`` for any other failure. Told by the SQLSTATE (psycopg 3's ``sqlstate``, psycopg2's
    ``pgcode``): its class 08 is a connection that failed or was lost, 53300 a server with all
    the connections it takes (``"busy"``), 57P03 a server starting up, in recovery or shutting
    down (``"unready"``), 57P01 and 57P02 a session that the server ended, stopped or killed
    (``"lost"``: class 57, yet the connection is gone), 57P05 and 25P03 a session that the
    server ended for being idle, outside or inside a transaction (``"idle"``). libpq passes on
    no code for a failure to connect, even the server's own: an ``OperationalError`` with no
    code is then a server that answered if libpq's own framing says so ("... failed: FATAL:"),
    else a server not reached; one that answered is busy or not ready if the server's words
    start as its messages of 53300 or 57P03 do (they quote a name only after those words, if at
    all), else it refused.
    """
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(state, str) and state:
        if state == _TOO_MANY_CONNECTIONS:
            return "busy"
        if state == _CANNOT_CONNECT_NOW:
            return "unready"
        if state in _SESSION_ENDED:
            return "lost"
        if state in _IDLE_ENDED:
            return "idle"
        return "unreached" if state.startswith(_CONNECTION_EXCEPTION) else None
    if _kind(error) != "OperationalError":
        return None
    answered = _SERVER_ANSWERED.search(str(error))
    if answered is None:
        return "unreached"
    words = str(error)[answered.end() :].lower()
    if words.startswith(_TOO_MANY_WORDS):
        return "busy"
    return "unready" if words.startswith(_NOT_READY_WORDS) else "refused"


def refused_value(
    error: BaseException, doing: str, shown: str, table: str
) -> DurableDataError | None:
    """The error for a value or a constraint that the database refused, else ``None``.

    Args:
        error: What SQLAlchemy raised (its ``IntegrityError`` or ``DataError`` is told).
        doing: What was being done, as words that follow "Could not".
        shown: The database's URL as errors show it (without a password).
        table: The table written.
    """
    from sqlalchemy import exc

    if not isinstance(error, (exc.IntegrityError, exc.DataError)):
        return None
    original = getattr(error, "orig", None)
    said = f"{_kind(error)}: {first_line(original or error)}"
    return DurableDataError(
        f"Could not {doing}: the database {shown} refused it ({said}). Either a value is one "
        "it cannot keep (a NUL character in a name, on PostgreSQL), or its table "
        f"{table} is not as this library makes it (a column or a constraint changed): remove "
        "that value, or drop the table so that it is made again."
    )


def _driver_error(error: BaseException) -> BaseException | None:
    """The database driver's error in ``error`` (SQLAlchemy's ``orig``), if it is one."""
    if isinstance(error, sqlite3.Error):
        return error
    module = type(error).__module__.split(".")[0]
    if module == "sqlalchemy":
        original = getattr(error, "orig", None)
        return original if isinstance(original, BaseException) else error
    if module in ("psycopg", "psycopg2"):
        return error
    return None


def _raised_by_the_store(error: BaseException) -> bool:
    """Whether the code of the store raised ``error``, rather than the agent's own code.

    The innermost frame outside the database's libraries (SQLAlchemy, the drivers) and the
    standard library tells:
    one of DBOS's database modules, or of ours that open the database (an agent's error
    recorded, then raised again by DBOS where it reads the record, is the agent's).
    """
    roots = _roots()
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        owner = next((name for name, root in roots.items() if path.is_relative_to(root)), "")
        if owner in _DRIVERS or (not owner and _of_the_standard_library(path)):
            continue  # (e.g. contextlib's, where DBOS opens a connection in a with block)
        if owner == "dbos":
            inside = path.relative_to(roots["dbos"]).parts
            return inside[0].startswith(_DBOS_DATABASE)
        return owner == "miniagents" and path.stem in _OURS
    return True  # (no frame of anyone's: raised by the library itself)


_DBOS_DATABASE = ("_sys_db", "_migration", "_datasource", "_schemas", "_client")
"""DBOS's modules (by the start of their names) that read and write its system database."""

_OURS = ("_engine", "_sqlite", "_approvals")
"""Our modules that open or read the database of runs themselves."""


def _roots() -> dict[str, Path]:
    """The folder of each package that tells who raised a database error (those imported)."""
    roots: dict[str, Path] = {}
    for name in ("dbos", *_DRIVERS):
        file = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(file, str):
            roots[name] = Path(file).resolve().parent
    roots["miniagents"] = Path(__file__).resolve().parent  # (this package: ext.dbos)
    return roots


def _of_the_standard_library(path: Path) -> bool:
    """Whether ``path`` is a module of Python's standard library (not an installed package)."""
    if "site-packages" in path.parts or "dist-packages" in path.parts:
        return False
    return path.is_relative_to(Path(sysconfig.get_paths()["stdlib"]).resolve())


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s text (a driver's may say more on the next ones)."""
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else _kind(error)


def _kind(error: BaseException) -> str:
    return type(error).__name__
