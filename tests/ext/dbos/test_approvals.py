"""Approvals given by a run's ids, from its own process or another: ``aapprove``, ``adeny``.

The run's process is ``durable_child.py`` (killed with SIGKILL while its call waits, or left
running) or a program run by ``run_python`` (the same process decides by the ids); the
decisions from another process are given by the test's own process, which launches no DBOS
(a ``DBOSClient`` reads and writes the database). The test waits for a call to be listed by
``apending_approvals`` (polling the database, bounded: a hang fails loudly) before deciding it.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from miniagents.errors import MiniAgentsError
from miniagents.ext.dbos import (
    DurableApprovalError,
    DurableApprovals,
    DurableDatabaseError,
    DurableRecordError,
    PendingApproval,
    _approvals,
    aapprove,
    adeny,
    apending_approvals,
)
from miniagents.ext.dbos._approvals import APPROVAL_WORKFLOW, claimed_send, decision_message
from miniagents.ext.dbos._sqlite import close_client, new_client
from miniagents.ext.tools import ToolDecision
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.dbos.cleaner_program import SAME_PROCESS, cleaner_removing
from tests.ext.dbos.held import held_by_another_session
from tests.ext.dbos.killed_child import (
    CHILD,
    MAIN,
    TIMEOUT,
    Child,
    Children,
    Outcome,
    models,
    side_effects,
)
from tests.ext.dbos.queued import Waiting, queued_nowhere
from tests.fakes.postgres import PostgresServer
from tests.subprocesses import end_process_group, run_python

LISTED_WITHIN = 60.0
"""Seconds a waiting call may take, at most, to be listed (a loaded machine)."""


def _script(server: FakeLLMServer) -> None:
    """The main model calls ``remove`` (it waits for approval), then answers."""
    server.reply(
        tokens=["Removing."],
        tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="r1")],
        for_model=MAIN,
    )
    server.reply(tokens=["Removed ", "it."], for_model=MAIN)


def _decisions_recorded(url: str) -> list[dict[str, object]]:
    """The decisions the approvals of the database's runs ended with, as recorded."""
    client = new_client(url)
    try:
        approvals = client.list_workflows(name=APPROVAL_WORKFLOW)
    finally:
        close_client(client)
    return [dict(approval.output) for approval in approvals if approval.output is not None]


def _listed(url: str, workflow: str) -> list[PendingApproval]:
    """The calls of the run ``workflow`` that wait, once there is one (polled, bounded)."""
    deadline = time.monotonic() + LISTED_WITHIN
    while True:
        found = asyncio.run(apending_approvals(workflow, database_url=url))
        if found:
            return found
        assert time.monotonic() < deadline, f"no call of {workflow} waited within the time"
        time.sleep(0.05)  # polling the database: another process writes it


OFFLINE_CALL = "offline_call_1"
"""The id of the offline model's call of ``remove`` (``durable_child.py`` with ``OFFLINE=1``)."""


def _offline(children: Children, folder: Path, url: str, **env: str) -> Child:
    """``durable_child.py`` over the offline model (one of ``children``): no SDK imported,
    its calls printed."""
    return children.start(None, folder, url, CHILD, OFFLINE="1", **env)


def _model_calls(child: Child) -> int:
    """How many calls of the model the child made (recorded calls replayed are not made)."""
    return child.lines.count("MODEL")


