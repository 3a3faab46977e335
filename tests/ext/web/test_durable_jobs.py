"""A durable app's jobs found by their key: the newest run read alone, not every run of the key.

These tests launch DBOS in the test's process, on a SQLite file, and destroy it at their end.
"""

from __future__ import annotations

import asyncio
import base64
import pickle
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from miniagents import InteractionContext, Message, MiniAgent, MiniAgents, miniagent
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.dbos._approvals import APPROVAL_WORKFLOW, approval_id
from miniagents.ext.llm.offline import CallTool, ScriptedReply, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.web import NoAuthentication, WebSettings, agui_app, ai_sdk_app
from miniagents.ext.web._durable import DurableJobs, PausePoint, _pauses
from miniagents.ext.web._runs import ApprovalDecision, Job, Run, RunManager
from tests.ext.web.serving import (
    SSEEvent,
    SSEReader,
    agui_input,
    answered_chat,
    chat_request,
    event_types,
    gated,
    get_events,
    post_events,
    served,
    until,
)
from tests.fakes.dead_executor import DEAD_EXECUTOR, pending_elsewhere
from tests.fakes.fixtures import WAIT

RUNS = 12
"""The runs of one job's key (its groups: the threads of a run id, the messages of a chat)."""


@miniagent
async def echo(ctx: InteractionContext) -> None:
    """Say what was asked."""
    ctx.reply(f"said: {ctx.message_promises}")


class _Statements:
    """The SQL statements that every engine of the process runs while it counts (those
    that name the table ``of``, if given: DBOS's threads poll the database meanwhile)."""

    def __init__(self, of: str = "") -> None:
        self.count = 0
        self._of = of

    def __call__(self, _connection: object, _cursor: object, statement: str, *_: object) -> None:
        if self._of in statement:
            self.count += 1

    def __enter__(self) -> _Statements:
        sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_: object) -> None:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", self)


async def test_a_job_found_by_its_key_reads_its_newest_run_only(
    tmp_path: Path, destroyed: None
) -> None:
    from dbos import DBOS

    agent = durable(echo.fork(alias="ECHO_JOBS"), database_url=f"sqlite:///{tmp_path / 'r.db'}")
    jobs = DurableJobs.of(agent, "ag-ui")
    assert jobs is not None
    async with MiniAgents():
        for index in range(RUNS):  # one key, a group per run: the last is the newest
            run = jobs.workflow_id("ada", "run-1", f"thread-{index}")
            with workflow_id(run):
                await agent.inquire("Hi")
            # (recorded: the reply comes before DBOS records the run's end, so a find right
            # after it could read the run as pending, and a later one as ended)
            await (await DBOS.retrieve_workflow_async(run)).get_result()
        with workflow_id(jobs.workflow_id("bob", "run-1", "thread-0")):  # another's: not found
            await agent.inquire("Hi")
        every = await jobs.afind_all("ada", key="run-1")
        assert len(every) == RUNS
        with _Statements() as statements:
            found = await jobs.afind("ada", key="run-1")
        assert found is not None
        assert found == every[0]  # the newest
        assert (found.owner, found.key, found.group) == ("ada", "run-1", f"thread-{RUNS - 1}")
        assert found.ended
        # a query of the newest run, and one of its steps: not one of steps per run (main: 13)
        assert statements.count <= 3, statements.count
        with _Statements() as statements:
            exact = await jobs.afind("ada", key="run-1", group="thread-3")
        assert exact is not None
        assert exact.workflow_id == jobs.workflow_id("ada", "run-1", "thread-3")
        assert statements.count <= 3, statements.count
        assert await jobs.afind("ada", key="run-2") is None
        with workflow_id(jobs.workflow_id("ada", "run-2", "thread-0")):
            await agent.inquire("Hi")
        with workflow_id('ag-ui:"ada":["run-2", 7]'):  # newer, but not a job's id: passed over
            await agent.inquire("Hi")
        passed_over = await jobs.afind("ada", key="run-2")
        assert passed_over is not None
        assert passed_over.workflow_id == jobs.workflow_id("ada", "run-2", "thread-0")
        assert await jobs.afind("ada", key="run-1", group="thread-99") is None
        assert (await jobs.afind("bob", key="run-1")) is not None


def _pending_copies(database: Path, of: str, workflow_ids: list[str]) -> None:
    """Record runs ``workflow_ids``, each a copy of the run ``of`` (its input, without its
    steps), and mark them and ``of`` not ended (as runs paused for approvals are)."""
    connection = sqlite3.connect(database)
    try:
        with connection:
            connection.execute(
                "CREATE TEMP TABLE copied AS SELECT * FROM workflow_status WHERE workflow_uuid = ?",
                (of,),
            )
            for copy_id in workflow_ids:
                connection.execute("UPDATE copied SET workflow_uuid = ?", (copy_id,))
                connection.execute("INSERT INTO workflow_status SELECT * FROM copied")
                connection.execute(
                    "INSERT INTO workflow_input SELECT ?, inputs, retention_timestamp "
                    "FROM workflow_input WHERE workflow_uuid = ?",
                    (copy_id, of),
                )
            connection.execute("DROP TABLE copied")
            for pending_id in [of, *workflow_ids]:
                connection.execute(
                    "UPDATE workflow_status SET status = 'PENDING' WHERE workflow_uuid = ?",
                    (pending_id,),
                )
    finally:
        connection.close()


async def test_a_threads_new_run_reads_the_steps_of_that_threads_runs_only(
    tmp_path: Path, destroyed: None
) -> None:
    """An AG-UI start abandons its thread's unended runs: with the principal's unended runs
    of 10 other threads, or of 1,000, it reads the steps of its thread's run only (it read
    each run's steps, of every thread: a statement per run, 11 and 1,001)."""
    from dbos import DBOS

    database = tmp_path / "r.db"
    agent = durable(echo.fork(alias="ECHO_THREADS"), database_url=f"sqlite:///{database}")
    jobs = DurableJobs.of(agent, "ag-ui")
    assert jobs is not None
    made = 1

    async def statements_per_start(others: int) -> int:
        nonlocal made
        copies = [jobs.workflow_id("ada", f"run-{n}", f"thread-{n}") for n in range(made, others)]
        made = others
        waiting = jobs.workflow_id("ada", f"run-x{others}", "thread-x")
        with workflow_id(waiting):
            await agent.inquire("Hi")
        await (await DBOS.retrieve_workflow_async(waiting)).get_result()  # (recorded)
        _pending_copies(database, waiting, copies)
        with _Statements("operation_outputs") as statements:  # (a run's steps)
            await jobs.aabandon_all("ada", group="thread-x")
        [found] = await jobs.afind_all("ada", key=f"run-x{others}")
        assert (found.workflow_id, found.cancelled) == (waiting, True)
        assert not (await jobs.afind_all("ada", group="thread-0"))[0].ended
        assert len(await jobs.afind_all("ada", running_only=True)) == others
        return statements.count

    async with MiniAgents():
        first = jobs.workflow_id("ada", "run-0", "thread-0")
        with workflow_id(first):
            await agent.inquire("Hi")
        await (await DBOS.retrieve_workflow_async(first)).get_result()
        _pending_copies(database, first, [])
        few = await statements_per_start(10)
        many = await statements_per_start(1_000)
    assert few == many == 1, (few, many)


def _requeued_elsewhere(database: Path, workflow_id: str, *, waiting: bool) -> None:
    """Mark the run ``workflow_id`` as DBOS's recovery leaves a dead executor's run until a
    live one dequeues it (``ENQUEUED``, the dead one's executor id), with an approval of it
    that waits too if ``waiting`` (a copy of the run's row, named as approvals are, with
    the input an approval records: its run's id and its call's key first, by which it is
    read as that run's)."""
    connection = sqlite3.connect(database)
    try:
        with connection:
            connection.execute(
                "UPDATE workflow_status SET status = 'ENQUEUED', executor_id = 'dead-server' "
                "WHERE workflow_uuid = ?",
                (workflow_id,),
            )
            if waiting:
                connection.execute(
                    "CREATE TEMP TABLE copied AS SELECT * FROM workflow_status "
                    "WHERE workflow_uuid = ?",
                    (workflow_id,),
                )
                approval = approval_id(workflow_id, "/tool.k1")
                connection.execute(
                    "UPDATE copied SET workflow_uuid = ?, name = ?", (approval, APPROVAL_WORKFLOW)
                )
                connection.execute("INSERT INTO workflow_status SELECT * FROM copied")
                connection.execute("DROP TABLE copied")
                inputs: dict[str, object] = {
                    "args": (workflow_id, "/tool.k1", "remove", "k1", {}),
                    "kwargs": {},
                }
                connection.execute(  # (as DBOS records inputs: pickled, in base64)
                    "INSERT INTO workflow_input SELECT ?, ?, retention_timestamp "
                    "FROM workflow_input WHERE workflow_uuid = ?",
                    (approval, base64.b64encode(pickle.dumps(inputs)).decode(), workflow_id),
                )
    finally:
        connection.close()


