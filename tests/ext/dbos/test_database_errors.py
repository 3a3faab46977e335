"""What a failure of the database of durable runs is told as: by the driver's codes.

SQLite's ``sqlite_errorcode`` and PostgreSQL's SQLSTATE (psycopg 3's ``sqlstate``,
psycopg2's ``pgcode``) tell a lock, a table held in this process, a server not reached and
one that refused the connection, one busy or not ready; the words of a message (which may
quote a database's or a role's name) count only where the driver gives no code. The
failures are made for real: a busy SQLite file, a table held by a read cursor, a closed port
on 127.0.0.1, a real Postgres that has no such role or database, or no connection left, and
a real standby that takes no connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from miniagents.ext.dbos import DurableDatabaseError, apending_approvals
from miniagents.ext.dbos._database_errors import database_failure, sqlite_code, sqlite_failure
from tests.ext.dbos.database_failures import afailure_at_start, said_in_one_line
from tests.fakes.postgres import (
    PostgresServer,
    free_port,
    session_ended_at_first_statement,
    session_idled_out,
)
from tests.fakes.sqlite_errors import busy_error, table_locked_error


def test_a_busy_sqlite_file_is_locked_by_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.sqlite")
    error = busy_error(Path(path))
    assert sqlite_code(error) == sqlite3.SQLITE_BUSY
    assert str(sqlite_failure(path, error, 5)) == (
        f"The SQLite file {path!r} of durable runs is locked by another process (database "
        "is locked; waited 5 s): stop that process, or give database_url another file."
    )


def test_a_table_held_in_this_process_is_not_said_locked_by_another_process(
    tmp_path: Path,
) -> None:
    # it was "is locked by another process (database table is locked; waited 5 s)": told by
    # its words, although nothing waited and no other process was involved
    path = str(tmp_path / "runs.sqlite")
    error = table_locked_error(Path(path))
    assert str(error) == "database table is locked"
    assert sqlite_code(error) == sqlite3.SQLITE_LOCKED
    assert str(sqlite_failure(path, error, 5)) == (
        f"The SQLite file {path!r} of durable runs has a table held by another connection of "
        "this process (database table is locked; SQLite does not wait for it), such as a "
        "read cursor still open on it: read that cursor to its end or close it, or give "
        "database_url a file that nothing else of this process opens."
    )


def test_sqlite_words_count_only_for_an_error_that_carries_no_code(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.sqlite")
    # (an error of a SQLite driver other than sqlite3, which gives no code: its words)
    assert sqlite_code(sqlite3.OperationalError("database is locked")) == sqlite3.SQLITE_BUSY
    told = sqlite_failure(path, sqlite3.OperationalError("database table is locked"), 5)
    assert "held by another connection of this process" in str(told)
    # (words elsewhere than at the start are not SQLite's own: a name, say)
    assert sqlite_code(sqlite3.OperationalError("no such table: database is locked")) is None
    wrapped = sqlalchemy.exc.OperationalError("DROP TABLE t", {}, table_locked_error(Path(path)))
    assert sqlite_code(wrapped) == sqlite3.SQLITE_LOCKED  # (SQLAlchemy's around it: its .orig)


class OperationalError(Exception):
    """What psycopg2 raises: its SQLSTATE as ``pgcode`` (psycopg 3 names it ``sqlstate``)."""

    def __init__(self, message: str, pgcode: str | None) -> None:
        super().__init__(message)
        self.pgcode = pgcode


def _told(error: BaseException) -> str:
    url = "postgresql://u@127.0.0.1:5432/runs"
    wrapped = sqlalchemy.exc.OperationalError("SELECT 1", {}, error)
    failure = database_failure(wrapped, url, url, 7)
    assert failure is not None
    return str(failure)


def test_postgres_errors_are_told_by_their_sqlstate() -> None:
    lost = OperationalError("server closed the connection unexpectedly", "08006")
    assert "cannot be reached" in _told(lost)
    # a code of another class, although its words say "connect" (a database's name)
    missing = OperationalError('database "connect_log" does not exist', "3D000")
    assert _told(missing) == (
        "The database of durable runs postgresql://u@127.0.0.1:5432/runs failed "
        '(OperationalError: database "connect_log" does not exist).'
    )


async def test_a_refused_connection_to_a_closed_port_cannot_be_reached() -> None:
    url = f"postgresql://connect_locked@127.0.0.1:{free_port()}/locked_runs"
    said = said_in_one_line(await afailure_at_start("REMEMBER_CLOSED_PORT", url))
    assert said.startswith("The database of durable runs postgresql://***@127.0.0.1:"), said
    assert "cannot be reached (OperationalError: connection failed:" in said
    assert "Connection refused" in said


async def test_a_role_that_does_not_exist_is_refused_not_unreachable(
    postgres: PostgresServer,
) -> None:
    # it was "cannot be reached": every OperationalError was, whatever the server answered
    url = f"postgresql://connect_locked_nobody@{postgres.host}:{postgres.port}/postgres"
    said = said_in_one_line(await afailure_at_start("REMEMBER_NO_ROLE", url))
    assert said.startswith("The server of the database of durable runs postgresql://***@"), said
    assert "refused the connection (OperationalError: connection failed: connection to " in said
    assert 'FATAL:  role "connect_locked_nobody" does not exist' in said
    assert said.endswith(
        "check the URL's database name, user and password, and that the server lets that "
        "user connect to that database."
    )
    assert "cannot be reached" not in said
    assert "locked by" not in said


@pytest.mark.parametrize("name", ["connect_log", "locked_runs"])
async def test_a_database_that_does_not_exist_is_refused_whatever_its_name(
    postgres: PostgresServer, name: str
) -> None:
    # it was "cannot be read (OperationalError: (psycopg.OperationalError) connection failed:
    # ...)", a traceback's first line: contextlib's frame, where DBOS connects, hid DBOS's
    with pytest.raises(DurableDatabaseError) as caught:
        await apending_approvals(database_url=postgres.url(name))
    said = said_in_one_line(caught.value)
    shown = f"postgresql://***@{postgres.host}:{postgres.port}/{name}"
    assert said.startswith(
        f"The server of the database of durable runs {shown} refused the connection "
        "(OperationalError: connection failed: connection to server at "
    ), said
    assert f'FATAL:  database "{name}" does not exist' in said
    assert "cannot be reached" not in said
    assert "locked by" not in said


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("57P01", "terminating connection due to administrator command"),
        ("57P02", "terminating connection because of crash of another server process"),
    ],
)
def test_a_session_the_server_ended_is_a_lost_connection_by_its_sqlstate(
    state: str, words: str
) -> None:
    # class 57, not 08: it was "failed (OperationalError: terminating connection ...)."
    assert _told(OperationalError(words, state)) == (
        "The database of durable runs postgresql://u@127.0.0.1:5432/runs lost its connection "
        f"(OperationalError: {words}): the server was stopped, or it ended this session (an "
        "administrator's pg_terminate_backend, or a crash of the server). Check that the "
        "server runs and accepts connections, then try again."
    )


async def test_a_session_ended_by_the_server_is_a_lost_connection_not_a_failure(
    postgres: PostgresServer,
) -> None:
    # SQLSTATE 57P01 was "failed (OperationalError: terminating connection due to
    # administrator command).", as if the database had refused a statement
    with (
        session_ended_at_first_statement(postgres) as ended,
        pytest.raises(DurableDatabaseError) as caught,
    ):
        await apending_approvals(database_url=postgres.url())
    assert len(ended) == 1
    said = said_in_one_line(caught.value)
    assert said == (
        f"The database of durable runs postgresql://***@{postgres.host}:{postgres.port}/"
        "postgres lost its connection (AdminShutdown: terminating connection due to "
        "administrator command): the server was stopped, or it ended this session (an "
        "administrator's pg_terminate_backend, or a crash of the server). Check that the "
        "server runs and accepts connections, then try again."
    ), said


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("57P05", "terminating connection due to idle-session timeout"),
        ("25P03", "terminating connection due to idle-in-transaction timeout"),
    ],
)
def test_a_session_the_server_ended_for_being_idle_is_told_with_its_timeouts(
    state: str, words: str
) -> None:
    # class 57 and 25, not 08: it was "failed (OperationalError: terminating connection ...)."
    assert _told(OperationalError(words, state)) == (
        "The server of the database of durable runs postgresql://u@127.0.0.1:5432/runs ended "
        f"this session for being idle (OperationalError: {words}): its idle_session_timeout "
        "(or idle_in_transaction_session_timeout, for a transaction left open) is shorter "
        "than a connection of this process stays unused. Raise it on the server, or for this "
        "role or database (0 turns it off), or call again: a durable run reconnects and "
        "retries on its own, and approvals and run listings open a new connection at their "
        "next call."
    )


async def test_a_session_ended_for_being_idle_is_told_so_where_approvals_are_read(
    postgres: PostgresServer,
) -> None:
    # SQLSTATE 57P05 was "failed (OperationalError: terminating connection due to idle-session
    # timeout).", as if the database had refused a statement
    with (
        session_idled_out(postgres, "approvals_idler") as (url, ended),
        pytest.raises(DurableDatabaseError) as caught,
    ):
        await apending_approvals(database_url=url)
    assert len(ended) == 1
    said = said_in_one_line(caught.value)
    shown = f"postgresql://***@{postgres.host}:{postgres.port}/postgres"
    assert said.startswith(
        f"The server of the database of durable runs {shown} ended this session for being idle "
        "(IdleSessionTimeout: terminating connection due to idle-session timeout): "
    ), said


def test_a_session_ended_idle_in_a_transaction_is_told_by_the_real_servers_error(
    postgres: PostgresServer,
) -> None:
    # SQLSTATE 25P03 was "failed (OperationalError: terminating connection due to
    # idle-in-transaction timeout)."
    with session_idled_out(postgres, "transaction_idler", in_transaction=True) as (url, ended):
        engine = sqlalchemy.create_engine(url.replace("postgresql:", "postgresql+psycopg:", 1))
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
                with pytest.raises(sqlalchemy.exc.DBAPIError) as got:
                    connection.execute(sqlalchemy.text("SELECT 2"))  # (in the transaction begun)
        finally:
            engine.dispose()
    assert len(ended) == 1
    error = got.value.with_traceback(None)  # (as raised by the store: no test's frames)
    failure = database_failure(error, url, url, 7)
    assert failure is not None
    assert str(failure).startswith(
        f"The server of the database of durable runs {url} ended this session for being idle "
        "(IdleInTransactionSessionTimeout: terminating connection due to idle-in-transaction "
        "timeout): its idle_session_timeout (or idle_in_transaction_session_timeout, "
    ), str(failure)


def test_too_many_connections_is_a_busy_server_by_its_sqlstate() -> None:
    said = _told(OperationalError("sorry, too many clients already", "53300"))
    assert "has all the connections it takes" in said, said
    assert "max_connections" in said
    assert "refused" not in said


async def test_too_many_connections_is_a_busy_server_not_a_refused_one(
    postgres: PostgresServer,
) -> None:
    # it was "refused the connection ... check the URL's database name, user and password"
    url = postgres.role_without_connections("refused_busy_role")
    said = said_in_one_line(await afailure_at_start("REMEMBER_NO_CONNECTION_LEFT", url))
    assert said.startswith(
        "The server of the database of durable runs postgresql://***@"
        f"{postgres.host}:{postgres.port}/postgres has all the connections it takes "
        "(OperationalError: connection failed: connection to server at "
    ), said
    assert 'FATAL:  too many connections for role "refused_busy_role"' in said
    assert "Try again once other clients have closed theirs" in said
    assert "max_connections" in said
    assert "refused the connection" not in said
    assert "user and password" not in said


@pytest.mark.parametrize(
    "words",
    [
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
    ],
)
def test_a_server_not_ready_is_told_by_its_words_after_libpqs_framing(words: str) -> None:
    # (libpq's text as psycopg gives it: no SQLSTATE, the server's words after "FATAL:")
    connecting = OperationalError(
        f'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  '
        f"{words}",
        None,
    )
    said = _told(connecting)
    assert said.startswith(
        "The server of the database of durable runs postgresql://u@127.0.0.1:5432/runs is not "
        "ready for connections (OperationalError: connection failed: "
    ), said
    assert said.endswith(
        f"FATAL:  {words}): it is starting up, in recovery or shutting down, not refusing "
        "this URL. Try again once it has started (a standby in recovery takes connections "
        "only with hot_standby on, or once it is promoted)."
    ), said
    assert "user and password" not in said


def test_a_server_not_ready_is_told_by_its_sqlstate() -> None:
    said = _told(OperationalError("the database system is shutting down", "57P03"))
    assert "is not ready for connections" in said, said
    assert "refused" not in said


async def test_a_server_that_takes_no_connection_yet_is_not_ready_not_refusing(
    postgres_standby: PostgresServer,
) -> None:
    # it was "refused the connection ... check the URL's database name, user and password"
    server = postgres_standby
    said = said_in_one_line(await afailure_at_start("REMEMBER_NOT_READY", server.url()))
    assert said.startswith(
        "The server of the database of durable runs postgresql://***@"
        f"{server.host}:{server.port}/postgres is not ready for connections "
        "(OperationalError: connection failed: connection to server at "
    ), said
    assert "FATAL:  the database system is not accepting connections" in said
    assert "Try again once it has started" in said
    assert "refused the connection" not in said
    assert "user and password" not in said
