"""An outage of the SQLite file of durable runs, as the engine's kept client meets it."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator

import sqlalchemy

from miniagents.ext.dbos._engine import KEPT_CLIENT_THREAD

NOT_A_DATABASE = b"not a database, any more" * 4
"""What the kept client's connections read in an outage: no SQLite header."""


@contextlib.contextmanager
def kept_client_outage() -> Iterator[None]:
    """Within the block, each read of the engine's kept client fails as a lost database does.

    Each connection that client checks out (in its own thread, :data:`KEPT_CLIENT_THREAD`) is given
    :data:`NOT_A_DATABASE` for its database first, so that its statement fails in SQLite
    itself (``sqlite3.DatabaseError: file is not a database``), raised by the driver where
    SQLAlchemy runs it, as after a file overwritten. The file is left alone, so DBOS's own
    connections (in threads of their own: its waits are stalled by the tests instead) cannot
    put it back, as a checkpoint of its write-ahead log did for a file overwritten in place.
    Each such connection is closed as it is given back (the client's next one opens the file
    again: after the block, the database answers again).
    """
    given: set[int] = set()

    def lost(connection: sqlite3.Connection, _record: object, _proxy: object) -> None:
        if threading.current_thread().name.startswith(KEPT_CLIENT_THREAD):
            connection.deserialize(NOT_A_DATABASE)
            given.add(id(connection))

    def back(connection: sqlite3.Connection, record: sqlalchemy.pool.ConnectionPoolEntry) -> None:
        if id(connection) in given:
            given.discard(id(connection))
            record.invalidate()

    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "checkout", lost)
    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "checkin", back)
    try:
        yield
    finally:
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "checkout", lost)
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "checkin", back)