async def test_a_new_turn_gives_up_a_run_requeued_from_a_dead_server_that_waits_for_a_decision(
    tmp_path: Path, destroyed: None
) -> None:
    """A run of a dead executor that DBOS's recovery queued again keeps that executor's id
    until a live one dequeues it: a new turn of its thread gives it up if it waits for a
    decision (it was paused: the new turn replaces it), and leaves it to run on if not (a
    streaming one, which the live executor that dequeues it runs to its end). (It was
    skipped either way: the new turn gave up this executor's runs only, so the paused one
    was run on, and waited to be resumed, after the turn that replaced it.)"""
    from dbos import DBOS

    database = tmp_path / "r.db"
    agent = durable(echo.fork(alias="ECHO_REQUEUED"), database_url=f"sqlite:///{database}")
    jobs = DurableJobs.of(agent, "ag-ui")
    assert jobs is not None
    async with MiniAgents():
        paused = jobs.workflow_id("ada", "run-1", "thread-1")
        streaming = jobs.workflow_id("ada", "run-2", "thread-1")
        for run in (paused, streaming):
            with workflow_id(run):
                await agent.inquire("Hi")
            await (await DBOS.retrieve_workflow_async(run)).get_result()  # (recorded)
        _requeued_elsewhere(database, paused, waiting=True)
        _requeued_elsewhere(database, streaming, waiting=False)
        found = {run.workflow_id: run for run in await jobs.afind_all("ada", group="thread-1")}
        assert [(found[run].here, found[run].waiting) for run in (paused, streaming)] == [
            (False, True),
            (False, False),
        ]
        await jobs.aabandon_all("ada", group="thread-1", paused_elsewhere=True)
        found = {run.workflow_id: run for run in await jobs.afind_all("ada", group="thread-1")}
    assert found[paused].cancelled
    assert not found[streaming].ended  # left to the live executor that dequeues it


async def _held_by_dead_server(tmp_path: Path, alias: str, *, elsewhere_timeout: float) -> ASGIApp:
    """An AG-UI app of a durable agent ``alias`` whose run ``r1`` (of the thread ``t1``) a
    dead server's DBOS executor holds pending (a SQLite database in ``tmp_path``)."""
    database = f"sqlite:///{tmp_path / 'r.db'}"
    agent = durable(
        echo.fork(alias=alias), database_url=database, elsewhere_timeout=elsewhere_timeout
    )
    jobs = DurableJobs.of(agent, "ag-ui")
    assert jobs is not None
    async with MiniAgents():
        with workflow_id("seed"):
            await agent.inquire("Hi")
    pending_elsewhere(database, "seed", jobs.workflow_id(None, "r1", "t1"))
    # (its client gets the error as written, which names the executor)
    settings = WebSettings(error_texts=True)
    return agui_app(agent, authentication=NoAuthentication(), settings=settings)


async def test_a_follow_of_a_run_pending_on_a_dead_server_answers_within_the_agents_bound(
    tmp_path: Path, destroyed: None
) -> None:
    """A follow (``GET /runs/{runId}``) of a run that a dead server's DBOS executor holds
    pending answers once the durable agent's ``elsewhere_timeout`` has passed, with the
    error that names that executor. (It waited ``replay``'s own 300 s, whatever the agent
    said: the app's replay did not follow the agent's setting, and had none of its own.)"""
    app = await _held_by_dead_server(tmp_path, "ECHO_DEAD", elsewhere_timeout=0.5)
    async with served(app) as client:
        # (a hang guard only: the answer comes after the agent's 0.5 s)
        response, events = await asyncio.wait_for(get_events(client, "/runs/r1"), 60)
    assert response.status_code == 200
    assert event_types(events) == ["RUN_STARTED", "RUN_ERROR"]
    assert f"DBOS executor '{DEAD_EXECUTOR}'" in events[-1].json["message"]
    assert "within 0.5 seconds" in events[-1].json["message"]


def _db_waits() -> set[asyncio.Task[object]]:
    """The tasks that wait for a durable run's end in the database (DBOS polls it)."""
    names = ("_ended_elsewhere", "get_result_async")
    return {
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__name__", "") in names and not task.done()
    }


async def test_an_app_stopped_during_a_wait_for_a_run_elsewhere_leaves_no_poll_of_dbos(
    tmp_path: Path, destroyed: None
) -> None:
    """An app stopped while a follow waits for a run another server's executor holds ends
    that wait with the app: its poll of the database is cancelled, so that DBOS, destroyed
    after, finds nothing of it running. (Its poll outlived the app, and failed once DBOS was
    destroyed: ``RuntimeError: cannot schedule new futures after shutdown``.)"""
    from dbos import DBOS

    app = await _held_by_dead_server(tmp_path, "ECHO_STOPPED", elsewhere_timeout=600)
    async with served(app) as client, client.stream("GET", "/runs/r1") as response:
        opened = await asyncio.wait_for(SSEReader(response).next(), WAIT)
        assert opened is not None
        assert opened.type == "RUN_STARTED"
        await until(lambda: bool(_db_waits()))  # (the wait is open when the app stops)
    left = [task for task in _db_waits() if not task.cancelling()]
    assert not left, left  # each ended, or ending as cancelled, with the app
    waits = _db_waits()
    DBOS.destroy(destroy_registry=False)
    ended = await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), WAIT)
    assert all(isinstance(end, asyncio.CancelledError) for end in ended), ended


async def test_a_follow_of_a_run_elsewhere_ends_with_the_servers_stop_not_a_bare_close(
    tmp_path: Path, destroyed: None
) -> None:
    """A client follows a run another server's executor holds, and this server stops (a
    shutdown, as a signal starts it): its stream ends with ``RUN_ERROR`` of code
    ``WebServerStoppedError``, saying the run goes on and is read again with its
    ``Last-Event-ID``. (Its stream closed right after ``RUN_STARTED``, with no ending: the
    client could not tell a stopped server from a lost connection, nor that it may read on.)"""
    app = await _held_by_dead_server(tmp_path, "ECHO_SERVER_STOPS", elsewhere_timeout=600)
    stop = asyncio.Event()
    async with served(app, stop=stop) as client, client.stream("GET", "/runs/r1") as response:
        reader = SSEReader(response)
        opened = await asyncio.wait_for(reader.next(), WAIT)
        assert opened is not None
        assert opened.type == "RUN_STARTED"
        await until(lambda: bool(_db_waits()))  # (it waits for the run elsewhere)
        stop.set()
        rest = await asyncio.wait_for(reader.rest(), WAIT)
    assert event_types(rest) == ["RUN_ERROR"]
    ending = rest[0].json
    assert ending["code"] == "WebServerStoppedError"
    assert "server stopped" in ending["message"]
    assert "Last-Event-ID" in ending["message"]


async def test_a_jobs_key_is_found_in_its_own_case_only(tmp_path: Path, destroyed: None) -> None:
    """A job's key differs from another's in case only (run ids ``r1`` and ``R1``): each
    finds its own runs, never the other's. (SQLite's ``LIKE`` ignores the case of ASCII
    letters, so the prefix of ``R1``'s runs selected ``r1``'s, and the app took them for
    ``R1``'s: a follow of ``R1`` replayed ``r1``, a new ``R1`` gave ``r1``'s runs up.)"""
    from dbos import DBOS

    agent = durable(echo.fork(alias="ECHO_CASE"), database_url=f"sqlite:///{tmp_path / 'r.db'}")
    jobs = DurableJobs.of(agent, "ag-ui")
    assert jobs is not None
    async with MiniAgents():
        run = jobs.workflow_id("ada", "r1", "t1")
        with workflow_id(run):
            await agent.inquire("Hi")
        await (await DBOS.retrieve_workflow_async(run)).get_result()  # (recorded)
        found = await jobs.afind("ada", key="r1")
        assert found is not None
        assert found.workflow_id == run
        assert await jobs.afind("ada", key="R1") is None
        assert await jobs.afind("ada", key="R1", group="t1") is None
        assert await jobs.afind_all("ada", key="R1") == []
        assert await jobs.afind("Ada", key="r1") is None  # (another principal: never)


def _remove(name: str) -> str:
    """Remove a file (pretend): it waits for a person's approval."""
    return f"removed {name}"


async def test_a_pause_is_told_once_its_approval_is_in_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destroyed: None
) -> None:
    """A durable run that pauses for an approval tells its client only once the approval is
    in its database: a client that acts on the pause at once (another server's new run of
    the thread, ``apending_approvals``) finds the run waiting. (The pause was told as the
    call asked, before its approval was written: `apending_approvals` listed nothing, and a
    new run of the thread on another server left the run pending, unreplaced.)"""
    import miniagents.ext.dbos
    from miniagents.ext.dbos import _approvals
    from miniagents.ext.dbos.approvals import apending_approvals

    database = f"sqlite:///{tmp_path / 'r.db'}"
    tool = FunctionTool(_remove, requires_approval=True)
    script = one_per_call(CallTool("_remove", {"name": "a.txt"}), "Done.")
    agent = durable(
        offline_agent.fork(alias="PAUSED_TOLD", tools=[tool], reply=script, token_delay=0),
        database_url=database,
    )
    release, opening = asyncio.Event(), asyncio.Event()
    real_started, real_open = _approvals._started, miniagents.ext.dbos.aapprovals_open

    async def held_start(*args: Any) -> bool:
        opening.set()
        await release.wait()  # (a slow database write: the approval not in it meanwhile)
        return await real_started(*args)

    async def waited_for(*args: Any, **kwargs: Any) -> bool:
        release.set()  # (the server waits for the approval: it may start now)
        return await real_open(*args, **kwargs)

    monkeypatch.setattr(_approvals, "_started", held_start)
    monkeypatch.setattr(miniagents.ext.dbos, "aapprovals_open", waited_for)
    async with served(agui_app(agent, authentication=NoAuthentication())) as client:
        async with client.stream("POST", "/", json=agui_input("r1", thread="t1")) as response:
            events = await asyncio.wait_for(SSEReader(response).rest(), WAIT)
            listed = await apending_approvals(database_url=database)  # (at once)
        release.set()  # (had the pause been told first: the approval goes on now)
    assert opening.is_set()
    assert events[-1].json["outcome"]["type"] == "interrupt"
    assert [(pending.workflow_id, pending.call_id) for pending in listed] == [
        ('ag-ui:["r1", "t1"]', "offline_call_1")
    ]


