"""A real PostgreSQL server for the tests, started from Debian's ``postgresql`` package.

``.ci/run`` installs the package when it is missing; without it, :func:`postgres_server`
fails with the command that installs it (a test never skips because a part is missing).

The server is a throwaway cluster in a temporary folder: ``initdb`` with trust
authentication, listening on 127.0.0.1 only, on a free port, stopped (and its folder
removed) when the context ends, or when the process that started it ends however it does
(on SIGTERM or SIGKILL too: see ``_stopper``). PostgreSQL refuses to run as root, so under
root (as in CI containers) the cluster belongs to the package's ``postgres`` user. A
standby cluster (``postgres_server(standby=True)``) stays in recovery with hot standby off:
it answers every connection with SQLSTATE 57P03, "the database system is not accepting
connections" (a server that is not ready, as one starting up or shutting down is).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PostgresServer",
    "free_port",
    "postgres_binaries",
    "postgres_server",
    "session_ended_at_first_statement",
    "session_idled_out",
]

_INSTALL_HINT = "PostgreSQL is missing: apt-get install -y postgresql (.ci/run installs it)."
_USER = "miniagents"
_IN_TRANSACTION = 2
"""psycopg's ``TransactionStatus.INTRANS``: a session idle in an open transaction."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster."""

    host: str
    port: int
    user: str
    folder: str = ""
    """The cluster's folder (its ``data``, its ``server.log``), for :meth:`stop`."""
    options: str = ""
    """The server's command-line options, as it was started with them."""

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``, waited for): its sessions are ended.

        A client's next statement finds its connection gone, and no new one is taken until
        :meth:`start`.
        """
        _pg_ctl(self.folder, "-D", f"{self.folder}/data", "-m", "fast", "-w", "stop")

    def start(self) -> None:
        """Start the server again after :meth:`stop`, on the same port (waited for)."""
        data, log = f"{self.folder}/data", f"{self.folder}/server.log"
        _pg_ctl(self.folder, "-D", data, "-l", log, "-o", self.options, "-w", "-t", "60", "start")

    def running(self) -> bool:
        """Whether the server runs (``pg_ctl status``): not from :meth:`stop` to :meth:`start`."""
        return _pg_ctl(self.folder, "status", "-D", f"{self.folder}/data", check=False) == 0

    def url(self, database: str = "postgres", *, driver: str = "postgresql") -> str:
        """The SQLAlchemy-style URL of ``database`` (``driver`` e.g. ``postgresql+psycopg``)."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its URL."""
        subprocess.run(
            [str(_binary("createdb")), "-h", self.host, f"-p{self.port}", "-U", self.user, name],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)

    def role_without_connections(self, role: str, *, password: str | None = None) -> str:
        """Make ``role`` anew, one that may log in but takes no connection; return its URL.

        Its ``CONNECTION LIMIT 0`` makes the server answer its every connection with
        SQLSTATE 53300, "too many connections for role" (a busy server, not a refusing one).

        Args:
            role: The role's name (a plain identifier).
            password: Put in the URL (the server trusts every role: it is not checked).
        """
        self.sql(f"DROP ROLE IF EXISTS {role}", f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
        login = role if password is None else f"{role}:{password}"
        return f"postgresql://{login}@{self.host}:{self.port}/postgres"

    def end_session(self, pid: int) -> None:
        """End the session of the server's process ``pid`` as an administrator does.

        ``pg_terminate_backend`` from a connection of its own, waiting until the process
        has ended: that session's next statement fails with SQLSTATE 57P01, "terminating
        connection due to administrator command".
        """
        self.sql(f"SELECT pg_terminate_backend({int(pid)}, 60000)")

    def wait_until_gone(self, pid: int) -> None:
        """Wait until the server's process ``pid`` has ended, as ``pg_stat_activity`` shows.

        Asks the server again and again (each question sees its state anew), for a minute at
        most: it is the server's own state that orders the test, not a sleep.
        """
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as watcher:
            for _ in range(600_000):
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                if row is not None and row[0] == 0:
                    return
        raise AssertionError(f"the server's process {pid} did not end")

    def sql(self, *statements: str) -> None:
        """Run ``statements`` on the database ``postgres``, one by one (``psql``)."""
        where = ["-h", self.host, f"-p{self.port}", "-U", self.user, "-d", "postgres"]
        commands = [part for statement in statements for part in ("-c", statement)]
        subprocess.run(
            [str(_binary("psql")), *where, "-X", "-q", "-v", "ON_ERROR_STOP=1", *commands],
            check=True,
            capture_output=True,
            timeout=60,
        )


def _owner() -> pwd.struct_passwd | None:
    """The user that runs the clusters: the package's ``postgres`` under root, else us."""
    return pwd.getpwnam("postgres") if os.geteuid() == 0 else None


def _pg_ctl(folder: str, *args: str, check: bool = True) -> int:
    """Run ``pg_ctl *args`` as the clusters' user; its exit code (not 0: raised if ``check``)."""
    owner = _owner()
    return subprocess.run(
        [str(_binary("pg_ctl")), *args],
        check=check,
        capture_output=True,
        timeout=120,
        cwd=folder,
        user=owner.pw_uid if owner else None,
        group=owner.pw_gid if owner else None,
    ).returncode


def postgres_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or ``None`` when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _binary(name: str) -> Path:
    folder = postgres_binaries()
    assert folder is not None, _INSTALL_HINT
    return folder / name


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (a server's, or one that none answers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres_server(*, standby: bool = False) -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL cluster on 127.0.0.1; stop and remove it at the end.

    Args:
        standby: Start it as a standby with hot standby off, which takes no connection
            (it waits for a primary's WAL that never comes).
    """
    owner = _owner()
    folder = Path(tempfile.mkdtemp(prefix="miniagents-pg-"))
    try:
        os.chmod(folder, 0o755)
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)

        def run(*args: str, check: bool = True) -> None:
            subprocess.run(
                [str(_binary(args[0])), *args[1:]],
                check=check,
                capture_output=True,
                timeout=120,
                cwd=folder,
                user=owner.pw_uid if owner else None,
                group=owner.pw_gid if owner else None,
            )

        data, log = str(folder / "data"), str(folder / "server.log")
        run("initdb", "-D", data, "-U", _USER, "--auth=trust", "-E", "UTF8")
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {folder} -F"
        if standby:
            signal = Path(data) / "standby.signal"
            signal.touch()
            if owner is not None:
                os.chown(signal, owner.pw_uid, owner.pw_gid)
            options += " -c hot_standby=off"
        run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")
        stopper = None
        try:
            stopper = _stopper(folder)
            yield PostgresServer("127.0.0.1", port, _USER, str(folder), options)
        finally:
            run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
            if stopper is not None:  # (not if that stop failed: the stopper stops it later)
                stopper.kill()
                stopper.communicate()  # (its end waited for, its stdin closed)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_STOPPER = """\
import shutil, subprocess, sys

pg_ctl, folder, uid, gid = sys.argv[1:]
sys.stdin.buffer.read()  # (to its end: the process that started this one ended)
owner = {"user": int(uid), "group": int(gid)} if uid else {}
stop = [pg_ctl, "-D", f"{folder}/data", "-m", "immediate", "-w", "stop"]
subprocess.run(stop, capture_output=True, timeout=120, cwd=folder, **owner)
shutil.rmtree(folder, ignore_errors=True)
"""
"""The stopper's program (see :func:`_stopper`): its arguments are ``pg_ctl``, the cluster's
folder, and the user and group ids of its owner (empty: ours)."""


def _stopper(folder: Path) -> subprocess.Popen[bytes]:
    """A process that stops the cluster of ``folder`` and removes it once this one has ended.

    However this process ends, the one end of the stopper's stdin it holds is closed (by
    the system, on SIGTERM and SIGKILL too, where no ``finally`` runs): the stopper reads
    to that end, then stops the cluster (``pg_ctl`` detaches it from this process, so that
    it would run on). It runs in a session of its own, out of reach of what ends this
    process's group (a Ctrl+C). Killed when the cluster was stopped here.
    """
    owner = _owner()
    ids = [str(owner.pw_uid), str(owner.pw_gid)] if owner else ["", ""]
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _STOPPER, str(_binary("pg_ctl")), str(folder), *ids],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@contextlib.contextmanager
def session_ended_at_first_statement(
    server: PostgresServer, *, holding: str = ""
) -> Iterator[list[int]]:
    """End the session of the first statement sent to ``server`` just before it runs.

    The session is ended (:meth:`PostgresServer.end_session`, waited for) from SQLAlchemy's
    ``before_cursor_execute`` of every engine, so that statement is the first to find it
    gone, with SQLSTATE 57P01: no sleep orders it. The list yielded gets the ended
    session's process id.

    Args:
        server: The server whose session is ended.
        holding: Words of the statement's SQL: the first statement that holds them is the
            one (every statement, if empty); those before it run as they are.
    """
    import sqlalchemy

    ended: list[int] = []

    def end_it(connection: sqlalchemy.Connection, cursor: Any, statement: str, *_: object) -> None:
        if ended or connection.engine.url.port != server.port or holding not in statement:
            return
        ended.append(cursor.connection.info.backend_pid)  # (psycopg 3's)
        server.end_session(ended[0])

    sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", end_it)
    try:
        yield ended
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", end_it)


@contextlib.contextmanager
def session_idled_out(
    server: PostgresServer, role: str, *, in_transaction: bool = False
) -> Iterator[tuple[str, list[int]]]:
    """A role whose first session the server ends for being idle, just before a statement.

    ``role`` is made anew with an ``idle_session_timeout`` of a second (or, with
    ``in_transaction``, an ``idle_in_transaction_session_timeout``). From SQLAlchemy's
    ``before_cursor_execute`` of every engine of that role, the first statement (or, in a
    transaction, the second: the first one's transaction is then open) waits until the
    server has ended that idle session (:meth:`PostgresServer.wait_until_gone`), so that
    statement fails with SQLSTATE 57P05 "terminating connection due to idle-session timeout"
    (or 25P03 "... idle-in-transaction timeout"): no sleep orders it. (In a transaction, it
    is the first statement sent while one is open.) Yields the role's URL
    and a list that gets the ended session's process id.
    """
    import sqlalchemy

    setting = "idle_in_transaction_session_timeout" if in_transaction else "idle_session_timeout"
    server.sql(
        f"DROP ROLE IF EXISTS {role}",
        f"CREATE ROLE {role} LOGIN SUPERUSER",
        f"ALTER ROLE {role} SET {setting} = '1s'",
    )
    ended: list[int] = []

    def idle_it(connection: sqlalchemy.Connection, cursor: Any, *_: object) -> None:
        url = connection.engine.url
        if ended or url.port != server.port or url.username != role:
            return
        if in_transaction and cursor.connection.info.transaction_status != _IN_TRANSACTION:
            return
        ended.append(cursor.connection.info.backend_pid)  # (psycopg 3's)
        server.wait_until_gone(ended[0])

    sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", idle_it)
    try:
        yield f"postgresql://{role}@{server.host}:{server.port}/postgres", ended
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", idle_it)
