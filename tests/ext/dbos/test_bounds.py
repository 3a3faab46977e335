"""``bounded_url``'s bounds on a connection's waits; ``lock_timed_out``: one that hit its bound."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy

from miniagents.ext.dbos._bounds import bounded_url, lock_timed_out
from tests.fakes.sqlite_errors import busy_error, table_locked_error


def test_a_postgres_connection_waits_for_its_server_and_for_a_lock_by_their_own_bounds() -> None:
    url = sqlalchemy.make_url("postgresql://u@127.0.0.1/db?options=-c%20search_path%3Dx")
    made, arguments = bounded_url(url, 0.5, connect_seconds=7.2)
    assert made.drivername == "postgresql+psycopg"
    assert arguments == {
        "connect_timeout": 8,  # (whole seconds: libpq's unit)
        "options": "-c search_path=x -c lock_timeout=500",
    }
    assert bounded_url(url, 0.5)[1]["connect_timeout"] == 1  # (one bound for both)
    sqlite = sqlalchemy.make_url("sqlite:///runs.sqlite")  # (no server: its lock's bound only)
    assert bounded_url(sqlite, 0.5, connect_seconds=7.2) == (sqlite, {"timeout": 0.5})


def test_a_sqlite_file_locked_by_another_connection_is_a_lock_timeout(tmp_path: Path) -> None:
    error = busy_error(tmp_path / "held.sqlite")
    assert lock_timed_out(error)
    wrapped = sqlalchemy.exc.OperationalError("SELECT 1", {}, error)
    assert lock_timed_out(wrapped)  # (SQLAlchemy's error around it: its .orig)


def test_a_sqlite_error_that_only_says_locked_is_not_a_lock_timeout(tmp_path: Path) -> None:
    error = table_locked_error(tmp_path / "one.sqlite")  # SQLITE_LOCKED at once: no bound
    assert "table is locked" in str(error)
    assert not lock_timed_out(error)
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
