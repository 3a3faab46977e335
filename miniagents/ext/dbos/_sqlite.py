"""DBOS's SQLite connections, given ``unixepoch('subsec')`` where this SQLite lacks it.

On Python 3.12 and later, DBOS stamps its SQLite rows in milliseconds with
``unixepoch('subsec')``, a modifier SQLite has only from 3.42.0. A Python linked to an
older SQLite (Debian 12 has 3.40, and so have the ``python:3.12-bookworm`` images) gets
``NULL`` there, and DBOS cannot launch::

    DBOS on Python 3.12+, SQLite 3.40:   INSERT ... DEFAULT (unixepoch('subsec') * 1000)
                                         -> NOT NULL constraint failed:
                                            application_versions.version_timestamp
    the same, through these connections: unixepoch('subsec') -> time.time()

So where the shim is needed (:func:`needs_shim`), every connection DBOS opens to the file
registers a one-argument ``unixepoch`` of its own: ``'subsec'`` gives the time with its
fraction, as SQLite 3.42 does, and any other argument gets SQLite's own answer. DBOS
launches with :func:`engine_options`; its clients are made by :func:`new_client` (and
closed by :func:`close_client`), which gives them an engine of these connections; any other
engine that writes DBOS's tables (the approvals' claims) connects with
:func:`shim_arguments`. :func:`sqlite_path` reads the file of a ``sqlite:///`` URL.
"""

from __future__ import annotations

import sqlite3
import sys
import time
import weakref
from contextlib import closing
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy
    from dbos import DBOSClient

__all__ = [
    "CONNECT_TIMEOUT",
    "ShimConnection",
    "close_client",
    "engine_options",
    "id_column",
    "needs_shim",
    "new_client",
    "shim_arguments",
    "sqlite_has_subsec",
    "sqlite_path",
]

CONNECT_TIMEOUT = 5
"""Seconds to reach a database (a server that does not answer within them is an error)."""
_SUBSEC = frozenset({"subsec", "subsecond"})
_engines: weakref.WeakKeyDictionary[DBOSClient, sqlalchemy.Engine] = weakref.WeakKeyDictionary()


def sqlite_path(url: str) -> str:
    """The file path of a SQLite ``url`` (what follows ``///``); ``""`` if it names none.

    Example:
        >>> sqlite_path("sqlite:///runs/agents.sqlite")
        'runs/agents.sqlite'
        >>> sqlite_path("sqlite://")
        ''
    """
    return url.split("///", 1)[1] if "///" in url else ""


def id_column() -> sqlalchemy.Column[int]:
    """A table's ``id`` key, numbered by the database.

    An ``INTEGER`` on SQLite (the only type it numbers), a ``BIGINT`` elsewhere.
    """
    import sqlalchemy

    big = sqlalchemy.BigInteger().with_variant(sqlalchemy.Integer(), "sqlite")
    return sqlalchemy.Column("id", big, primary_key=True, autoincrement=True)


@cache
def sqlite_has_subsec() -> bool:
    """Whether this Python's SQLite knows ``unixepoch('subsec')`` (SQLite 3.42.0 and later)."""
    with closing(sqlite3.connect(":memory:")) as connection:
        try:
            (value,) = connection.execute("SELECT unixepoch('subsec')").fetchone()
        except sqlite3.OperationalError:  # before 3.38.0: no unixepoch at all
            return False
    return value is not None


def needs_shim(url: str) -> bool:
    """Whether DBOS, on the database ``url``, asks SQLite for what it does not have."""
    return url.startswith("sqlite") and sys.version_info >= (3, 12) and not sqlite_has_subsec()


def _unixepoch(value: object) -> float | int | None:
    """SQLite 3.42's ``unixepoch(value)``: ``'subsec'`` is now, with its fraction."""
    if isinstance(value, str) and value.lower() in _SUBSEC:
        return time.time()
    # unixepoch(X) is CAST(strftime('%s', X) AS INT) (SQLite's documentation), and a SQLite
    # before 3.38 has only the latter; DBOS asks for 'subsec' only, so this is seldom run
    with closing(sqlite3.connect(":memory:")) as own:
        (answer,) = own.execute("SELECT CAST(strftime('%s', ?) AS INT)", (value,)).fetchone()
    return answer if answer is None else int(answer)


class ShimConnection(sqlite3.Connection):
    """A SQLite connection whose ``unixepoch(X)`` knows ``'subsec'``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.create_function("unixepoch", 1, _unixepoch)


def shim_arguments(url: str) -> dict[str, Any]:
    """The ``connect_args`` of a SQLAlchemy engine of ``url`` that writes DBOS's tables.

    The shim's connections if it is needed (see :func:`needs_shim`), else nothing.
    """
    return {"factory": ShimConnection} if needs_shim(url) else {}


def engine_options(url: str) -> dict[str, Any]:
    """DBOS's ``db_engine_kwargs`` for the database ``url``: the shim's connections, if needed."""
    shim = shim_arguments(url)
    return {"connect_args": shim} if shim else {}


def new_client(url: str, *, lazy: bool = False) -> DBOSClient:
    """A ``DBOSClient`` of the database ``url`` (to close with :func:`close_client`).

    Where the shim is needed, the client gets an engine of its connections, set up as
    DBOS sets up its own SQLite engines (writers take the lock at ``BEGIN``, wait up to
    30 s for it, and foreign keys are on). A PostgreSQL server that does not answer within
    :data:`CONNECT_TIMEOUT` (unless the URL's ``connect_timeout`` says otherwise) is an
    error: DBOS's client sets no bound of its own. ``lazy``: the client connects at its first
    call (DBOS's ``lazy``), not here with a query of its own.
    """
    from dbos import DBOSClient

    if not needs_shim(url):
        return DBOSClient(system_database_url=_timed(url), retry_connection_errors=False, lazy=lazy)
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        url,
        connect_args={"factory": ShimConnection},
        pool_size=5,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=True,
    )
    sqlalchemy.event.listen(engine, "connect", _set_up)
    try:
        client = DBOSClient(system_database_engine=engine, retry_connection_errors=False, lazy=lazy)
    except BaseException:
        engine.dispose()
        raise
    _engines[client] = engine
    return client


def _timed(url: str) -> str:
    """``url``, given ``connect_timeout=CONNECT_TIMEOUT`` if it is a PostgreSQL URL without one."""
    if not url.startswith("postgres"):
        return url
    import sqlalchemy

    server = sqlalchemy.make_url(url)
    if "connect_timeout" in server.query:
        return url
    timed = server.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT)})
    return timed.render_as_string(hide_password=False)


def _set_up(connection: sqlite3.Connection, _record: object) -> None:
    connection.isolation_level = "IMMEDIATE"
    connection.execute("PRAGMA busy_timeout=30000")
    connection.execute("PRAGMA foreign_keys=ON")


def close_client(client: DBOSClient) -> None:
    """Destroy a client of :func:`new_client`, and dispose of the engine it was given."""
    try:
        client.destroy()
    finally:
        engine = _engines.pop(client, None)
        if engine is not None:
            engine.dispose()
