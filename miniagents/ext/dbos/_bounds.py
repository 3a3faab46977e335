"""How long a connection of this package waits for its database: a bound, never for ever.

The package's own engines (the chat histories', the call cache's and batch journals', the
claims of approvals) wait at most a number of seconds, whatever the database does::

    SQLite      a file another process keeps locked   -> its ``timeout`` (sqlite3's)
    PostgreSQL  a server that does not answer         -> ``connect_timeout``
                a row or a table another session holds -> the session's ``lock_timeout``

Without ``lock_timeout`` a statement blocked behind another session's open transaction
waits until that transaction ends, which may be never. :func:`bounded_url` gives the URL
to make such an engine with (PostgreSQL's through psycopg 3, as DBOS's URLs name no driver)
and its ``connect_args``; :func:`lock_timed_out` tells the error of a wait that hit the bound.
"""

from __future__ import annotations

import math
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy

__all__ = ["bounded_url", "lock_timed_out"]

_LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE of a statement cancelled by its ``lock_timeout``."""


def bounded_url(
    url: sqlalchemy.URL, seconds: float, *, connect_seconds: float | None = None
) -> tuple[sqlalchemy.URL, dict[str, object]]:
    """``url`` (PostgreSQL's through psycopg 3) and ``connect_args`` bounding its waits.

    Args:
        url: A SQLite or PostgreSQL URL (any other is returned as it is, with no arguments).
        seconds: The most seconds a connection waits for a lock (and to connect, unless
            ``connect_seconds`` is given).
        connect_seconds: The most seconds a PostgreSQL connection waits for the server to
            answer, if not ``seconds`` (a SQLite file has no server to wait for).

    Returns:
        The URL to make the engine with, and its ``connect_args``: SQLite's ``timeout``;
        PostgreSQL's ``connect_timeout`` and ``lock_timeout`` (the URL's own ``options``
        are kept, before it).
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url, {"timeout": seconds}
    if backend not in ("postgresql", "postgres"):
        return url, {}
    if url.drivername in ("postgresql", "postgres"):  # DBOS's URLs name no driver
        url = url.set(drivername="postgresql+psycopg")
    given = url.query.get("options", "")
    own = given if isinstance(given, str) else " ".join(given)
    lock = f"-c lock_timeout={max(1, math.ceil(seconds * 1000))}"
    connect = seconds if connect_seconds is None else connect_seconds
    return url, {
        "connect_timeout": max(1, math.ceil(connect)),  # (whole seconds: libpq's unit)
        "options": f"{own} {lock}".strip(),
    }


def lock_timed_out(error: BaseException) -> bool:
    """Whether ``error`` (SQLAlchemy's, or its driver's) is a wait for a lock that hit its bound.

    Told by the code the driver gives, never by the words of its message (which may quote a
    database's, a role's or a host's name, such as ``"unlocked_chats"``)::

        SQLite      sqlite3's error code SQLITE_BUSY (its extended codes too): "database is
                    locked", after the connection's ``timeout``
        PostgreSQL  SQLSTATE 55P03, lock_not_available: psycopg 3's ``sqlstate``, psycopg2's
                    ``pgcode`` (the statement cancelled by its ``lock_timeout``)
    """
    original = getattr(error, "orig", None) or error
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)  # (set by sqlite3 itself)
        return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return state == _LOCK_NOT_AVAILABLE