Meanwhile = Callable[[MiniAgent[..., Message], str, ToolApprovalRequest], Awaitable[None]]
"""What changes a paused run from outside its server: given its agent, its workflow id and
the request of the call it waits on; it returns once the run here has seen the change."""


@asynccontextmanager
async def _paused_here(
    tmp_path: Path, protocol: str, alias: str, calls: ScriptedReply
) -> AsyncIterator[tuple[httpx.AsyncClient, list[SSEEvent], Job]]:
    """A durable run of ``protocol`` paused here at the approval of ``calls`` (of ``_remove``,
    on the database ``r.db`` of ``tmp_path``): its client, its events and its job."""
    tool = FunctionTool(_remove, requires_approval=True)
    agent = durable(
        offline_agent.fork(
            alias=alias, tools=[tool], reply=one_per_call(calls, "Done."), token_delay=0
        ),
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
    )
    app_of = agui_app if protocol == "ag-ui" else ai_sdk_app
    app = app_of(agent, authentication=NoAuthentication())
    async with served(app) as client:
        first = agui_input("r1", thread="t1") if protocol == "ag-ui" else chat_request("c1")
        _, paused = await post_events(client, first)
        manager: RunManager = app.state.runs
        job = manager.paused("t1" if protocol == "ag-ui" else "c1")
        assert job is not None
        assert job.workflow_id is not None
        yield client, paused, job


async def _resumed_after(
    tmp_path: Path, protocol: str, alias: str, meanwhile: Meanwhile, *, approved: bool
) -> tuple[httpx.Response, list[SSEEvent]]:
    """The resume (deciding the call ``approved``) of a durable run of ``protocol``, paused
    here at ``_remove``'s approval, sent once ``meanwhile`` changed the run: its answer and
    its events."""
    call = CallTool("_remove", {"name": "a.txt"})
    async with _paused_here(tmp_path, protocol, alias, call) as (client, paused, job):
        [asked] = job.waiting()
        assert job.workflow_id is not None
        await meanwhile(job.manager.agent, job.workflow_id, asked)
        if protocol == "ag-ui":
            entry = {"interruptId": asked.call_id, "status": "resolved"}
            resume = agui_input(
                "r2", thread="t1", resume=[{**entry, "payload": {"approved": approved}}]
            )
        else:
            resume = answered_chat(paused, {"approved": approved}, text="Hi")
        return await post_events(client, resume)


@pytest.mark.parametrize("protocol", ["ag-ui", "ai-sdk"])
async def test_a_resume_of_a_run_cancelled_while_it_was_paused_streams_its_cancelled_end(
    tmp_path: Path, destroyed: None, protocol: str
) -> None:
    """A durable run paused here for an approval is cancelled meanwhile (``acancel_run``: a
    new run of its thread on another server, an operator), which stops its agent here and
    withdraws the call; the late resume of the pause gets the run's end, cancelled, and
    the call does not run. (Was: the call, withdrawn, refused the resume with a 409
    ``not_pending``; then, resumed, the run ended with the error of the tool's result, a
    plain ``StreamCancelledError``, told as a failure.)"""
    from miniagents.ext.dbos import acancel_run

    async def cancelled(
        agent: MiniAgent[..., Message], run: str, asked: ToolApprovalRequest
    ) -> None:
        await acancel_run(agent, run)
        await until(lambda: asked.withdrawn)  # (its agent stopped here: the call waits no more)

    alias = f"CANCELLED_PAUSED_{protocol.replace('-', '_').upper()}"
    response, ended = await _resumed_after(tmp_path, protocol, alias, cancelled, approved=True)
    assert response.status_code == 200  # (was: 409, not_pending)
    last = next(event.json for event in reversed(ended) if event.data != "[DONE]")
    if protocol == "ag-ui":
        assert last == {
            "type": "RUN_FINISHED",
            "threadId": "t1",
            "runId": "r2",
            "outcome": {"type": "cancelled"},
        }, ended
    else:
        assert last["type"] == "abort", ended  # (AI SDK's cancelled end)
    assert "removed a.txt" not in "".join(event.data for event in ended)  # (did not run)


@pytest.mark.parametrize("protocol", ["ag-ui", "ai-sdk"])
async def test_a_paused_run_whose_call_is_decided_elsewhere_is_resumed_with_the_rest(
    tmp_path: Path, destroyed: None, protocol: str
) -> None:
    """A durable run paused here for an approval whose call is decided elsewhere
    (``aapprove`` of another process, or DBOS's API) goes on with that decision; the resume
    of the pause then streams the rest of the run, the call's result as it was decided
    there. (Was: the resume was refused with a 409 ``not_pending``, and the run's rest was
    never streamed.)"""
    from miniagents.ext.dbos import aapprove

    async def approved_elsewhere(
        agent: MiniAgent[..., Message], run: str, asked: ToolApprovalRequest
    ) -> None:
        database = f"sqlite:///{tmp_path / 'r.db'}"
        await aapprove(run, asked.call_id, database_url=database, decided_by="elsewhere")
        await until(lambda: not asked.pending)  # (the run reads the decision, here)

    alias = f"DECIDED_ELSEWHERE_{protocol.replace('-', '_').upper()}"
    response, ended = await _resumed_after(
        tmp_path, protocol, alias, approved_elsewhere, approved=False
    )
    assert response.status_code == 200, ended  # (was: 409, not_pending)
    streamed = "".join(event.data for event in ended)
    assert "removed a.txt" in streamed  # (approved elsewhere: it ran, the late denial unsent)
    assert "Done." in streamed


@asynccontextmanager
async def _unread_after_expiry(
    tmp_path: Path, alias: str, *later: ScriptedReply | str
) -> AsyncIterator[tuple[RunManager, Job, asyncio.Event, list[str], httpx.AsyncClient]]:
    """A durable AG-UI run (thread ``t1``, ``keep_runs_for=60``) paused here at the approval
    of ``_remove_slowly`` (``a.txt``), which is approved elsewhere (``aapprove`` of another
    process): its tool runs, held until the gate yielded is set, and the pause expires (on
    the virtual clock), its job going on unread. ``later``: the model's turns after that
    call's. Yields the app's runs, the job, the gate, the names removed so far and the
    app's client."""
    from miniagents.ext.dbos import aapprove
    from miniagents.testing import virtual_time

    database = f"sqlite:///{tmp_path / 'r.db'}"
    running, gate = asyncio.Event(), asyncio.Event()
    removed: list[str] = []

    async def _remove_slowly(name: str) -> str:
        """Remove a file (pretend), slowly: it waits for a person's approval."""
        running.set()
        await gate.wait()
        removed.append(name)
        return f"removed {name}"

    tools = [
        FunctionTool(_remove_slowly, requires_approval=True),
        FunctionTool(_remove, requires_approval=True),
    ]
    script = one_per_call(CallTool("_remove_slowly", {"name": "a.txt"}), *later)
    agent = durable(
        offline_agent.fork(alias=alias, tools=tools, reply=script, token_delay=0),
        database_url=database,
    )
    app = agui_app(agent, authentication=NoAuthentication(), settings=WebSettings(keep_runs_for=60))
    async with served(app) as client:
        await post_events(client, agui_input("r1", thread="t1"))
        manager: RunManager = app.state.runs
        job = manager.paused("t1")
        assert job is not None
        assert job.task is not None
        assert job.workflow_id is not None
        [asked] = job.waiting()
        await aapprove(job.workflow_id, asked.call_id, database_url=database, decided_by="there")
        await asyncio.wait_for(running.wait(), WAIT)  # (the run went on: its tool runs)
        with virtual_time():  # (the job's wait expires, on the virtual clock)
            await asyncio.sleep(61)
        assert manager.paused("t1") is None  # (forgotten as paused: it goes on unread)
        yield manager, job, gate, removed, client


async def _resumed_at_its_next_pause(
    job: Job, gate: asyncio.Event, client: httpx.AsyncClient
) -> tuple[ToolApprovalRequest, list[SSEEvent]]:
    """Let the unread ``job`` (:func:`_unread_after_expiry`'s) go on past its gate to its next
    pause, approve that call in a resume run ``r2`` and wait for the job's end: the call it
    paused at, and the events ``r2`` streamed."""
    assert job.task is not None
    gate.set()
    await asyncio.wait_for(job.asettled(), WAIT)  # (its second round: it pauses again)
    [second] = job.waiting()
    entry = {"interruptId": second.call_id, "status": "resolved"}
    resume = agui_input("r2", thread="t1", resume=[{**entry, "payload": {"approved": True}}])
    response, resumed = await post_events(client, resume)
    assert response.status_code == 200, resumed
    await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
    return second, resumed


