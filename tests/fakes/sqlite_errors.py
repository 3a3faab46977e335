"""SQLite's errors made for real, for the tests of how a database's failure is told.

The tests of ``lock_timed_out`` (``tests/ext/dbos/test_bounds.py``) and of the durable
runs' database errors (``tests/ext/dbos/test_database_errors.py``) read the driver's own
error, with its ``sqlite_errorcode``, rather than one built by hand: SQLITE_BUSY (another
connection's transaction, waited for) and SQLITE_LOCKED (a table of this connection held,
never waited for).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

__all__ = ["busy_error", "table_locked_error"]


def busy_error(path: Path) -> sqlite3.OperationalError:
    """SQLite's SQLITE_BUSY, for real: the file held by another connection's transaction.

    One connection holds ``path`` in an exclusive transaction while another, bounded to
    10 ms, reads it; the holder then rolls back.

    Args:
        path: The SQLite file to make busy (created if missing).

    Returns:
        The waiting connection's ``database is locked`` error.
    """
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        with (
            closing(sqlite3.connect(path, timeout=0.01)) as waiting,
            pytest.raises(sqlite3.OperationalError) as raised,
        ):
            waiting.execute("SELECT 1 FROM sqlite_master")
        holder.rollback()
    return raised.value


def table_locked_error(path: Path) -> sqlite3.OperationalError:
    """SQLite's SQLITE_LOCKED, for real: a table dropped while a cursor still reads it.

    SQLite refuses the drop at once (it never waits for a table that its own connection
    holds), whatever the connection's timeout.

    Args:
        path: The SQLite file to make the table in (created if missing).

    Returns:
        The drop's ``database table is locked`` error.
    """
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("CREATE TABLE t (x)")
        connection.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        reading = connection.execute("SELECT x FROM t")
        reading.fetchone()  # (a statement still running on the table)
        with pytest.raises(sqlite3.OperationalError) as raised:
            connection.execute("DROP TABLE t")
    return raised.value