@pytest.fixture(scope="module")
def approved_here(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The reply of the run approved on its request, never stopped (the reference)."""
    folder = tmp_path_factory.mktemp("approved_here")
    with Children() as children:
        outcome = _offline(
            children, folder, f"sqlite:///{folder / 'runs.sqlite'}", APPROVE="1"
        ).finish()
    assert side_effects(folder) == ["removed a.txt"]
    assert outcome.lines.count("MODEL") == 2
    return outcome


def test_an_approval_sent_while_the_process_is_down_resumes_the_recovered_run(
    children: Children, tmp_path: Path, database_url: str, approved_here: Outcome
) -> None:
    waiting = _offline(children, tmp_path, database_url)  # nobody approves there
    waiting.read_until(f"APPROVAL {OFFLINE_CALL} True")
    assert _listed(database_url, "run-1") == [
        PendingApproval("run-1", OFFLINE_CALL, "remove", {"name": "a.txt"})
    ]
    waiting.kill()  # stopped while the call waits

    asyncio.run(aapprove("run-1", OFFLINE_CALL, database_url=database_url))  # nothing runs it
    assert asyncio.run(apending_approvals(database_url=database_url)) == []  # decided
    with pytest.raises(DurableApprovalError, match="was approved already"):
        asyncio.run(adeny("run-1", OFFLINE_CALL, database_url=database_url))  # the first kept
    assert side_effects(tmp_path) == []

    again = _offline(children, tmp_path, database_url)  # recovered: nobody approves
    outcome = again.finish()

    assert (_model_calls(waiting), _model_calls(again)) == (1, 1)  # the first not made again
    assert side_effects(tmp_path) == ["removed a.txt"]  # the tool ran once
    assert outcome.reply == approved_here.reply
    assert outcome.tokens == approved_here.tokens
    with pytest.raises(DurableApprovalError, match="has ended"):
        asyncio.run(aapprove("run-1", OFFLINE_CALL, database_url=database_url))


def test_a_run_cancelled_by_dbos_while_its_process_is_down_leaves_no_approval_waiting(
    children: Children, tmp_path: Path, database_url: str
) -> None:
    # (was: its approval, recovered at every launch, waited there forever: nothing decides
    # a call of a cancelled run). At the next launch it ends withdrawn, at once
    from dbos import DBOS, WorkflowHandleAsync

    from miniagents.ext.dbos._engine import aengine_for

    waiting = _offline(children, tmp_path, database_url)
    waiting.read_until(f"APPROVAL {OFFLINE_CALL} True")
    [approval] = _listed(database_url, "run-1")
    waiting.kill()  # stopped while the call waits
    client = new_client(database_url)
    try:
        client.cancel_workflow("run-1")  # an operator's cancel, with DBOS's own tools
    finally:
        close_client(client)

    async def launched_again() -> object:
        await aengine_for(database_url)  # (this process: the same DBOS executor)
        [name] = [
            found.workflow_id for found in await DBOS.list_workflows_async(name=APPROVAL_WORKFLOW)
        ]
        handle: WorkflowHandleAsync[object] = await DBOS.retrieve_workflow_async(name)
        return await asyncio.wait_for(handle.get_result(), LISTED_WITHIN)  # (a bound)

    try:
        ended = asyncio.run(launched_again())
    finally:
        DBOS.destroy(destroy_registry=False)
    assert isinstance(ended, dict)
    assert ended.get("withdrawn") is True
    assert asyncio.run(apending_approvals(database_url=database_url)) == []
    with pytest.raises(DurableApprovalError, match="has ended"):
        asyncio.run(aapprove("run-1", approval.call_id, database_url=database_url))
    assert side_effects(tmp_path) == []


def test_a_denial_from_another_process_resumes_the_waiting_run_at_once(
    children: Children, fake_llm: FakeLLMServer, tmp_path: Path, database_url: str
) -> None:
    fake_llm.reply(
        tokens=["Removing."],
        tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="r1")],
        for_model=MAIN,
    )
    fake_llm.reply(tokens=["Not ", "removed."], for_model=MAIN)
    running = children.start(fake_llm, tmp_path, database_url)
    running.read_until("APPROVAL r1 True")
    _listed(database_url, "run-1")

    before = datetime.now(UTC)
    store = DurableApprovals(database_url, decided_by="ada")  # adeny's, as an ApprovalStore
    asyncio.run(store.adecide("run-1", "r1", ToolDecision(False, reason="Keep it.")))
    done = running.finish()  # it ends: it read the denial as it waited

    [recorded] = _decisions_recorded(database_url)  # who decided, and when: in the record
    assert (recorded["approved"], recorded["decided_by"]) == (False, "ada")
    assert before <= datetime.fromisoformat(str(recorded["decided_at"])) <= datetime.now(UTC)
    assert side_effects(tmp_path) == []  # the tool did not run
    assert models(fake_llm) == [MAIN, MAIN]
    denial = "The user denied the call of the tool remove; it did not run. Their reason: Keep it."
    assert ["LLMToolResultMessage", denial] in done.reply
    assert done.reply[-1] == ["OpenAIMessage", "Not removed."]
    assert fake_llm.requests[1].json["messages"][-1]["content"] == denial


def test_a_run_resumes_when_a_caller_that_knows_only_its_ids_approves_in_its_process(
    tmp_path: Path,
) -> None:
    done = run_python(["-c", SAME_PROCESS], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        'LLMToolCallMessage | {"name": "a.txt"}',
        'LLMToolApprovalRequest | Approve the call of remove with {"name": "a.txt"}?',
        "waits: remove {'name': 'a.txt'}",
        "removing b.txt",  # the edited arguments
        "LLMToolResultMessage | removed b.txt",
        "OfflineMessage | Done.",
        "request pending: False",  # decided by the ids: the request is decided too
        "approve here: The call 'offline_call_1' of remove was approved already; a call is "
        "decided once.",
        "waits now: []",
    ]


FIRST_WINS = (
    """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.dbos import DurableApprovalError, aapprove, apending_approvals, workflow_id
from miniagents.ext.tools import ToolApprovalRequest
"""
    + cleaner_removing("a.txt", "c.txt")
    + """

async def an_admin(first: str, second: str) -> None:
    for _ in range(1200):  # bounded: 60 s
        waiting = [call.call_id for call in await apending_approvals("two", database_url=URL)]
        if waiting == [second]:  # the first was decided here, the second waits
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"still waiting: {waiting}")
    try:
        await aapprove("two", first, database_url=URL)
    except DurableApprovalError as error:
        print("too late:", error)
    await aapprove("two", second, database_url=URL)