async def _acancelled(agent: MiniAgent[..., Message], run: str) -> None:
    """Wait for the durable run ``run`` of ``agent`` to end cancelled (a bound: WAIT)."""
    from dbos import DBOS
    from dbos._error import DBOSAwaitedWorkflowCancelledError

    from miniagents.ext.dbos import afind_runs

    with pytest.raises(DBOSAwaitedWorkflowCancelledError):  # (its cancel, spawned, lands)
        await asyncio.wait_for((await DBOS.retrieve_workflow_async(run)).get_result(), WAIT)
    [info] = await afind_runs(agent, run)
    assert info.cancelled


async def test_a_paused_run_decided_elsewhere_outlives_its_expired_job(
    tmp_path: Path, destroyed: None
) -> None:
    """A durable run paused here for an approval whose call is decided elsewhere goes on;
    nobody resumes the pause here, and the job's wait expires (``keep_runs_for``) while the
    run still runs: the server forgets the job, and the run goes on to its end, the durable
    engine's now. (Was: the expiry cancelled the durable run, ``acancel_run``, mid-way.)"""
    from miniagents.ext.dbos import afind_runs

    async with _unread_after_expiry(tmp_path, "EXPIRED_ELSEWHERE", "Done.") as unread:
        manager, job, gate, _, _ = unread
        assert job.task is not None
        assert job.workflow_id is not None
        gate.set()
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        [info] = await afind_runs(manager.agent, job.workflow_id)
        assert info.ended
        assert not info.cancelled  # (was: cancelled by the job's expiry, mid-way)


def _resume_of(
    protocol: str, paused: list[SSEEvent], asked: list[ToolApprovalRequest]
) -> dict[str, Any]:
    """The protocol's resume of the pause in ``paused`` that approves the calls ``asked``."""
    if protocol == "ag-ui":
        entries = [
            {"interruptId": each.call_id, "status": "resolved", "payload": {"approved": True}}
            for each in asked
        ]
        return agui_input("r2", thread="t1", resume=entries)
    data = [event.json for event in paused if event.data != "[DONE]"]
    inputs = {e["toolCallId"]: e for e in data if e["type"] == "tool-input-available"}
    approvals = {
        e["toolCallId"]: e["approvalId"] for e in data if e["type"] == "tool-approval-request"
    }
    parts = [
        {
            "type": f"tool-{inputs[each.call_id]['toolName']}",
            "toolCallId": each.call_id,
            "state": "approval-responded",
            "input": inputs[each.call_id]["input"],
            "approval": {"id": approvals[each.call_id], "approved": True},
        }
        for each in asked
    ]
    assistant_message = {"id": data[0]["messageId"], "role": "assistant", "parts": parts}
    [user] = chat_request("c1", text="Hi")["messages"]
    return chat_request("c1", messages=[user, assistant_message])


