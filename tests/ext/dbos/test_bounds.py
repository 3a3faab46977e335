"""``lock_timed_out``: a wait for a lock that hit its bound, told by the driver's code."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy

from miniagents.ext.dbos._bounds import lock_timed_out


def test_a_sqlite_file_locked_by_another_connection_is_a_lock_timeout(tmp_path: Path) -> None:
    path = tmp_path / "held.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        with (
            closing(sqlite3.connect(path, timeout=0.01)) as waiting,
            pytest.raises(sqlite3.OperationalError) as raised,
        ):
            waiting.execute("SELECT 1 FROM sqlite_master")
        holder.rollback()
    assert lock_timed_out(raised.value)
    wrapped = sqlalchemy.exc.OperationalError("SELECT 1", {}, raised.value)
    assert lock_timed_out(wrapped)  # (SQLAlchemy's error around it: its .orig)


def test_a_sqlite_error_that_only_says_locked_is_not_a_lock_timeout(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "one.sqlite", isolation_level=None)) as connection:
        connection.execute("CREATE TABLE t (x)")
        connection.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        reading = connection.execute("SELECT x FROM t")
        reading.fetchone()  # (a statement still running on the table)
        with pytest.raises(sqlite3.OperationalError, match="table is locked") as raised:
            connection.execute("DROP TABLE t")  # SQLITE_LOCKED at once: no wait, no bound
    assert not lock_timed_out(raised.value)
    assert not lock_timed_out(sqlite3.OperationalError("database is locked"))  # (no code)


class _Psycopg2Error(Exception):
    """What psycopg2 raises: its SQLSTATE as ``pgcode`` (psycopg 3 names it ``sqlstate``)."""

    def __init__(self, message: str, pgcode: str) -> None:
        super().__init__(message)
        self.pgcode = pgcode


def test_postgres_errors_are_told_by_their_sqlstate() -> None:
    cancelled = _Psycopg2Error("canceling statement due to lock timeout", "55P03")
    assert lock_timed_out(cancelled)
    missing = _Psycopg2Error('database "unlocked_chats" does not exist', "3D000")
    assert not lock_timed_out(missing)
    assert not lock_timed_out(_Psycopg2Error("lock timeout in its words only", "XX000"))
