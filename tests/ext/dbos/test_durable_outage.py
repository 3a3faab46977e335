"""A durable run whose PostgreSQL server stops while it runs waits for the server.

A durable agent replies once, then waits for the test's program to stop the server (a
real Postgres, ``pg_ctl stop``) and replies again. Its reader gets the whole reply, but
the run's record cannot be written: DBOS retries the statement until the server answers
(``retry_connection_errors``, kept on for the runs themselves), and the ``MiniAgents``
block's exit waits for that record. Once DBOS says that it retries (its log line, in the
thread that writes the run's records), the program starts the server again: the exit
ends, and the run is recorded as ended, its reply given again to the same workflow id.
The program runs in a child process (bounded: a hang fails the test), on a database of
its test's own, of a server that this module's tests share (one cluster made for them all)
and no other test uses, so that stopping it leaves the other tests' server alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.postgres import PostgresServer, postgres_server
from tests.subprocesses import run_python


@dataclass(frozen=True)
class Outage:
    """A real PostgreSQL server that the test may stop and start again, and its database."""

    server: PostgresServer
    database: str

    @property
    def args(self) -> list[str]:
        """The program's arguments: the server's host, port, user, folder and options, and
        the database's name (``sys.argv[1:7]``)."""
        server = self.server
        return [
            server.host,
            str(server.port),
            server.user,
            server.folder,
            server.options,
            self.database,
        ]

    @property
    def unreachable(self) -> str:
        """The start of the line a program prints for the error of the server down."""
        return (
            f"error: The database of durable runs postgresql://***@{self.server.host}:"
            f"{self.server.port}/{self.database} cannot be reached (OperationalError: "
            "connection failed: "
        )


@pytest.fixture(scope="module")
def outage_cluster() -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster of this module's tests (made once: ``initdb`` is slow)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def outage(outage_cluster: PostgresServer) -> Outage:
    """The module's server, running (a test that failed may have left it stopped), and an
    empty database of the test's own on it (no run of another test is recovered there)."""
    if not outage_cluster.running():
        outage_cluster.start()
    database = outage_cluster.create_database(f"outage_{time.monotonic_ns()}")
    return Outage(outage_cluster, database.rpartition("/")[2])


PROGRAM = """
import asyncio
import logging
import sys
import threading

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.dbos import durable, workflow_id
from tests.fakes.postgres import PostgresServer

server = PostgresServer(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
retrying = threading.Event()
stopped: dict[str, asyncio.Event] = {}


class _Retries(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        named = threading.current_thread().name.startswith("dbos-executor")
        if named and record.getMessage().startswith("Database connection failed"):
            retrying.set()


@miniagent
async def waiter(ctx: InteractionContext) -> None:
    ctx.reply("before the stop")
    await stopped["server"].wait()
    ctx.reply("after the stop")


async def main() -> None:
    stopped["server"] = asyncio.Event()
    logging.getLogger("dbos").addHandler(_Retries())
    agent = durable(waiter, database_url=server.url(sys.argv[6], driver="postgresql+psycopg"))
    async with MiniAgents():
        with workflow_id("outage-1"):
            reply = agent.inquire("go")
        async for promise in reply:
            print("read:", await promise, flush=True)
            break
        await asyncio.to_thread(server.stop)
        stopped["server"].set()
        print("reply:", [str(message) for message in await reply], flush=True)
        await asyncio.to_thread(retrying.wait)  # DBOS waits for the server to write the run
        print("retrying", flush=True)
        await asyncio.to_thread(server.start)
    print("exited", flush=True)
    async with MiniAgents():
        with workflow_id("outage-1"):
            again = await agent.inquire("go")
        print("recorded:", [str(message) for message in again], flush=True)


asyncio.run(main())
"""


def test_a_run_whose_server_stopped_waits_for_it_and_is_recorded_once_it_is_back(
    outage: Outage, tmp_path: Path
) -> None:
    (tmp_path / "program.py").write_text(PROGRAM)
    done = run_python(["program.py", *outage.args], tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "read: before the stop",
        "reply: ['before the stop', 'after the stop']",
        "retrying",
        "exited",
        "recorded: ['before the stop', 'after the stop']",
    ], done.stdout + done.stderr