async def main() -> None:
    async with MiniAgents():
        with workflow_id("two"):
            reply = cleaner.inquire("Remove a.txt and c.txt.")
        requests = []
        admin = None
        async for promise in reply:
            message = await promise
            if isinstance(message, ToolApprovalRequest):
                requests.append(message)
                if len(requests) == 1:
                    message.approve()  # here, on the request, first
                else:
                    admin = asyncio.ensure_future(an_admin(*(r.call_id for r in requests)))
        if admin is not None:
            await admin
        print([str(message) for message in await reply][-3:])
        print([request.pending for request in requests])


asyncio.run(main())
"""
)


def test_the_first_decision_wins_whether_given_here_or_by_the_ids(tmp_path: Path) -> None:
    done = run_python(["-c", FIRST_WINS], tmp_path)
    assert done.returncode == 0, done.stderr
    said = done.stdout.splitlines()
    assert sorted(line for line in said if line.startswith("removing ")) == [
        "removing a.txt",  # each call ran once
        "removing c.txt",
    ]
    assert [line for line in said if not line.startswith("removing ")] == [
        "too late: The call 'offline_call_1' of the durable run 'two' was approved already; "
        "a call is decided once.",
        "['removed a.txt', 'removed c.txt', 'Done.']",
        "[False, False]",
    ]


# -- two decisions at the same instant ----------------------------------------------------------

OFFLINE_RUN = (
    """
import asyncio
import sys

from miniagents import MiniAgents
from miniagents.ext.dbos import workflow_id
from miniagents.ext.tools import ToolApprovalRequest
"""
    + cleaner_removing("a.txt", url="sys.argv[1]")
    + """

async def main() -> None:
    async with MiniAgents():
        with workflow_id("run-1"):
            reply = cleaner.inquire("Remove a.txt.")
        async for promise in reply:
            message = await promise
            if isinstance(message, ToolApprovalRequest):
                print("APPROVAL", message.call_id, message.pending, flush=True)
            print(type(message).__name__, "|", message, flush=True)