@pytest.mark.parametrize("when", ["before", "noting"])
@pytest.mark.parametrize("protocol", ["ag-ui", "ai-sdk"])
async def test_a_resume_deciding_a_call_decided_elsewhere_names_the_calls_to_decide(
    tmp_path: Path, destroyed: None, protocol: str, when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A durable run paused here at two calls, one of them decided elsewhere (``aapprove``
    of another process) before the resume that decides both, or while that resume notes the
    run's pause in its database (its decisions read, both pending): the resume is refused,
    its message naming the call decided already and the one to decide, and the resume that
    decides that one only gets the rest of the run, both calls run. The refused resume
    leaves no note of the pause: none written if the call was decided before, the note
    withdrawn if decided as it was written. (Was: a bare "is not waiting for a decision any
    more" that did not say to send the others' decisions only; decided while the pause was
    noted, until stop 97; the refused resume's note, until stop 98, named a run that never
    went on, which a restart replayed into.)"""
    from miniagents.ext.dbos import aapprove

    database = f"sqlite:///{tmp_path / 'r.db'}"
    calls = [CallTool("_remove", {"name": "a.txt"}), CallTool("_remove", {"name": "b.txt"})]
    alias = f"PARTLY_ELSEWHERE_{protocol.replace('-', '_').upper()}_{when.upper()}"
    async with _paused_here(tmp_path, protocol, alias, calls) as (client, paused, job):
        workflow = job.workflow_id
        assert workflow is not None
        elsewhere, here = job.waiting()

        async def adecide_elsewhere() -> None:
            await aapprove(workflow, elsewhere.call_id, database_url=database)
            await until(lambda: not elsewhere.pending)  # (the run reads the decision, here)

        if when == "before":
            await adecide_elsewhere()
        else:
            note_pause = DurableJobs.anote_pause

            async def anote_pause(jobs: DurableJobs, *args: Any, **kwargs: Any) -> None:
                await note_pause(jobs, *args, **kwargs)
                monkeypatch.undo()  # (once)
                await adecide_elsewhere()

            monkeypatch.setattr(DurableJobs, "anote_pause", anote_pause)
        refused = await client.post("/", json=_resume_of(protocol, paused, [elsewhere, here]))
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "not_pending"
        assert error["message"] == (
            "These calls of the paused run were decided already, elsewhere (a call's first "
            f"decision holds): {elsewhere.call_id!r}. Send the resume again with the "
            f"decisions of the calls still waiting only: {here.call_id!r}."
        )
        durable_jobs = job.manager.durable
        assert durable_jobs is not None
        found = await durable_jobs.afind(None, key="r1" if protocol == "ag-ui" else "c1")
        assert found is not None
        assert found.pauses == ()  # (was: the refused resume's run noted, never gone on in)
        assert found.lost_pauses == (0 if when == "before" else 1)  # (before: none written)
        response, ended = await post_events(client, _resume_of(protocol, paused, [here]))
    assert response.status_code == 200, ended
    streamed = "".join(event.data for event in ended)
    assert "removed a.txt" in streamed
    assert "removed b.txt" in streamed
    assert "Done." in streamed


@pytest.mark.parametrize("protocol", ["ag-ui", "ai-sdk"])
async def test_a_resume_whose_calls_are_all_decided_elsewhere_as_it_notes_streams_the_rest(
    tmp_path: Path, destroyed: None, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A durable run paused here at a call that is decided elsewhere (``aapprove`` of
    another process) while the resume that decides it notes the run's pause in its
    database: the resume gets the rest of the run, the call's result as it was decided
    there, as a resume sent after that decision does. (Was: a plain 409 ``not_pending``
    naming the call, and the rest of the run was never streamed.)"""
    from miniagents.ext.dbos import aapprove

    call = CallTool("_remove", {"name": "a.txt"})
    alias = f"ALL_ELSEWHERE_NOTING_{protocol.replace('-', '_').upper()}"
    async with _paused_here(tmp_path, protocol, alias, call) as (client, paused, job):
        workflow = job.workflow_id
        assert workflow is not None
        [asked] = job.waiting()
        note_pause = DurableJobs.anote_pause

        async def anote_pause(jobs: DurableJobs, *args: Any, **kwargs: Any) -> None:
            await note_pause(jobs, *args, **kwargs)
            monkeypatch.undo()  # (once)
            database = f"sqlite:///{tmp_path / 'r.db'}"
            await aapprove(workflow, asked.call_id, database_url=database, decided_by="there")
            await until(lambda: not asked.pending)  # (the run reads the decision, here)

        monkeypatch.setattr(DurableJobs, "anote_pause", anote_pause)
        denied = _resume_of(protocol, paused, [asked])
        if protocol == "ag-ui":
            denied["resume"][0]["payload"] = {"approved": False}
        response, ended = await post_events(client, denied)
    assert response.status_code == 200, ended  # (was: 409, not_pending)
    streamed = "".join(event.data for event in ended)
    assert "removed a.txt" in streamed  # (approved there: it ran, the late denial unsent)
    assert "Done." in streamed


async def test_an_unread_job_paused_again_waits_under_its_pause_key_until_its_new_expiry(
    tmp_path: Path, destroyed: None
) -> None:
    """A durable run paused here for an approval decided elsewhere outlives its pause's
    expiry, its job going on unread; at a later approval round it pauses again: it waits
    under its thread's key as any pause does, for ``keep_runs_for`` from that pause, and
    nobody resuming it, the new expiry cancels the job and its durable run (the call
    withdrawn undecided: it never runs)."""
    from miniagents.testing import virtual_time

    later = CallTool("_remove", {"name": "b.txt"})
    async with _unread_after_expiry(tmp_path, "PAUSED_AGAIN_UNREAD", later, "Done.") as unread:
        manager, job, gate, removed, _ = unread
        assert job.task is not None
        assert job.workflow_id is not None
        gate.set()
        await asyncio.wait_for(job.asettled(), WAIT)  # (its second round: it pauses again)
        assert manager.paused("t1") is job
        [second] = job.waiting()
        assert job.last_pause is not None
        assert job.last_pause.at == second.call_id
        assert removed == ["a.txt"]
        with virtual_time():  # (59 s after its second pause: it still waits there)
            await asyncio.sleep(59)
        assert manager.paused("t1") is job
        with virtual_time():  # (past keep_runs_for from its second pause: cancelled)
            await asyncio.sleep(2)
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        assert manager.paused("t1") is None
        assert second.withdrawn  # (it never ran)
        await _acancelled(manager.agent, job.workflow_id)


async def test_an_unread_job_resumed_at_its_next_pause_is_replayed_with_both_pauses(
    tmp_path: Path, destroyed: None
) -> None:
    """A durable run paused here for an approval decided elsewhere outlives its pause's
    expiry, its job going on unread; it pauses again, and a resume goes on from there: its
    run, read after a restart, pauses where it paused, both times, and the run of the
    resume keeps its events' numbers. (Was: the first pause, expired, was never noted with
    the run, and the resume's note, the second, was not read past the missing first: the
    replay found no pause, and the resume's run was unknown after a restart.)"""
    later = CallTool("_remove", {"name": "b.txt"})
    async with _unread_after_expiry(tmp_path, "UNREAD_RESUMED", later, "Done.") as unread:
        manager, job, gate, _, client = unread
        assert job.task is not None
        assert job.last_pause is not None
        first = job.last_pause.at  # (its expired pause)
        second, resumed = await _resumed_at_its_next_pause(job, gate, client)
    assert manager.durable is not None
    found = await manager.durable.afind(None, key="r1")
    assert found is not None
    assert [point.at for point in found.pauses] == [first, second.call_id]
    again = agui_app(manager.agent, authentication=NoAuthentication())  # (a restart)
    async with served(again) as client:
        response, replayed = await get_events(client, "/runs/r2")
    assert response.status_code == 200, replayed
    assert [(event.id, event.type) for event in replayed] == [
        (event.id, event.type) for event in resumed
    ]
    assert "Done." in "".join(event.data for event in replayed)


@pytest.mark.parametrize("cancel", ["lands", "hangs"])
async def test_an_app_that_stops_waits_for_the_cancel_of_a_run_given_up_on_just_before(
    cancel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A durable run given up on (its client left, its pause expired, a new turn replaced
    it) just before the app stops: the app's stop waits for the cancel of the durable run
    to be written (``lands``), and no more than ``STOP_WRITES_GRACE`` seconds, then cancels
    it (``hangs``: the run is recovered at the next start). (Was: the stop waited for the
    jobs' tasks only, and the cancel, a task of the app's, was cut off: the run given up on
    was recovered at the next start.)"""
    import miniagents.ext.dbos as dbos
    from miniagents.ext.web._durable import STOP_WRITES_GRACE
    from miniagents.testing import virtual_time

    written, cut = [], []
    landing = asyncio.Event()

    async def acancel_run(agent: MiniAgent[..., Message], workflow_id: str) -> None:
        try:
            await landing.wait()  # (the database's write, as long as the test says)
        except asyncio.CancelledError:
            cut.append(workflow_id)
            raise
        written.append(workflow_id)

    monkeypatch.setattr(dbos, "acancel_run", acancel_run)
    app = agui_app(echo, authentication=NoAuthentication())
    manager: RunManager = app.state.runs
    manager.durable = DurableJobs(echo, "ag-ui")
    manager.durable.abandon("run-1")  # (given up on, just before the app stops)
    loop = asyncio.get_running_loop()
    with virtual_time():
        start = loop.time()
        if cancel == "lands":
            loop.call_later(STOP_WRITES_GRACE / 2, landing.set)
        await manager.aclose()
        waited = loop.time() - start
    if cancel == "lands":
        assert (written, cut) == (["run-1"], [])  # (was: [], [] as the stop returned)
        assert waited == pytest.approx(STOP_WRITES_GRACE / 2)
    else:
        assert (written, cut) == ([], ["run-1"])
        assert waited == pytest.approx(STOP_WRITES_GRACE)


async def test_a_durable_run_paused_here_whose_pause_expires_is_cancelled(
    tmp_path: Path, destroyed: None
) -> None:
    """A durable run paused here for an approval that nobody decides: its pause expires
    (``keep_runs_for``), and the run is cancelled, its durable run too (not recovered at the
    next start). (Was: the job here was cancelled, but the cancel of its durable run, a task
    of the job's own ``MiniAgents`` block, which its expiry's timer ran in, was cancelled by
    that block's exit before it started: the run stayed waiting in the database.)"""
    from miniagents.testing import virtual_time

    call = CallTool("_remove", {"name": "a.txt"})
    async with _paused_here(tmp_path, "ag-ui", "EXPIRED_HERE", call) as (_, _, job):
        assert job.task is not None
        assert job.workflow_id is not None
        with virtual_time():  # (its pause expires, keep_runs_for: 300 s, on the virtual clock)
            await asyncio.sleep(301)
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        assert job.manager.paused("t1") is None
        await _acancelled(job.manager.agent, job.workflow_id)


async def test_a_durable_run_cut_past_max_live_run_bytes_is_cancelled(
    tmp_path: Path, destroyed: None
) -> None:
    """A durable run whose events grow past ``max_live_run_bytes`` is cut, its client told
    so, and its durable run is cancelled (not recovered at the next start). (Was: the cancel
    of its durable run, a task of the job's own ``MiniAgents`` block, which the cut ran in,
    was cancelled by that block's exit before it started.)"""
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    for _ in range(100):  # (then it waits for more: its run is cut meanwhile)
        tokens.put_nowait("x" * 100)
    agent = durable(
        gated(tokens).fork(alias="CUT_DURABLE"), database_url=f"sqlite:///{tmp_path / 'r.db'}"
    )
    settings = WebSettings(max_live_run_bytes=5_000)
    app = agui_app(agent, authentication=NoAuthentication(), settings=settings)
    async with served(app) as client:
        _, events = await post_events(client, agui_input("r1", thread="t1"))
        assert events[-1].type == "RUN_ERROR", events[-1]
        assert "was cut" in events[-1].json["message"]
        manager: RunManager = app.state.runs
        job = manager.job("r1")
        assert job is not None
        assert job.task is not None
        run = job.workflow_id
        assert run is not None
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        await _acancelled(agent, run)


Notes = list[tuple[int, str]]
"""The pause notes a test saw written: each its index and the run it names."""


def _held_notes(
    monkeypatch: pytest.MonkeyPatch, *, fails: bool = False
) -> tuple[Notes, asyncio.Event, asyncio.Event]:
    """Hold the first pause note's write (``DurableJobs.anote_pause``) until released.

    Returns the notes seen (each at its write's start), the event set once the first is
    held and the one that releases it; ``fails``: the first write fails then, unwritten.
    """
    from miniagents.ext.dbos import DurableDatabaseError

    notes: Notes = []
    holding, release = asyncio.Event(), asyncio.Event()
    note_pause = DurableJobs.anote_pause

    async def anote_pause(
        jobs: DurableJobs, owner: str | None, run: str, index: int, point: PausePoint, **kw: bool
    ) -> None:
        notes.append((index, point.run))
        if not holding.is_set():  # (the first: held, a slow database's write)
            holding.set()
            await release.wait()
            if fails:
                raise DurableDatabaseError("The database is down (a test's).")
        await note_pause(jobs, owner, run, index, point, **kw)

    monkeypatch.setattr(DurableJobs, "anote_pause", anote_pause)
    return notes, holding, release


_MEANWHILE = ["resume", "expiry", "expiry of a run that went on"]


@pytest.mark.parametrize("meanwhile", _MEANWHILE)
async def test_a_pause_is_noted_once_by_the_resume_that_took_it_first(
    tmp_path: Path, destroyed: None, meanwhile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A durable run paused here is resumed (``r2``), and while that resume's note of the
    pause is written, another resume (``r3``) comes, or the pause's expiry
    (``keep_runs_for``, on the virtual clock; for a run that went on without it, the
    expiry notes the pause too, with the run ``r1 (unread)``): the first resume took the
    pause, and only it notes it and goes on; another resume gets the "gone" refusal, the
    expiry waits. (Was: each noted the same pause index after or while the first wrote,
    the last write won, and the record could name a run that never went on: ``r3``, or
    ``r1 (unread)``, while the job went on in ``r2``, or was cancelled by the expiry.)"""
    from miniagents.ext.dbos import aapprove
    from miniagents.testing import virtual_time

    call = CallTool("_remove", {"name": "a.txt"})
    alias = f"NOTED_ONCE_{_MEANWHILE.index(meanwhile)}"
    async with _paused_here(tmp_path, "ag-ui", alias, call) as (_, _, job):
        manager, workflow = job.manager, job.workflow_id
        assert workflow is not None
        [asked] = job.waiting()
        decisions = [(asked, ApprovalDecision(approved=True))]
        if meanwhile == "expiry of a run that went on":
            database = f"sqlite:///{tmp_path / 'r.db'}"
            await aapprove(workflow, asked.call_id, database_url=database, decided_by="there")
            await until(lambda: not asked.pending)  # (the run reads the decision, here)
            decisions = []  # (as aresume reads them: the run went on)
        notes, holding, release = _held_notes(monkeypatch)
        gone = JSONResponse({"gone": True}, status_code=409)
        first = asyncio.ensure_future(
            manager.aresume_run(job, "r2", decisions, named=True, gone=lambda: gone)
        )
        await asyncio.wait_for(holding.wait(), WAIT)
        if meanwhile == "resume":
            second = await manager.aresume_run(job, "r3", decisions, named=True, gone=lambda: gone)
            assert second is gone  # (was: noted too, and the job went on in r3)
        else:
            with virtual_time():  # (past keep_runs_for, 300 s: the expiry comes)
                await asyncio.sleep(301)
        release.set()
        resumed = await asyncio.wait_for(first, WAIT)
        assert isinstance(resumed, Run), resumed  # (was: gone, after r3 or the expiry)
        assert resumed.key == "r2"
        assert job.task is not None
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        assert not job.cancelling
        assert "removed a.txt" in "".join(resumed.events)
        assert notes == [(0, "r2")]  # (one note of the pause, by the run that went on)
        assert manager.durable is not None
        found = await manager.durable.afind(None, key="r1")
    assert found is not None
    assert found.pauses == (PausePoint("r2", asked.call_id, (asked.call_id,)),)


@pytest.mark.parametrize("expired", [False, True])
async def test_a_resume_whose_note_of_the_pause_fails_gives_the_pause_back(
    tmp_path: Path, destroyed: None, expired: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume of a durable run paused here whose note of the pause fails (its database
    is down) gives the pause back, not half taken: the job waits again, and a resume sent
    again takes it, notes it and goes on; or, if its expiry came while the note was
    written (``keep_runs_for``, on the virtual clock), it expires then, cancelled."""
    from miniagents.ext.dbos import DurableDatabaseError
    from miniagents.testing import virtual_time

    call = CallTool("_remove", {"name": "a.txt"})
    alias = f"NOTE_FAILS_{int(expired)}"
    async with _paused_here(tmp_path, "ag-ui", alias, call) as (_, _, job):
        manager = job.manager
        [asked] = job.waiting()
        decisions = [(asked, ApprovalDecision(approved=True))]
        notes, holding, release = _held_notes(monkeypatch, fails=True)
        gone = JSONResponse({"gone": True}, status_code=409)
        first = asyncio.ensure_future(
            manager.aresume_run(job, "r2", decisions, named=True, gone=lambda: gone)
        )
        await asyncio.wait_for(holding.wait(), WAIT)
        if expired:
            with virtual_time():  # (past keep_runs_for, 300 s: the expiry comes, and waits)
                await asyncio.sleep(301)
            assert manager.paused("t1") is job
        release.set()
        with pytest.raises(DurableDatabaseError):
            await asyncio.wait_for(first, WAIT)
        assert asked.pending  # (nothing decided)
        assert job.task is not None
        if expired:  # (given back past its time: it expires now)
            assert job.cancelling
            await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
            assert manager.paused("t1") is None
            assert notes == [(0, "r2")]
            return
        assert manager.paused("t1") is job  # (waits again)
        again = await manager.aresume_run(job, "r3", decisions, named=True, gone=lambda: gone)
        assert isinstance(again, Run), again
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        assert "removed a.txt" in "".join(again.events)
        assert notes == [(0, "r2"), (0, "r3")]
        assert manager.durable is not None
        found = await manager.durable.afind(None, key="r1")
    assert found is not None
    assert [point.run for point in found.pauses] == ["r3"]


def test_a_runs_pause_notes_are_read_past_a_gap_in_the_order_of_their_indices() -> None:
    """The pause notes of a run are read by their indices, in order, past an index whose
    note is missing (lost: written in a task of its own that was cut) or holds no point;
    the indices below the highest that have no point are counted, so that the job's next
    pause is noted past them all. (Was: read up to the first index missing only.)"""
    first, third = PausePoint("r2", "k1", ("k1",)), PausePoint("r4", "k3", ("k3",))
    notes: dict[str, object] = {
        "web.pause.2": third.note(),
        "web.pause.0": first.note(),
        "web.pause.4": "not a point",  # (noted: its index is taken all the same)
        "web.pause.01": PausePoint("x", "x", ()).note(),  # (no index as written)
        "web.pause.-1": PausePoint("x", "x", ()).note(),
        "web.pause.x": PausePoint("x", "x", ()).note(),
        "web.failure": {"reference": "ref", "error": "digest"},
    }
    assert _pauses(notes) == ((first, third), 3)
    assert _pauses({}) == ((), 0)
    assert _pauses({"web.pause.0": first.note()}) == ((first,), 0)


async def test_a_run_whose_pause_note_was_lost_is_replayed_with_the_pauses_noted_after_it(
    tmp_path: Path, destroyed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A durable run paused here for an approval decided elsewhere outlives its pause's
    expiry, and the expiry's note of that pause (index 0, written in a task of its own) is
    lost (cut as the app stops, say); the run pauses again and a resume (``r2``) goes on,
    noted as the pause 1: read after a restart, the run pauses where it was resumed, and
    the run ``r2`` keeps its events' numbers; the pause replayed is the note 1's, so the
    job's next pause would be noted at 2, not over it. (Was: the notes were read up to the
    missing first one: no pause was found, and ``r2`` was unknown after a restart.)"""
    monkeypatch.setattr(DurableJobs, "note_pause_later", lambda *_, **__: None)  # (lost)
    later = CallTool("_remove", {"name": "b.txt"})
    async with _unread_after_expiry(tmp_path, "LOST_NOTE", later, "Done.") as unread:
        manager, job, gate, _, client = unread
        assert job.task is not None
        second, resumed = await _resumed_at_its_next_pause(job, gate, client)
    assert manager.durable is not None
    found = await manager.durable.afind(None, key="r1")
    assert found is not None
    assert found.pauses == (PausePoint("r2", second.call_id, (second.call_id,)),)
    assert found.lost_pauses == 1
    again = agui_app(manager.agent, authentication=NoAuthentication())  # (a restart)
    async with served(again) as client:
        response, replayed = await get_events(client, "/runs/r2")
        recovered = again.state.runs.job("r1")
    assert response.status_code == 200, replayed  # (was: 404, r2 unknown)
    assert [(event.id, event.type) for event in replayed] == [
        (event.id, event.type) for event in resumed
    ]
    assert "Done." in "".join(event.data for event in replayed)
    assert recovered is not None
    assert (recovered.pauses, recovered.pause_index) == (1, 1)  # (the note 1's pause)


async def test_a_resume_whose_record_of_its_runs_name_fails_withdraws_its_note_of_the_pause(
    tmp_path: Path, destroyed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume (``r2``) of a durable AG-UI run paused here whose note of the pause is
    written but whose record of ``r2`` as a name of the run fails (its database is down)
    gives the pause back and withdraws the note: read from the database, the run has no
    pause that went on in ``r2``; a resume sent again (``r3``) notes the pause over it and
    goes on. (Was: the note stayed, naming ``r2``, which never went on: a restart replayed
    into it.)"""
    import miniagents.ext.dbos as dbos
    from miniagents.ext.dbos import DurableDatabaseError

    call = CallTool("_remove", {"name": "a.txt"})
    async with _paused_here(tmp_path, "ag-ui", "NAME_FAILS", call) as (_, _, job):
        manager, durable_jobs = job.manager, job.manager.durable
        assert durable_jobs is not None
        [asked] = job.waiting()
        decisions = [(asked, ApprovalDecision(approved=True))]
        name_run = dbos.aname_run

        async def aname_run(*args: Any) -> None:
            monkeypatch.undo()  # (once)
            raise DurableDatabaseError("The database is down (a test's).")

        monkeypatch.setattr(dbos, "aname_run", aname_run)
        gone = JSONResponse({"gone": True}, status_code=409)
        with pytest.raises(DurableDatabaseError):
            await manager.aresume_run(job, "r2", decisions, named=True, gone=lambda: gone)
        assert dbos.aname_run is name_run
        found = await durable_jobs.afind(None, key="r1")
        assert found is not None
        assert (found.pauses, found.lost_pauses) == ((), 1)  # (was: r2's point, 0)
        assert manager.paused("t1") is job  # (given back: it waits again)
        again = await manager.aresume_run(job, "r3", decisions, named=True, gone=lambda: gone)
        assert isinstance(again, Run), again
        assert job.task is not None
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        assert "removed a.txt" in "".join(again.events)
        found = await durable_jobs.afind(None, key="r1")
    assert found is not None
    assert found.pauses == (PausePoint("r3", asked.call_id, (asked.call_id,)),)
    assert found.lost_pauses == 0


async def test_a_run_whose_first_pause_note_names_a_call_never_reached_replays_the_rest(
    tmp_path: Path, destroyed: None
) -> None:
    """A durable AG-UI run paused at two calls in turn, resumed in ``r2`` and ``r3``, whose
    notes have before them a note of a pause at a call its replay never reaches (index 0):
    read after a restart, that note is skipped (counted as lost) and the run pauses where
    it was resumed, ``r3`` keeping its events' numbers. (Was: the first note alone was
    looked at; as its call never came, no note was replayed and ``r3`` was unknown.)"""
    from miniagents.ext.dbos import anote_run

    tool = FunctionTool(_remove, requires_approval=True)
    script = one_per_call(
        CallTool("_remove", {"name": "a.txt"}), CallTool("_remove", {"name": "b.txt"}), "Done."
    )
    agent = durable(
        offline_agent.fork(alias="UNREACHED_NOTE", tools=[tool], reply=script, token_delay=0),
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
    )
    app = agui_app(agent, authentication=NoAuthentication())
    async with served(app) as client:
        await post_events(client, agui_input("r1", thread="t1"))
        manager: RunManager = app.state.runs
        resumed: list[SSEEvent] = []
        for run_key in ("r2", "r3"):
            job = manager.paused("t1")
            assert job is not None
            [asked] = job.waiting()
            entry = {"interruptId": asked.call_id, "status": "resolved"}
            resume = agui_input(
                run_key, thread="t1", resume=[{**entry, "payload": {"approved": True}}]
            )
            response, resumed = await post_events(client, resume)
            assert response.status_code == 200, resumed
        assert job is not None
        assert job.task is not None
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        assert manager.durable is not None
        found = await manager.durable.afind(None, key="r1")
        assert found is not None
        assert len(found.pauses) == 2
        unreached = PausePoint("r9", "never-reached", ("never-reached",))
        shifted = [unreached, *found.pauses]
        notes = {f"web.pause.{index}": point.note() for index, point in enumerate(shifted)}
        await anote_run(agent, found.workflow_id, notes)
    again = agui_app(agent, authentication=NoAuthentication())  # (a restart)
    async with served(again) as client:
        response, replayed = await get_events(client, "/runs/r3")
        recovered = again.state.runs.job("r1")
    assert response.status_code == 200, replayed  # (was: 404, r3 unknown)
    assert [(event.id, event.type) for event in replayed] == [
        (event.id, event.type) for event in resumed
    ]
    assert "Done." in "".join(event.data for event in replayed)
    assert recovered is not None
    assert (recovered.pauses, recovered.pause_index) == (2, 2)  # (past the skipped note 0)


async def test_a_resume_deciding_a_call_decided_already_is_refused_before_it_notes_the_pause(
    tmp_path: Path, destroyed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume (``r2``, ``RunManager.aresume_run``) of a durable AG-UI run paused here
    at two calls, one of them decided elsewhere already (``aapprove`` of another process),
    is refused (``not_pending``) at once: no note of the pause is written, and the job
    waits as it did. (Was: the note, naming ``r2``, was written first, then the resume
    refused: a restart replayed into ``r2``, which never went on.)"""
    from miniagents.ext.dbos import aapprove

    calls = [CallTool("_remove", {"name": "a.txt"}), CallTool("_remove", {"name": "b.txt"})]
    async with _paused_here(tmp_path, "ag-ui", "DECIDED_BEFORE", calls) as (_, _, job):
        manager, workflow = job.manager, job.workflow_id
        assert workflow is not None
        elsewhere, here = job.waiting()
        await aapprove(workflow, elsewhere.call_id, database_url=f"sqlite:///{tmp_path / 'r.db'}")
        await until(lambda: not elsewhere.pending)  # (the run reads the decision, here)
        notes, _, release = _held_notes(monkeypatch)
        release.set()
        decisions = [(asked, ApprovalDecision(approved=True)) for asked in (elsewhere, here)]
        gone = JSONResponse({"gone": True}, status_code=409)
        refused = await manager.aresume_run(job, "r2", decisions, named=True, gone=lambda: gone)
        assert isinstance(refused, Response)
        assert refused.status_code == 409
        assert b"not_pending" in refused.body
        assert notes == []  # (was: [(0, "r2")], noted before the refusal)
        assert manager.paused("t1") is job  # (waits as it did)
        assert job.take()  # (given back: another resume takes it)
        job.give_back()


def _failed_withdrawals(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make each withdrawal of a pause note (``DurableJobs.awithdraw_pause``) fail (its
    database is down); returns the indices whose withdrawal was tried."""
    from miniagents.ext.dbos import DurableDatabaseError

    tried: list[int] = []

    async def awithdraw_pause(jobs: DurableJobs, workflow: str, index: int) -> None:
        tried.append(index)
        raise DurableDatabaseError("The database is down (a test's).")

    monkeypatch.setattr(DurableJobs, "awithdraw_pause", awithdraw_pause)
    return tried


@pytest.mark.parametrize("withdrawal", ["lands", "fails"])
@pytest.mark.parametrize("ended", ["cancelled", "stopped"])
async def test_a_resume_whose_job_ends_as_it_notes_the_pause_withdraws_its_note(
    tmp_path: Path,
    destroyed: None,
    ended: str,
    withdrawal: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A resume (``r2``) of a durable AG-UI run paused here whose job ends while its note of
    the pause is written (given up on, or stopped with its server) is refused ("gone") and
    withdraws its note: read from the database, the run has no pause that went on in
    ``r2``. A withdrawal that fails is logged, and the refusal is answered all the same.
    (Was: the note stayed, naming ``r2``, which never went on: a restart replayed into it.)"""
    call = CallTool("_remove", {"name": "a.txt"})
    alias = f"ENDS_NOTING_{ended.upper()}_{withdrawal.upper()}"
    async with _paused_here(tmp_path, "ag-ui", alias, call) as (_, _, job):
        manager, durable_jobs = job.manager, job.manager.durable
        assert durable_jobs is not None
        assert job.task is not None
        [asked] = job.waiting()
        decisions = [(asked, ApprovalDecision(approved=True))]
        notes, holding, release = _held_notes(monkeypatch)
        tried = _failed_withdrawals(monkeypatch) if withdrawal == "fails" else []
        gone = JSONResponse({"gone": True}, status_code=409)
        first = asyncio.ensure_future(
            manager.aresume_run(job, "r2", decisions, named=True, gone=lambda: gone)
        )
        await asyncio.wait_for(holding.wait(), WAIT)
        if ended == "cancelled":
            job.cancel()
        else:
            manager.stop()
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        release.set()
        assert await asyncio.wait_for(first, WAIT) is gone  # (was, failing: the error raised)
        assert notes == [(0, "r2")]
        found = await durable_jobs.afind(None, key="r1")
    assert found is not None
    if withdrawal == "fails":
        assert tried == [0]
        assert "could not be withdrawn" in caplog.text
        assert [point.run for point in found.pauses] == ["r2"]  # (left, as logged)
        return
    assert (found.pauses, found.lost_pauses) == ((), 1)  # (was: r2's point, 0)


async def test_a_refused_resume_whose_withdrawal_of_its_note_fails_is_refused_all_the_same(
    tmp_path: Path,
    destroyed: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A resume (``r2``) of a durable AG-UI run paused here at two calls, one of which is
    decided elsewhere (``aapprove`` of another process) while the resume notes the pause: the
    resume is refused (``not_pending``), and its note's withdrawal fails (its database is
    down): logged, the client still gets the refusal, and the pause is given back (another
    resume takes it). (Was: the withdrawal's error was raised instead of the refusal.)"""
    from miniagents.ext.dbos import aapprove

    calls = [CallTool("_remove", {"name": "a.txt"}), CallTool("_remove", {"name": "b.txt"})]
    async with _paused_here(tmp_path, "ag-ui", "REFUSED_WITHDRAWAL_FAILS", calls) as (_, _, job):
        manager, workflow = job.manager, job.workflow_id
        assert workflow is not None
        elsewhere, here = job.waiting()
        note_pause = DurableJobs.anote_pause

        async def anote_pause(jobs: DurableJobs, *args: Any, **kwargs: Any) -> None:
            await note_pause(jobs, *args, **kwargs)
            database = f"sqlite:///{tmp_path / 'r.db'}"
            await aapprove(workflow, elsewhere.call_id, database_url=database)
            await until(lambda: not elsewhere.pending)  # (the run reads the decision, here)

        monkeypatch.setattr(DurableJobs, "anote_pause", anote_pause)
        tried = _failed_withdrawals(monkeypatch)
        decisions = [(asked, ApprovalDecision(approved=True)) for asked in (elsewhere, here)]
        gone = JSONResponse({"gone": True}, status_code=409)
        refused = await manager.aresume_run(job, "r2", decisions, named=True, gone=lambda: gone)
        assert isinstance(refused, Response)  # (was: DurableDatabaseError raised)
        assert refused.status_code == 409
        assert b"not_pending" in refused.body
        assert tried == [0]
        assert "could not be withdrawn" in caplog.text
        assert here.pending  # (nothing decided here)
        assert manager.paused("t1") is job  # (waits as it did)
        assert job.take()  # (given back: another resume takes it)
        job.give_back()


async def test_a_refused_resume_cut_as_it_withdraws_its_note_gives_the_pause_back_after_it(
    tmp_path: Path, destroyed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume (``r2``) of a durable AG-UI run paused here at two calls, one of which is
    decided elsewhere while the resume notes the pause, is refused and withdraws its note;
    its request is cut while that withdrawal is written. The withdrawal goes on, and the
    pause stays taken until it has landed (another resume meanwhile is refused), then is
    given back. (Was: given back at once as the resume was cut, so that another resume
    could note the pause before the withdrawal, which would then withdraw that note.)"""
    from miniagents.ext.dbos import aapprove

    calls = [CallTool("_remove", {"name": "a.txt"}), CallTool("_remove", {"name": "b.txt"})]
    async with _paused_here(tmp_path, "ag-ui", "CUT_WITHDRAWING", calls) as (_, _, job):
        manager, durable_jobs, workflow = job.manager, job.manager.durable, job.workflow_id
        assert durable_jobs is not None
        assert workflow is not None
        elsewhere, here = job.waiting()
        note_pause, withdraw_pause = DurableJobs.anote_pause, DurableJobs.awithdraw_pause
        withdrawing, release = asyncio.Event(), asyncio.Event()

        async def anote_pause(jobs: DurableJobs, *args: Any, **kwargs: Any) -> None:
            await note_pause(jobs, *args, **kwargs)
            database = f"sqlite:///{tmp_path / 'r.db'}"
            await aapprove(workflow, elsewhere.call_id, database_url=database)
            await until(lambda: not elsewhere.pending)  # (the run reads the decision, here)

        async def awithdraw_pause(jobs: DurableJobs, run: str, index: int) -> None:
            withdrawing.set()
            await release.wait()  # (a slow database's write)
            await withdraw_pause(jobs, run, index)

        monkeypatch.setattr(DurableJobs, "anote_pause", anote_pause)
        monkeypatch.setattr(DurableJobs, "awithdraw_pause", awithdraw_pause)
        decisions = [(asked, ApprovalDecision(approved=True)) for asked in (elsewhere, here)]
        gone = JSONResponse({"gone": True}, status_code=409)
        first = asyncio.ensure_future(
            manager.aresume_run(job, "r2", decisions, named=True, gone=lambda: gone)
        )
        await asyncio.wait_for(withdrawing.wait(), WAIT)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        later = [(here, ApprovalDecision(approved=True))]
        refused = await manager.aresume_run(job, "r3", later, named=True, gone=lambda: gone)
        assert refused is gone  # (was: r3 took the pause and noted it, r2's withdrawal due)
        release.set()
        await asyncio.wait_for(durable_jobs.awritten(), WAIT)
        found = await durable_jobs.afind(None, key="r1")
        assert found is not None
        assert (found.pauses, found.lost_pauses) == ((), 1)
        assert here.pending  # (nothing decided here)
        assert manager.paused("t1") is job  # (given back: it waits again)
        assert job.take()
        job.give_back()


async def test_a_replay_paused_at_a_call_no_note_names_skips_the_notes_left_after_it(
    tmp_path: Path, destroyed: None
) -> None:
    """A durable AG-UI run paused here at its first call (``a.txt``), whose record has a
    note of a pause at its second call (``b.txt``, index 0, in a run ``r9`` that never went
    on): after a restart its replay pauses at the first call, which no note names, and a
    resume (``r2``) decides it; the run then pauses at the second call in ``r2``, live, not
    in ``r9`` (the note left after the live pause is skipped, counted as lost: the pauses
    after it are noted past its index). (Was: the replay paused there again, going on at
    once in ``r9``.)"""
    from miniagents.ext.dbos import anote_run

    tool = FunctionTool(_remove, requires_approval=True)
    script = one_per_call(
        CallTool("_remove", {"name": "a.txt"}), CallTool("_remove", {"name": "b.txt"}), "Done."
    )
    agent = durable(
        offline_agent.fork(alias="LEFT_NOTE", tools=[tool], reply=script, token_delay=0),
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
    )
    second_call = "offline_call_2"  # (the offline agent's id of the second call)
    async with served(agui_app(agent, authentication=NoAuthentication())) as client:
        _, paused = await post_events(client, agui_input("r1", thread="t1"))
        assert paused[-1].json["outcome"]["type"] == "interrupt", paused
        [first] = [each["id"] for each in paused[-1].json["outcome"]["interrupts"]]
        assert first != second_call
        workflow = DurableJobs(agent, "ag-ui").workflow_id(None, "r1", "t1")
        left = PausePoint("r9", second_call, (second_call,))
        await anote_run(agent, workflow, {"web.pause.0": left.note()})
    again = agui_app(agent, authentication=NoAuthentication())  # (a restart)
    async with served(again) as client:
        entry = {"interruptId": first, "status": "resolved", "payload": {"approved": True}}
        response, resumed = await post_events(client, agui_input("r2", thread="t1", resume=[entry]))
        assert response.status_code == 200, resumed
        manager: RunManager = again.state.runs
        job = manager.job("r1")
        assert job is not None
        await asyncio.wait_for(job.asettled(), WAIT)  # (it pauses at the second call)
        assert manager.paused("t1") is job
        [asked] = job.waiting()
        assert asked.call_id == second_call
        assert [run.key for run in job.runs] == ["r1", "r2"]  # (was: r9 too, never resumed)
        assert job.pause_index == 2  # (past the note left: not over it)
        entry = {"interruptId": second_call, "status": "resolved", "payload": {"approved": True}}
        response, ended = await post_events(client, agui_input("r3", thread="t1", resume=[entry]))
        assert response.status_code == 200, ended
        assert job.task is not None
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        assert manager.durable is not None
        found = await manager.durable.afind(None, key="r1")
    assert "Done." in "".join(event.data for event in ended)
    assert found is not None
    assert [(point.at, point.run) for point in found.pauses] == [
        (second_call, "r9"),
        (first, "r2"),
        (second_call, "r3"),
    ]
    third = agui_app(agent, authentication=NoAuthentication())  # (another restart)
    async with served(third) as client:
        response, replayed = await get_events(client, "/runs/r3")
    assert response.status_code == 200, replayed
    assert [(event.id, event.type) for event in replayed] == [
        (event.id, event.type) for event in ended
    ]


async def _resume_cut_once_noted(
    monkeypatch: pytest.MonkeyPatch,
    job: Job,
    run_key: str,
    decisions: list[tuple[ToolApprovalRequest, ApprovalDecision]],
) -> None:
    """Resume the paused ``job`` in ``run_key`` and cut the resume (its request) once its
    note of the pause, and its record of ``run_key`` as a name of the run, are written."""
    noted = asyncio.Event()
    note_pause = DurableJobs.anote_pause

    async def anote_pause(jobs: DurableJobs, *args: Any, **kwargs: Any) -> None:
        await note_pause(jobs, *args, **kwargs)  # (the note, then the name)
        monkeypatch.undo()  # (once)
        noted.set()
        await asyncio.get_running_loop().create_future()  # (cut here, written)

    monkeypatch.setattr(DurableJobs, "anote_pause", anote_pause)
    gone = JSONResponse({"gone": True}, status_code=409)
    first = asyncio.ensure_future(
        job.manager.aresume_run(job, run_key, decisions, named=True, gone=lambda: gone)
    )
    await asyncio.wait_for(noted.wait(), WAIT)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_resume_cut_after_its_note_of_the_pause_landed_withdraws_it(
    tmp_path: Path, destroyed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume (``r2``) of a durable AG-UI run paused here is cancelled (its request cut)
    once its note of the pause is written, before it goes on: the note is withdrawn, in a
    task of the app's that its stop waits for, and the pause is given back only then, so
    that no resume notes it before the withdrawal (which would withdraw that note); a resume
    sent again (``r3``) notes it and goes on. (Was: the note stayed, naming ``r2``, which
    never went on: a restart replayed into it.)"""
    call = CallTool("_remove", {"name": "a.txt"})
    async with _paused_here(tmp_path, "ag-ui", "CUT_AFTER_NOTE", call) as (_, _, job):
        manager, durable_jobs = job.manager, job.manager.durable
        assert durable_jobs is not None
        [asked] = job.waiting()
        decisions = [(asked, ApprovalDecision(approved=True))]
        gone = JSONResponse({"gone": True}, status_code=409)
        await _resume_cut_once_noted(monkeypatch, job, "r2", decisions)
        # (the pause still taken while its withdrawal is written: another resume is refused)
        refused = await manager.aresume_run(job, "r4", decisions, named=True, gone=lambda: gone)
        assert refused is gone
        await asyncio.wait_for(durable_jobs.awritten(), WAIT)
        found = await durable_jobs.afind(None, key="r1")
        assert found is not None
        assert (found.pauses, found.lost_pauses) == ((), 1)  # (was: r2's point, 0)
        assert manager.paused("t1") is job  # (given back: it waits again)
        again = await manager.aresume_run(job, "r3", decisions, named=True, gone=lambda: gone)
        assert isinstance(again, Run), again
        assert job.task is not None
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
        assert "removed a.txt" in "".join(again.events)
        found = await durable_jobs.afind(None, key="r1")
    assert found is not None
    assert found.pauses == (PausePoint("r3", asked.call_id, (asked.call_id,)),)


async def test_a_restart_knows_no_run_whose_note_of_the_pause_was_withdrawn(
    tmp_path: Path, destroyed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume (``r2``) of a durable AG-UI run paused here is cut once its note of the
    pause, and its record of ``r2`` as a name of the run, are written: the note is
    withdrawn, and a resume sent again (``r3``) goes on. After a restart, ``r2`` is known
    as no run is that never existed (a new run may take its id; a GET of it makes no job
    again), while ``r3``, which went on, is found by its name. (Was: the name stayed and
    found the durable run: a new run ``r2`` was refused as existing, and a GET of ``r2``
    made the job again.)"""
    call = CallTool("_remove", {"name": "a.txt"})
    async with _paused_here(tmp_path, "ag-ui", "NAME_OF_WITHDRAWN", call) as (_, _, job):
        manager, durable_jobs, agent = job.manager, job.manager.durable, job.manager.agent
        assert durable_jobs is not None
        [asked] = job.waiting()
        decisions = [(asked, ApprovalDecision(approved=True))]
        gone = JSONResponse({"gone": True}, status_code=409)
        await _resume_cut_once_noted(monkeypatch, job, "r2", decisions)
        await asyncio.wait_for(durable_jobs.awritten(), WAIT)
        again = await manager.aresume_run(job, "r3", decisions, named=True, gone=lambda: gone)
        assert isinstance(again, Run), again
        assert job.task is not None
        await asyncio.wait_for(asyncio.wait({job.task}), WAIT)
    restarted = agui_app(agent, authentication=NoAuthentication())
    async with served(restarted) as client:
        durable_again: DurableJobs | None = restarted.state.runs.durable
        assert durable_again is not None
        assert await durable_again.afind_named(None, "r2") is None  # (was: r1's durable run)
        named = await durable_again.afind_named(None, "r3")
        assert named is not None
        assert named.key == "r1"
        response, _ = await get_events(client, "/runs/r2")
        assert response.status_code == 404
        assert restarted.state.runs.job("r1") is None  # (was: made again)
        response, replayed = await get_events(client, "/runs/r3")
        assert response.status_code == 200, replayed
        assert "removed a.txt" in "".join(event.data for event in replayed)
        response, started = await post_events(client, agui_input("r2", thread="t2"))
        assert response.status_code == 200, started  # (was: 409, run_exists)
        assert started[0].json["runId"] == "r2"