CANCELLING = """
import asyncio
import sys

from miniagents import MiniAgents
from miniagents.ext.dbos import DurableDatabaseError, acancel_run, afind_runs, durable, workflow_id
from miniagents.ext.llm.offline import offline_agent
from tests.fakes.postgres import PostgresServer

server = PostgresServer(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
answering = offline_agent.fork(alias="CANCELLED", reply=lambda call: "Done.", token_delay=0)
agent = durable(answering, database_url=server.url(sys.argv[6]))


async def main() -> None:
    async with MiniAgents():
        with workflow_id("down-1"):
            print("reply:", [str(message) for message in await agent.inquire("Go.")], flush=True)
    async with MiniAgents():  # (the exit above waited for the run's record)
        await asyncio.to_thread(server.stop)
        try:
            await acancel_run(agent, "down-1")
        except DurableDatabaseError as error:
            print("error:", error, flush=True)
        await asyncio.to_thread(server.start)
        await acancel_run(agent, "down-1")  # (back: an ended run, nothing to cancel)
        [run] = await afind_runs(agent, "down-1")
        print("ended:", run.ended, "cancelled:", run.cancelled, flush=True)


asyncio.run(main())
"""


def test_cancelling_a_run_while_its_server_is_down_is_an_error_not_a_wait(
    outage: Outage, tmp_path: Path
) -> None:
    # acancel_run read and wrote through DBOS's own calls, which retry a lost connection
    # until the server answers, with no bound: it waited for ever (the child's bound here)
    (tmp_path / "program.py").write_text(CANCELLING)
    done = run_python(["program.py", *outage.args], tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "reply: ['Done.']", done.stdout + done.stderr
    assert lines[1].startswith(outage.unreachable), done.stdout + done.stderr
    assert lines[2:] == ["ended: True cancelled: False"], done.stdout + done.stderr


STOPPING = """
import asyncio
import logging
import sys
import threading

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.dbos._engine import current_engine
from tests.fakes.postgres import PostgresServer

server = PostgresServer(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
retrying = threading.Event()
events: dict[str, asyncio.Event] = {}


class _Retries(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Database connection failed"):
            retrying.set()


@miniagent
async def waiter(ctx: InteractionContext) -> None:
    events["started"].set()
    await events["stopped"].wait()
    ctx.reply("after the stop")


async def main() -> None:
    events.update(started=asyncio.Event(), stopped=asyncio.Event())
    logging.getLogger("dbos").addHandler(_Retries())
    agent = durable(waiter, database_url=server.url(sys.argv[6], driver="postgresql+psycopg"))
    async with MiniAgents():
        with workflow_id("stopped-1"):
            reply = agent.inquire("go")
        await events["started"].wait()
        await asyncio.to_thread(server.stop)
        events["stopped"].set()
        print("reply:", [str(message) for message in await reply], flush=True)
        await asyncio.to_thread(retrying.wait)  # the agent returned; DBOS waits to record it
        current_engine().stop("stopped-1")
    print("exited", flush=True)  # (the server still down)
    await asyncio.to_thread(server.start)  # (DBOS's retries, in its thread, then end)


asyncio.run(main())
"""


def test_a_run_stopped_while_dbos_waits_to_record_it_stops(outage: Outage, tmp_path: Path) -> None:
    # the run's body was forgotten as its agent returned, before DBOS wrote its record:
    # Engine.stop then found nothing to stop, and the block's exit waited for the server
    (tmp_path / "program.py").write_text(STOPPING)
    done = run_python(["program.py", *outage.args], tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["reply: ['after the stop']", "exited"], (
        done.stdout + done.stderr
    )


OUTSIDE = """
import asyncio
import sys

from miniagents import MiniAgents
from miniagents.ext.dbos import (
    DurableDatabaseError,
    acancelled_runs,
    afind_runs,
    aname_run,
    anote_run,
    arun_named,
    arun_notes,
    durable,
    replay,
    workflow_id,
)
from miniagents.ext.llm.offline import offline_agent
from tests.fakes.postgres import PostgresServer

server = PostgresServer(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
answering = offline_agent.fork(alias="OUTSIDE", reply=lambda call: "Done.", token_delay=0)
agent = durable(answering, database_url=server.url(sys.argv[6]))


async def asked_again() -> object:
    with workflow_id("down-1"):  # (the ended run, asked again by its id: its record)
        return await agent.inquire("Go.")


CALLS = {
    "afind_runs": lambda: afind_runs(agent, "down-"),
    "acancelled_runs": lambda: acancelled_runs(agent, ["down-1"]),
    "anote_run": lambda: anote_run(agent, "down-1", {"pause.0": 1}),
    "arun_notes": lambda: arun_notes(agent, "down-1"),
    "aname_run": lambda: aname_run(agent, "r1", "down-1"),
    "arun_named": lambda: arun_named(agent, "r1"),
    "replay": lambda: replay(agent, "down-1"),
    "asked_again": asked_again,
}


async def main() -> None:
    async with MiniAgents():
        with workflow_id("down-1"):
            print("reply:", [str(message) for message in await agent.inquire("Go.")], flush=True)
    for name in sys.argv[7:]:  # (each after the last's outage: the server back each time)
        call = CALLS[name]
        async with MiniAgents():  # (the exit above waited for the run's record)
            await asyncio.to_thread(server.stop)
            try:
                await call()
            except DurableDatabaseError as error:
                print(name, "error:", error, flush=True)
            await asyncio.to_thread(server.start)
            await call()  # (back: it answers again)
            print(name, "answered", flush=True)


asyncio.run(main())
"""


CALLED = [
    "afind_runs",
    "acancelled_runs",
    "anote_run",
    "arun_notes",
    "aname_run",
    "arun_named",
    "replay",
    "asked_again",
]


def test_reading_or_noting_runs_while_their_server_is_down_is_an_error_not_a_wait(
    outage: Outage, tmp_path: Path
) -> None:
    # these read and wrote through DBOS's own calls, which retry a lost connection until
    # the server answers, with no bound: they waited for ever (the child's bound here; a
    # run asked again by its id too: its status read through DBOS).
    # One program calls each in turn, the server stopped and started again for each
    (tmp_path / "program.py").write_text(OUTSIDE)
    done = run_python(["program.py", *outage.args, *CALLED], tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "reply: ['Done.']", done.stdout + done.stderr
    assert len(lines) == 1 + 2 * len(CALLED), done.stdout + done.stderr
    for name, failed, answered in zip(CALLED, lines[1::2], lines[2::2], strict=True):
        assert failed.startswith(f"{name} {outage.unreachable}"), done.stdout + done.stderr
        assert answered == f"{name} answered", done.stdout + done.stderr


SILENT = """
import socket
import threading

from miniagents.ext.dbos._sqlite import close_client, new_client

listener = socket.create_server(("127.0.0.1", 0))
held: list[socket.socket] = []


def accept() -> None:
    while True:
        connection, _ = listener.accept()
        held.append(connection)  # (accepted, and never answered)


threading.Thread(target=accept, daemon=True).start()
port = listener.getsockname()[1]
try:
    close_client(new_client(f"postgresql://user:secret@127.0.0.1:{port}/postgres"))
except Exception as error:
    print("error:", type(error).__name__, str(error).splitlines()[0], flush=True)
print("accepted:", bool(held), flush=True)
"""


def test_a_client_of_a_server_that_never_answers_gives_up_after_the_connect_timeout(
    tmp_path: Path,
) -> None:
    # DBOS's client set no connect_timeout: a server that accepts the connection and says
    # nothing (a plain socket here) was waited for without end (the child's bound here)
    (tmp_path / "program.py").write_text(SILENT)
    done = run_python(["program.py"], tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("error: OperationalError "), done.stdout + done.stderr
    assert "timeout expired" in lines[0], done.stdout + done.stderr
    assert lines[1:] == ["accepted: True"], done.stdout + done.stderr


PENDING = """
import asyncio
import sys

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.dbos import DurableDatabaseError, DurableRunStoppedError, durable, replay
from miniagents.ext.dbos import _engine, workflow_id
from miniagents.ext.dbos._engine import current_engine
from tests.fakes.postgres import PostgresServer

server = PostgresServer(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
events: dict[str, asyncio.Event] = {}
read = _engine._status_of


def read_then_stop(client, workflow_id, *, load_output=False):
    status = read(client, workflow_id, load_output=load_output)
    if load_output:  # (replay's first read: the server goes down right after it)
        server.stop()
    return status


@miniagent
async def waiter(ctx: InteractionContext) -> None:
    events["started"].set()
    await asyncio.Event().wait()


async def main() -> None:
    events.update(started=asyncio.Event())
    agent = durable(waiter, database_url=server.url(sys.argv[6]))
    async with MiniAgents():
        with workflow_id("pending-1"):
            reply = agent.inquire("go")
        await events["started"].wait()
        current_engine().stop("pending-1")
        try:
            await reply
        except DurableRunStoppedError:
            print("stopped", flush=True)
        _engine._status_of = read_then_stop
        try:
            await replay(agent, "pending-1")
        except DurableDatabaseError as error:
            print("error:", error, flush=True)
        _engine._status_of = read
        await asyncio.to_thread(server.start)
        current_engine().stop("pending-1")
    print("exited", flush=True)


asyncio.run(main())
"""


def test_replaying_a_pending_run_whose_server_stops_after_its_first_read_is_an_error(
    outage: Outage, tmp_path: Path
) -> None:
    # replay read a pending run's status through its client, then gave the run to the
    # engine, whose DBOS calls retry a lost connection until the server answers: with the
    # server stopped right after that first read, it waited for ever (the child's bound here)
    (tmp_path / "program.py").write_text(PENDING)
    done = run_python(["program.py", *outage.args], tmp_path, timeout=90)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "stopped", done.stdout + done.stderr
    waited = (  # (the wait for the run, resumed, met the outage: it says so)
        "error: The durable run 'pending-1' was waited for, but the database of durable runs "
        "could not be read meanwhile (an outage, not a run that is slow to end)"
    )
    assert lines[1].startswith(waited), done.stdout + done.stderr
    assert outage.unreachable.removeprefix("error: ") in lines[1], done.stdout + done.stderr
    assert lines[2:] == ["exited"], done.stdout + done.stderr


LAUNCHED = """
import asyncio
import sys

from miniagents import MiniAgents
from miniagents.ext.dbos import _engine, arecover, durable
from miniagents.ext.llm.offline import offline_agent
from tests.fakes.postgres import PostgresServer

server = PostgresServer(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
answering = offline_agent.fork(alias="LAUNCHED", reply=lambda call: "Done.", token_delay=0)
agent = durable(answering, database_url=server.url(sys.argv[6]))
look = _engine.withdraw_orphans


async def stopped_then_looked(url: str) -> None:
    await asyncio.to_thread(server.stop)  # (the server goes down right after DBOS's launch)
    await look(url)


_engine.withdraw_orphans = stopped_then_looked


async def main() -> None:
    async with MiniAgents():
        await arecover(agent)
        print("launched", flush=True)
        await asyncio.to_thread(server.start)
    print("exited", flush=True)


asyncio.run(main())
"""


def test_a_launch_whose_server_stops_as_it_looks_for_orphaned_approvals_goes_on(
    outage: Outage, tmp_path: Path
) -> None:
    # the launch looked for the approvals of ended runs through DBOS's own listing, which
    # retries a lost connection until the server answers: a server that stopped right after
    # DBOS's launch held the launch for ever (the child's bound here)
    (tmp_path / "program.py").write_text(LAUNCHED)
    done = run_python(["program.py", *outage.args], tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["launched", "exited"], done.stdout + done.stderr