asyncio.run(main())
"""
)
"""The run of the same-instant decisions: an offline model (its process imports no SDK of a
model: the run's two processes start in seconds), whose ``remove`` call waits for approval;
it prints ``APPROVAL <call id> <pending>``, each message as ``<class> | <text>``, and
``removing a.txt`` when the call runs."""


def _offline_run(children: Children, folder: Path, url: str) -> subprocess.Popen[str]:
    """:data:`OFFLINE_RUN` started in ``folder`` on the database ``url`` (read line by line),
    one of ``children``."""
    pipe = subprocess.PIPE
    return children.python(["-c", OFFLINE_RUN, url], folder, stdout=pipe, stderr=pipe)


DECIDE = """
import asyncio
import sys

from miniagents.ext.dbos import DurableApprovalError, aapprove, adeny


async def main(url: str, how: str) -> None:
    if sys.stdin.readline() != "go\\n":  # (imported while the run starts; the test said go)
        return
    try:
        if how == "approve":
            await aapprove("run-1", "offline_call_1", database_url=url)
        else:
            await adeny("run-1", "offline_call_1", reason="No.", database_url=url)
    except DurableApprovalError as error:
        print("refused:", error)
    else:
        print("decided")


asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _together(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next two decisions of this process claim their call at the same instant.

    Each waits, after its checks (the call waits, nobody decided it), for the other to be
    there too: then both claim it at once, and the database lets one in.
    """
    from miniagents.ext.dbos import approvals

    claim = approvals._Client.claimed_send
    arrived: list[None] = []
    both = asyncio.Event()

    async def together(self: approvals._Client, name: str, message: dict[str, object]) -> object:
        arrived.append(None)
        if len(arrived) == 2:
            both.set()
        await both.wait()
        return await claim(self, name, message)

    monkeypatch.setattr(approvals._Client, "claimed_send", together)


@pytest.mark.parametrize("deciders", ["tasks", "processes"])
def test_of_two_decisions_at_the_same_instant_one_wins_and_the_other_is_refused(
    children: Children,
    tmp_path: Path,
    database_url: str,
    deciders: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (the run's model is offline: the durable child's, the openai SDK, took most of the
    # test's time to import in each of its two processes, under load 10 s or more each)
    pipe = subprocess.PIPE
    processes = {  # (started now: they import while the run starts, and decide when told)
        how: children.python(
            ["-c", DECIDE, database_url, how], tmp_path, stdin=pipe, stdout=pipe, stderr=pipe
        )
        for how in (("approve", "deny") if deciders == "processes" else ())
    }
    waiting = _offline_run(children, tmp_path, database_url)  # nobody decides there
    assert waiting.stdout is not None
    for line in waiting.stdout:
        if line.startswith("APPROVAL"):
            assert line == "APPROVAL offline_call_1 True\n"
            break
    else:
        raise AssertionError(
            f"the run ended before its approval: {waiting.communicate(timeout=TIMEOUT)}"
        )
    _listed(database_url, "run-1")
    end_process_group(waiting)  # nobody reads the decisions: both would have been sent before
    waiting.communicate(timeout=TIMEOUT)

    if deciders == "tasks":
        _together(monkeypatch)

        async def decide() -> tuple[BaseException | None, BaseException | None]:
            return await asyncio.gather(
                aapprove("run-1", "offline_call_1", database_url=database_url),
                adeny("run-1", "offline_call_1", reason="No.", database_url=database_url),
                return_exceptions=True,
            )

        approved, denied = asyncio.run(decide())
        outcomes = {
            "approve": "decided" if approved is None else f"refused: {approved}",
            "deny": "decided" if denied is None else f"refused: {denied}",
        }
        for error in (approved, denied):
            assert error is None or isinstance(error, DurableApprovalError), repr(error)
    else:
        for process in processes.values():  # (both told at once: they decide together)
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = {}
        for how, process in processes.items():
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            outcomes[how] = out.strip()

    winners = [how for how, said in outcomes.items() if said == "decided"]
    assert len(winners) == 1, outcomes  # exactly one decision is kept
    winner = winners[0]
    loser = "deny" if winner == "approve" else "approve"
    said = "approved" if winner == "approve" else "denied"
    assert outcomes[loser].startswith(
        "refused: The call 'offline_call_1' of the durable run 'run-1' was already decided: "
        f"{said} by another aapprove/adeny, first; this decision was not sent."
    ) or outcomes[loser] == (  # it came after the winner's decision was noted: refused too
        f"refused: The call 'offline_call_1' of the durable run 'run-1' was {said} already; "
        "a call is decided once."
    ), outcomes
    assert asyncio.run(apending_approvals(database_url=database_url)) == []

    again = _offline_run(children, tmp_path, database_url)  # recovered: it reads the winner
    out, err = again.communicate(timeout=TIMEOUT)
    assert again.returncode == 0, err
    lines = out.splitlines()
    removing = [line for line in lines if line.startswith("removing ")]
    assert removing == (["removing a.txt"] if winner == "approve" else [])  # once, if at all
    result = [line for line in lines if line.startswith("LLMToolResultMessage | ")]
    assert len(result) == 1, out
    if winner == "approve":
        assert result == ["LLMToolResultMessage | removed a.txt"]
    else:
        assert result[0].endswith("Their reason: No.")
    assert lines[-1] == "OfflineMessage | Done.", out


# -- bad decisions ------------------------------------------------------------------------------


def test_a_decision_for_a_run_or_call_that_does_not_wait_is_refused(
    children: Children, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    waiting = _offline(children, tmp_path, url)
    waiting.read_until(f"APPROVAL {OFFLINE_CALL} True")
    _listed(url, "run-1")
    waiting.kill()

    with pytest.raises(DurableApprovalError, match="no durable run 'run-9'") as caught:
        asyncio.run(aapprove("run-9", OFFLINE_CALL, database_url=url))
    assert isinstance(caught.value, (MiniAgentsError, LookupError))
    with pytest.raises(DurableApprovalError, match="has no call 'r2' that waits"):
        asyncio.run(adeny("run-1", "r2", database_url=url))
    with pytest.raises(DurableRecordError, match="mapping of names"):
        asyncio.run(aapprove("run-1", OFFLINE_CALL, arguments=["a.txt"], database_url=url))  # type: ignore[arg-type]
    with pytest.raises(DurableRecordError, match="cannot be pickled"):
        asyncio.run(
            aapprove("run-1", OFFLINE_CALL, arguments={"name": lambda: 1}, database_url=url)
        )
    with pytest.raises(DurableRecordError, match="non-empty str"):
        asyncio.run(aapprove("", OFFLINE_CALL, database_url=url))
    assert len(asyncio.run(apending_approvals(database_url=url))) == 1  # none of those decided

    asyncio.run(adeny("run-1", OFFLINE_CALL, database_url=url))
    with pytest.raises(DurableApprovalError, match="was denied already"):
        asyncio.run(aapprove("run-1", OFFLINE_CALL, database_url=url))

    missing = f"sqlite:///{tmp_path / 'other.sqlite'}"
    with pytest.raises(DurableDatabaseError, match="no such file") as missed:
        asyncio.run(apending_approvals(database_url=missing))
    assert "made when the first of their runs starts" in str(missed.value)  # (a race: retry)
    assert not (tmp_path / "other.sqlite").exists()


def test_approvals_on_a_corrupt_file_say_it_is_damaged_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(DurableDatabaseError) as caught:
        asyncio.run(apending_approvals(database_url=f"sqlite:///{path}"))
    said = str(caught.value)
    assert said.startswith(
        f"The SQLite file {str(path)!r} (the database of durable runs) is not a SQLite database"
    ), said
    assert "\n" not in said
    assert caught.value.__cause__ is None


def _approvals_waiting(url: str, runs: dict[str, bool]) -> None:
    """Record an approval that waits for each run of ``runs`` (by id: whether the run is
    live, waiting in a queue nobody reads, or gone), in one transaction."""
    from miniagents.ext.dbos._approvals import approval_id

    workflows: list[Waiting] = []
    for run, live in runs.items():
        if live:
            workflows.append(Waiting("run", run))
        arguments: tuple[object, ...] = (run, ".0", "remove", "c1", {})
        workflows.append(Waiting(APPROVAL_WORKFLOW, approval_id(run, ".0"), arguments))
    queued_nowhere(url, workflows)


def test_the_approvals_of_ended_runs_are_withdrawn_however_many_runs_wait(
    tmp_path: Path,
) -> None:
    # (was: the runs of all the waiting approvals were asked in one query, a parameter each:
    # past SQLite's bound on a statement's parameters (999 on older builds, 32,766 on newer
    # ones) it failed, and the approvals of ended runs were never withdrawn at a launch)
    import sqlite3

    import sqlalchemy
    from dbos import DBOS

    from miniagents.ext.dbos._engine import aengine_for

    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"

    def older_sqlite(connection: object, _record: object) -> None:  # (its bound: 999)
        if isinstance(connection, sqlite3.Connection):
            connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

    try:
        asyncio.run(aengine_for(url))  # (its tables made)
        DBOS.destroy(destroy_registry=False)
        _approvals_waiting(url, {**{f"live-{index}": True for index in range(1000)}, "gone": False})
        sqlalchemy.event.listen(sqlalchemy.Engine, "connect", older_sqlite)
        try:
            asyncio.run(aengine_for(url))  # a launch withdraws the approvals of ended runs
        finally:
            sqlalchemy.event.remove(sqlalchemy.Engine, "connect", older_sqlite)
    finally:
        DBOS.destroy(destroy_registry=False)
    connection = sqlite3.connect(tmp_path / "runs.sqlite")
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        claims = (
            connection.execute(
                "SELECT approval_id, said, decided_by FROM miniagents_decisions"
            ).fetchall()
            if "miniagents_decisions" in tables  # (made by the first claim)
            else []
        )
    finally:
        connection.close()
    assert claims == [("gone::approval.0", "withdrawn", "run")]  # (the live runs' wait on)


def _claims_database(postgres: PostgresServer) -> str:
    """A new database of ``postgres`` with DBOS's schema (where the claims are kept); its URL."""
    url = postgres.create_database(f"claims_{time.monotonic_ns()}")
    engine = sqlalchemy.create_engine(url.replace("postgresql:", "postgresql+psycopg:"))
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE SCHEMA dbos"))
    finally:
        engine.dispose()
    return url


def test_a_claim_waits_for_its_server_and_for_a_lock_by_their_own_bounds(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one CLAIM_WAIT was both: a lock's wait could not be shortened without the connection's
    monkeypatch.setattr(_approvals, "CLAIM_LOCK_WAIT", 0.5)
    monkeypatch.setattr(_approvals, "CLAIM_CONNECT_WAIT", 7.0)
    made, _ = _approvals._claims(_claims_database(postgres))
    asked: list[dict[str, Any]] = []
    sqlalchemy.event.listen(
        made, "do_connect", lambda dialect, record, args, params: asked.append(dict(params))
    )
    try:
        with made.connect() as connection:
            lock = connection.execute(sqlalchemy.text("SHOW lock_timeout")).scalar()
    finally:
        made.dispose()
    assert asked[0]["connect_timeout"] == 7
    assert lock == "500ms"


def test_a_decision_whose_claim_another_session_holds_fails_within_its_bound(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim row held by another session's open transaction: an error, not a hang."""
    monkeypatch.setattr(_approvals, "CLAIM_LOCK_WAIT", 0.5)
    url = _claims_database(postgres)
    made, _ = _approvals._claims(url)  # the table of claims made
    made.dispose()
    claim = (  # the claim of another decider, not committed yet
        "INSERT INTO dbos.miniagents_decisions (approval_id, message_id, said, decided_by, "
        "claimed_at) VALUES ('run-1::approval1', 'other', 'denied', 'request', 0)"
    )
    client = new_client(url)  # (never reached: the claim comes first)
    decision = decision_message(ToolDecision(True), by="approvals")
    try:
        with (
            held_by_another_session(url, claim),
            pytest.raises(DurableDatabaseError, match=r"stayed locked for 0.5 s.*end that"),
        ):
            claimed_send(client, url, "run-1::approval1", decision)
    finally:
        close_client(client)
