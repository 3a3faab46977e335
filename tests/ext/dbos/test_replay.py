"""``replay``: an ended durable run read again by its id, without a model call.

The run's recorded model calls give the same messages, in a new reply, and the model is not
called again; a run recorded by another version of its agent (its code or settings
changed since) is refused, not replayed. These tests launch DBOS in the test's process (a
SQLite file of their own), and destroy it at their end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from miniagents import (
    InteractionContext,
    Message,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.errors import ArgumentError, StreamCancelledError
from miniagents.ext.dbos import (
    DurableApprovalError,
    DurableConfigurationError,
    DurableDatabaseError,
    DurableError,
    DurableRecordError,
    DurableRunCancelledError,
    DurableRunStoppedError,
    DurableVersionError,
    aapprovals_open,
    aapprove,
    acancel_run,
    acancelled_runs,
    afind_runs,
    aname_run,
    anote_run,
    apending_approvals,
    arun_named,
    arun_notes,
    durable,
    replay,
    workflow_id,
)
from miniagents.ext.dbos._engine import Engine
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.offline_script import ScriptedReply
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools import FunctionTool, ToolCallMessage, ToolResultMessage, ToolSet
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.messages import MessageTokenAppender
from miniagents.testing import VirtualClock
from tests.ext.dbos.outage import kept_client_outage
from tests.ext.dbos.queued import Waiting, queued_nowhere
from tests.fakes.dead_executor import pending_elsewhere

calls: list[str] = []
"""The prompts the model was called with (its last message), in this test's process."""


def _answer(call: LLMCall) -> str:
    calls.append(str(call.messages[-1].text))
    return f"Answer {len(calls)}."


def _answering(alias: str, database: str, **options: Any) -> MiniAgent[..., Message]:
    """A durable offline agent ``alias`` of ``database`` answering with :func:`_answer`.

    ``options`` are ``durable``'s (``elsewhere_timeout``, ``ids_by_input``).
    """
    answering = offline_agent.fork(alias=alias, reply=_answer, token_delay=0)
    return durable(answering, database_url=database, **options)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A SQLite file of runs of its own; DBOS destroyed after the test, the model reset."""
    from dbos import DBOS

    calls.clear()
    try:
        yield f"sqlite:///{tmp_path / 'runs.sqlite'}"
    finally:
        DBOS.destroy(destroy_registry=False)


async def test_an_ended_run_replays_its_messages_without_calling_the_model(
    database: str,
) -> None:
    agent = _answering("REPLAYED", database)
    async with MiniAgents():
        with workflow_id("replayed-1"):
            first = [str(message) for message in await agent.inquire("Hello?")]
        again = [str(message) for message in await replay(agent, "replayed-1")]
    assert first == again == ["Answer 1."]
    assert calls == ["Hello?"]  # the replay called nobody


async def test_a_run_of_another_version_of_its_agent_is_refused(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from miniagents.ext.dbos import _engine

    agent = _answering("CHANGED", database)
    async with MiniAgents():
        with workflow_id("changed-1"):
            await agent.inquire("Hello?")
        # as if the agent's code had changed since the run was recorded
        monkeypatch.setattr(_engine._agents, "version", lambda alias: "another-version")
        with pytest.raises(DurableVersionError, match="another version of its agent CHANGED"):
            await replay(agent, "changed-1")
    assert calls == ["Hello?"]


async def test_a_run_recorded_by_another_application_version_is_refused_with_the_fix(
    database: str,
) -> None:
    # an ended run recorded by other code is not replayed, and the error says what to do
    # (was: it said what was wrong only)
    agent = _answering("OTHERCODE", database)
    async with MiniAgents():
        with workflow_id("other-code-1"):
            await agent.inquire("Hello?")
    # (as if the code had changed since the run was recorded)
    runs = sqlite3.connect(database.removeprefix("sqlite:///"))
    with contextlib.closing(runs), runs:
        runs.execute(
            "UPDATE workflow_status SET application_version = 'other' "
            "WHERE workflow_uuid = 'other-code-1'"
        )
    async with MiniAgents():
        with pytest.raises(DurableVersionError) as refused:
            await replay(agent, "other-code-1")
    assert "(application version other)" in str(refused.value)
    assert "so it is not replayed. Replay it with the code that started it." in str(refused.value)
    assert calls == ["Hello?"]


async def test_a_run_refused_at_launch_then_ended_by_its_own_code_replays(
    database: str,
) -> None:
    # a run recovered at launch whose agent's version was not this code's is refused here
    # (left pending for the code that started it); once that code ran it to its end, its
    # record is its reply when asked again under its id (was: refused for the process's
    # whole life, its refusal kept)
    from dbos import DBOS, WorkflowHandleAsync

    from miniagents.ext.dbos import _engine

    agent = _answering("REFUSEDTHEN", database)
    async with MiniAgents():
        first = [str(message) for message in await _asked_again(agent, "refused-1")]
        # (its reply may come before DBOS records the run as ended)
        ended: WorkflowHandleAsync[object] = await DBOS.retrieve_workflow_async("refused-1")
        await asyncio.wait_for(ended.get_result(), 60)
        engine = _engine.current_engine()
        assert engine is not None
        engine.refused["refused-1"] = "refused at launch"  # (ended since, by its own code)
        again = [str(message) for message in await _asked_again(agent, "refused-1")]
        assert engine.refused == {}
        pending_elsewhere(database, "refused-1", "refused-2")
        engine.refused["refused-2"] = "refused at launch"  # (still pending: refused)
        with pytest.raises(DurableVersionError, match="refused at launch"):
            await _asked_again(agent, "refused-2")
    assert first == again == ["Answer 1."]
    assert calls == ["Hello?"]


async def _recorded(agent: MiniAgent[..., Message], run: str) -> str:
    """``run``, an ended run of ``agent``, asked ``Hello?``."""
    with workflow_id(run):
        await agent.inquire("Hello?")
    return run


async def _pending_elsewhere(agent: MiniAgent[..., Message], database: str, run: str) -> None:
    """``<run>-1``, a run of ``agent`` another server's executor holds pending (it died).

    Made from ``<run>-0``, an ended run of ``agent`` asked ``Hello?``.
    """
    pending_elsewhere(database, await _recorded(agent, f"{run}-0"), f"{run}-1")


def _replayed(agent: MiniAgent[..., Message], run: str) -> MessageSequencePromise:
    """``run`` read again by ``replay``."""
    return replay(agent, run)


def _asked_again(agent: MiniAgent[..., Message], run: str) -> MessageSequencePromise:
    """``run`` asked again under its workflow id (a web app's start of the same job on
    another server)."""
    with workflow_id(run):
        return agent.inquire("Hello?")


@pytest.mark.parametrize("ask", [_replayed, _asked_again])
async def test_a_run_pending_in_another_process_is_waited_for_a_bounded_time(
    database: str, ask: Callable[[MiniAgent[..., Message], str], MessageSequencePromise]
) -> None:
    # a run that another server's executor holds pending (it died, or the run waits there
    # for a decision) never ends here: its replay, or the same run asked again by its id,
    # fails after its agent's elsewhere_timeout with what to do (was: it waited for the
    # run's end forever, and so did a web follow or resume of it)
    agent = _answering(f"ELSEWHERE{ask.__name__.upper()}", database, elsewhere_timeout=0.5)
    async with MiniAgents():
        await _pending_elsewhere(agent, database, "elsewhere")
        for _ in range(2):  # (asked again, it is waited for again, as long)
            reply = ask(agent, "elsewhere-1")
            with pytest.raises(DurableError, match="DBOS executor 'dead-server'") as caught:
                await asyncio.wait_for(reply.aresolve_messages(), 60)
    assert "DBOS__VMID" in str(caught.value)
    assert calls == ["Hello?"]


def _bounded_together(
    monkeypatch: pytest.MonkeyPatch, bounds: list[float], first_waits: asyncio.Event
) -> None:
    """Make each bounded wait for a run elsewhere end (its bound over) once two calls wait so.

    Each wait's bound goes to ``bounds``; ``first_waits`` is set as the first call waits.
    """
    from miniagents.ext.dbos import _engine

    bounded = _engine.Engine._ended_elsewhere
    both = asyncio.Event()

    async def elapsed(
        engine: Engine, workflow: str, executor: str | None, ended: Any, timeout: float
    ) -> Any:
        bounds.append(timeout)
        (first_waits if len(bounds) == 1 else both).set()
        await both.wait()
        return await bounded(engine, workflow, executor, ended, 0)  # (its seconds gone)

    monkeypatch.setattr(_engine.Engine, "_ended_elsewhere", elapsed)


async def test_two_calls_sharing_a_run_pending_elsewhere_are_each_waited_for_a_bounded_time(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two calls of one run that another server's executor holds pending (it died): the
    # second shares the first's wait, and it applied no elsewhere_timeout (was: the first
    # failed after its bound, the second waited for the run's end forever)

    agent = _answering("SHAREDELSEWHERE", database, elsewhere_timeout=3600)
    bounds: list[float] = []
    first_waits = asyncio.Event()

    async with MiniAgents():
        await _pending_elsewhere(agent, database, "shared")
        _bounded_together(monkeypatch, bounds, first_waits)
        first = _asked_again(agent, "shared-1")
        first_ended = asyncio.ensure_future(first.aresolve_messages())
        await first_waits.wait()  # (the first waits for the run, bounded: the second shares it)
        second = _asked_again(agent, "shared-1")
        for reply in (second, first):
            with pytest.raises(DurableError, match="DBOS executor 'dead-server'"):
                await asyncio.wait_for(reply.aresolve_messages(), 60)
        await asyncio.gather(first_ended, return_exceptions=True)
    assert bounds == [3600, 3600]
    assert calls == ["Hello?"]


async def test_a_call_sharing_a_run_pending_elsewhere_reads_its_executor_without_dbos_retries(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the second call of a run that another server's executor holds pending reads where it
    # runs through a client that does not wait: DBOS's own read, which retries through an
    # outage with no bound, stalled it past its elsewhere_timeout (was: it never failed)
    from dbos import DBOS

    agent = _answering("STALLEDELSEWHERE", database, elsewhere_timeout=3600)
    bounds: list[float] = []
    first_waits = asyncio.Event()

    async def stalled(workflow: str) -> None:
        """DBOS's status read through an outage: it retries, and never answers."""
        await asyncio.Event().wait()

    async with MiniAgents():
        await _pending_elsewhere(agent, database, "stalled")
        _bounded_together(monkeypatch, bounds, first_waits)
        first = _asked_again(agent, "stalled-1")
        first_ended = asyncio.ensure_future(first.aresolve_messages())
        await first_waits.wait()  # (the first has read its status: the second shares its run)
        monkeypatch.setattr(DBOS, "get_workflow_status_async", stalled)
        second = _asked_again(agent, "stalled-1")
        for reply in (second, first):
            with pytest.raises(DurableError, match="DBOS executor 'dead-server'"):
                await asyncio.wait_for(reply.aresolve_messages(), 30)
        await asyncio.gather(first_ended, return_exceptions=True)
    assert bounds == [3600, 3600]


async def test_a_stopped_run_whose_resume_failed_is_resumed_again_and_keeps_no_context(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a run stopped here, asked again, is resumed in the caller's context: a resume that
    # failed (the database unreachable) kept that context for ever, and forgot the stop, so
    # asked again the run was waited for with nothing to run it (was: resumed never again)
    from dbos import DBOS

    from miniagents.ext.dbos import _engine

    agent = _answering("RESUMEFAILED", database)
    resumes: list[str] = []

    async def failed(workflow: str) -> None:
        resumes.append(workflow)
        raise DurableError("The database of durable runs could not be reached.")

    async with MiniAgents():
        await _pending_elsewhere(agent, database, "resumed")
        engine = _engine.current_engine()
        assert engine is not None
        engine.stopped.add("resumed-1")  # (as a run stopped here: its executor is not read)
        monkeypatch.setattr(DBOS, "resume_workflow_async", failed)
        for _ in range(2):
            with pytest.raises(DurableError, match="could not be reached"):
                await _asked_again(agent, "resumed-1")
            assert engine.resumed == {}  # (was: the caller's context, kept)
            assert "resumed-1" in engine.stopped  # (was: forgotten)
    assert resumes == ["resumed-1", "resumed-1"]
    assert calls == ["Hello?"]


def test_a_durable_agents_elsewhere_timeout_is_a_number_of_seconds() -> None:
    answering = offline_agent.fork(alias="ELSEWHERE_REFUSED", reply=_answer, token_delay=0)
    with pytest.raises(ArgumentError, match="elsewhere_timeout"):
        durable(answering, elsewhere_timeout=0)


async def test_a_run_keeps_the_notes_and_names_an_app_gives_it(database: str) -> None:
    agent = _answering("NOTED", database)
    async with MiniAgents():
        with workflow_id("noted-1"):
            await agent.inquire("Hello?")
        await anote_run(agent, "noted-1", {"pause.0": {"run": "r2"}, "seen": 1})
        await anote_run(agent, "noted-1", {"seen": 2})  # a key noted again is replaced
        with pytest.raises(DurableRecordError, match="must be JSON values"):
            await anote_run(agent, "noted-1", {"when": object()})
        await aname_run(agent, "r2", "noted-1")
        await aname_run(agent, "r2", "another-run")  # the first name recorded is kept
        [found] = await afind_runs(agent, "noted-")
        assert found.notes == {"pause.0": {"run": "r2"}, "seen": 2}
        assert await arun_notes(agent, "noted-1") == found.notes  # (the notes alone)
        assert await arun_notes(agent, "noted-2") is None  # (no such run)
        assert await arun_notes(agent, "noted-") is None  # (an id, not a prefix)
        assert not found.cancelled
        assert await arun_named(agent, "r2") == "noted-1"
        assert await arun_named(agent, "r3") is None
        assert await arun_named(agent, "noted-1") is None  # a run's id is not a name


async def test_an_agent_finds_cancels_notes_and_names_only_its_own_runs(database: str) -> None:
    # (was: afind_runs gave the runs of every durable agent of the database, and acancel_run
    # and anote_run acted on any workflow id: another agent's run, a name's workflow)
    mine = _answering("MINE", database)
    theirs = _answering("THEIRS", database)
    async with MiniAgents():
        await _recorded(mine, "shared-1")
        await _recorded(theirs, "shared-2")
        await aname_run(mine, "n1", "shared-1")  # (a workflow of its own)
        assert [run.workflow_id for run in await afind_runs(mine, "shared-")] == ["shared-1"]
        assert [run.workflow_id for run in await afind_runs(theirs, "shared-", limit=1)] == [
            "shared-2"
        ]
        refused = "names a durable run of the agent THEIRS, not of MINE"
        with pytest.raises(DurableConfigurationError, match=refused):
            await acancel_run(mine, "shared-2")
        with pytest.raises(DurableConfigurationError, match=refused):
            await anote_run(mine, "shared-2", {"seen": 1})
        with pytest.raises(DurableConfigurationError, match=refused):
            await aname_run(mine, "n2", "shared-2")
        with pytest.raises(DurableConfigurationError, match=r"'miniagents\.durable\.name'"):
            await acancel_run(mine, "miniagents.durable.name@4:MINE:n1")
        await acancel_run(mine, "no-such-run")  # (nothing to cancel)
        [theirs_run] = await afind_runs(theirs, "shared-2")
        assert theirs_run.notes == {}
        assert not theirs_run.cancelled
        assert await arun_named(mine, "n1") == "shared-1"  # (the name's record kept)
        assert await arun_named(mine, "n2") is None  # (another agent's run: not named)


async def test_two_agents_of_one_database_name_their_own_runs_with_the_same_name(
    database: str,
) -> None:
    # (was: names were one space for the database: the second agent's name was dropped
    # silently, and it found no run by it)
    first = _answering("FIRST", database)
    second = _answering("SECOND", database)
    async with MiniAgents():
        await _recorded(first, "first-1")
        await _recorded(second, "second-1")
        await aname_run(first, "chat", "first-1")
        await aname_run(second, "chat", "second-1")
        assert await arun_named(first, "chat") == "first-1"
        assert await arun_named(second, "chat") == "second-1"


async def test_a_name_recorded_when_names_were_one_for_all_agents_is_still_found(
    database: str,
) -> None:
    from dbos import DBOS, SetWorkflowID

    from miniagents.ext.dbos.runs import _name_workflow

    agent = _answering("OLDER", database)
    other = _answering("NEWER", database)
    async with MiniAgents():
        await _recorded(agent, "older-1")
        await _recorded(agent, "older-2")
        await _recorded(other, "newer-1")
        with SetWorkflowID("miniagents.durable.name:kept"):  # (as the name was recorded)
            handle = await DBOS.start_workflow_async(_name_workflow(), "older-1")
        await handle.get_result()
        assert await arun_named(agent, "kept") == "older-1"
        await aname_run(agent, "kept", "older-2")  # the first name recorded is kept
        assert await arun_named(agent, "kept") == "older-1"
        assert await arun_named(other, "kept") is None  # (another agent's run)
        await aname_run(other, "kept", "newer-1")  # its own name, beside the other's
        assert await arun_named(other, "kept") == "newer-1"
        assert await arun_named(agent, "kept") == "older-1"


async def test_an_agent_reads_the_notes_cancels_and_names_of_its_own_runs_only(
    database: str,
) -> None:
    # (was: arun_notes gave another agent's run's notes, acancelled_runs said another
    # agent's run was cancelled, and arun_named gave the run another agent had named,
    # though afind_runs found none of them among the agent's runs)
    mine = _answering("MINE_READ", database)
    theirs = _answering("THEIRS_READ", database)
    async with MiniAgents():
        await _pending_elsewhere(theirs, database, "read")
        await acancel_run(theirs, "read-1")
        await anote_run(theirs, "read-0", {"seen": 1})
        await _recorded(mine, "read-2")
        assert await arun_notes(theirs, "read-0") == {"seen": 1}
        assert await arun_notes(mine, "read-0") is None  # (not its run: none of its own)
        assert await arun_notes(mine, "read-2") == {}
        asked = ["read-0", "read-1", "read-2", "no-such-run"]
        assert await acancelled_runs(theirs, asked) == {"read-1"}
        assert await acancelled_runs(mine, asked) == set()
        assert await afind_runs(mine, "read-") == [ANY]  # (as afind_runs finds them)
        await aname_run(theirs, "their-name", "read-0")
        assert await arun_named(theirs, "their-name") == "read-0"
        assert await arun_named(mine, "their-name") is None


order: list[str] = []
"""The order in which the fanned-out calls of ``_FAN_OUT`` reach their first model call."""

asked: dict[str, MessageSequencePromise] = {}
"""The replies of ``_FAN_OUT``'s calls of ``FANNED``, by their input."""


@miniagent(alias="GATE")
async def _gate(ctx: InteractionContext, name: str) -> None:
    for before in order[: order.index(name)]:  # its sub-agent's first call waits for theirs
        await asked[before]
    ctx.reply(name)


_FANNED = offline_agent.fork(
    alias="FANNED", reply=lambda call: f"Answer to {call.messages[-1].text}.", token_delay=0
)


@miniagent(alias="FAN_OUT")
async def _fan_out(ctx: InteractionContext) -> None:
    for name in ("A", "B"):  # the same agent twice at once, started in this order
        asked[name] = _FANNED.inquire(_gate.inquire(name=name))
        ctx.reply(asked[name])


async def test_calls_of_one_agent_at_once_replay_their_own_records_whatever_their_order(
    database: str,
) -> None:
    agent = durable(_fan_out, database_url=database)
    async with MiniAgents():
        order[:] = ["A", "B"]  # recorded: A's model call first
        with workflow_id("fanned-1"):
            first = [str(message) for message in await agent.inquire()]
        recorded = {name: str(await asked[name]) for name in order}
        order[:] = ["B", "A"]  # replayed: B's first
        again = [str(message) for message in await replay(agent, "fanned-1")]
        replayed = {name: str(await asked[name]) for name in order}
    assert first == again == ["Answer to A.", "Answer to B."]
    assert recorded == replayed == {"A": "Answer to A.", "B": "Answer to B."}


async def test_runs_are_found_by_the_exact_case_of_their_ids_start(database: str) -> None:
    # (was: SQLite's LIKE, which DBOS matches the prefix with, found "R1-new" for "r1" too,
    # and with a limit it gave that run in place of "r1-old")
    agent = _answering("CASED", database)
    async with MiniAgents():
        await _recorded(agent, "r1-old")
        await _recorded(agent, "R1-new")
        assert [run.workflow_id for run in await afind_runs(agent, "R1")] == ["R1-new"]
        assert [run.workflow_id for run in await afind_runs(agent, "r1")] == ["r1-old"]
        assert [run.workflow_id for run in await afind_runs(agent, "r1", limit=1)] == ["r1-old"]


def _pretend_remove(name: str) -> str:
    """Remove a file (pretend): it waits for a person's approval."""
    return f"removed {name}"


async def test_the_wait_for_approvals_ends_on_a_decision_or_after_its_seconds() -> None:
    """``aapprovals_open``: a request decided needs no approval in the database (``True`` at
    once); one whose approval nothing here starts is waited for ``seconds``, then ``False``;
    nothing is kept of either."""
    from miniagents.ext.dbos import _approvals

    tools = ToolSet([FunctionTool(_pretend_remove, requires_approval=True)])
    call = ToolCallMessage(tool_name="_pretend_remove", arguments={"name": "a"}, call_id="c1")
    async with MiniAgents():
        request = tools.approval_request(call)
        assert request is not None
        assert await aapprovals_open("no-run", [request], seconds=0.01) is False
        request.approve()
        assert await aapprovals_open("no-run", [request]) is True
        assert await aapprovals_open("no-run", []) is True
    assert not _approvals._opened


@miniagent(alias="ONE_BY_ONE")
async def _one_by_one(ctx: InteractionContext) -> None:
    for number in range(3):  # each interaction of FANNED ends before the next is inquired
        ctx.reply(await _FANNED.inquire(f"q{number}"))


async def test_each_interaction_of_a_run_keeps_its_own_key_whatever_the_id_of_its_context(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (was: an interaction's key was kept by the id of its context, which CPython gives a
    # later context once the first is collected: the later one's model call was recorded
    # under the first's key ("FANNED.0/llm.1"), so the process that recovered the run,
    # where ids are reused otherwise, called the model again or replayed another answer;
    # here every context has one id, as if each were collected before the next was made)
    from dbos import DBOS

    from miniagents.ext.dbos import _recording

    monkeypatch.setattr(_recording, "id", lambda _: 0, raising=False)
    agent = durable(_one_by_one, database_url=database)
    async with MiniAgents():
        with workflow_id("one-by-one-1"):
            first = [str(message) for message in await agent.inquire()]
        steps = await DBOS.list_workflow_steps_async("one-by-one-1")
        keys = sorted(step["output"][0] for step in steps if isinstance(step["output"], tuple))
        monkeypatch.undo()
        again = [str(message) for message in await replay(agent, "one-by-one-1")]
    assert first == again == [f"Answer to q{number}." for number in range(3)]
    assert [key.rpartition("/FANNED.")[2] for key in keys] == ["0/llm.0", "1/llm.0", "2/llm.0"]


inquired: dict[str, asyncio.Event] = {}
"""Set once ``_ASKER``'s call of that name has inquired its model agent (``FANNED``)."""


@miniagent(alias="ASKER")
async def _asker(ctx: InteractionContext, name: str) -> None:
    for before in order[: order.index(name)]:  # it asks its model after the ones before
        await inquired[before].wait()
    ctx.reply(_FANNED.inquire(name))
    inquired[name].set()


@miniagent(alias="ASKERS")
async def _askers(ctx: InteractionContext) -> None:
    for name in ("A", "B"):  # one plain agent twice at once, started in this order
        ctx.reply(_asker.inquire(name=name))


async def test_the_calls_of_agents_inquired_at_once_by_a_plain_agent_replay_their_own_records(
    database: str,
) -> None:
    # a plain agent's interactions (no model call of its own) are numbered where they are
    # inquired, and the agents they ask are numbered under them: the model agent that each
    # ASKER asks replays its own record, whatever order the two reach it in (was: numbered
    # under the run's root in the order they were asked, so B's call replayed A's answer)
    agent = durable(_askers, database_url=database)
    async with MiniAgents():
        order[:] = ["A", "B"]  # recorded: A's model agent asked first
        inquired.update({name: asyncio.Event() for name in order})
        with workflow_id("asked-1"):
            first = [str(message) for message in await agent.inquire()]
        order[:] = ["B", "A"]  # replayed: B's first
        inquired.update({name: asyncio.Event() for name in order})
        again = [str(message) for message in await replay(agent, "asked-1")]
    assert first == again == ["Answer to A.", "Answer to B."]


def _removing(call: LLMCall) -> ScriptedReply:
    """The model: remove ``a`` (a call that waits for approval), then say it is done."""
    if not any(isinstance(message, ToolResultMessage) for message in call.messages):
        return CallTool("_pretend_remove", {"name": "a"})
    return "Done."


async def _waiting(agent: MiniAgent[..., Message], run: str) -> MessageSequencePromise:
    """The reply of ``run`` of ``agent``, once its call waits for approval in the database."""
    with workflow_id(run):
        reply = agent.inquire("Remove a.")
    async for promise in reply:
        request = await promise
        if isinstance(request, ToolApprovalRequest):
            assert await aapprovals_open(run, [request]) is True
            return reply
    raise AssertionError(f"the run {run} asked for no approval")


async def _ended_approval(run: str) -> object:
    """What the one approval of ``run`` ended with (waited for, within a bound)."""
    from dbos import DBOS, WorkflowHandleAsync

    from miniagents.ext.dbos._approvals import APPROVAL_WORKFLOW

    [approval] = await DBOS.list_workflows_async(name=APPROVAL_WORKFLOW, workflow_id_prefix=run)
    handle: WorkflowHandleAsync[object] = await DBOS.retrieve_workflow_async(approval.workflow_id)
    return await asyncio.wait_for(handle.get_result(), 60)  # (a bound: it ends at once)


@pytest.mark.parametrize("by", ["acancel_run", "DBOS"])
async def test_a_run_cancelled_while_a_call_waits_for_approval_leaves_no_approval_waiting(
    database: str, by: str
) -> None:
    # (was: the call's approval, a DBOS workflow of its own, stayed PENDING: never listed,
    # never decided, recovered at every start of a process of the database and waiting
    # there forever; a web app cancels such a run when its thread starts a new one). It
    # ends withdrawn, as at the run's end: not cancelled, which made DBOS log the wait of
    # another live server on it as a traceback
    from dbos import DBOS

    tools = [FunctionTool(_pretend_remove, requires_approval=True)]
    remover = offline_agent.fork(alias="REMOVER", reply=_removing, tools=tools, token_delay=0)
    agent = durable(remover, database_url=database)
    async with MiniAgents():
        reply = await _waiting(agent, "cancelled-1")
        [pending] = await apending_approvals(database_url=database)
        if by == "acancel_run":
            await acancel_run(agent, "cancelled-1")
        else:  # (an operator: the process that runs the run withdraws its approvals)
            await DBOS.cancel_workflow_async("cancelled-1")
        with pytest.raises(
            DurableRunCancelledError, match="'cancelled-1' was cancelled"
        ) as stopped:
            await reply  # (was: DBOS's own DBOSWorkflowCancelledError, raw)
        assert isinstance(stopped.value, StreamCancelledError)  # (a cancellation, as such)
        assert "Start a new run under another workflow id" in str(stopped.value)  # (the fix)
        assert type(stopped.value.__cause__).__module__.startswith("dbos")  # (DBOS's stop)
    assert await _ended_approval("cancelled-1") == {"id": ANY, "by": "run", "withdrawn": True}
    assert await apending_approvals(database_url=database) == []
    with pytest.raises(DurableApprovalError, match=r"has ended \(CANCELLED\)"):
        await aapprove("cancelled-1", pending.call_id, database_url=database)


async def test_a_runs_approvals_are_told_apart_from_those_of_a_run_whose_id_differs_in_case(
    database: str,
) -> None:
    # (was: the approvals of a run were found by its id's start with SQL LIKE, which SQLite
    # compares regardless of case: "CASE-1" was said to wait for the decision "case-1" waits
    # for)
    tools = [FunctionTool(_pretend_remove, requires_approval=True)]
    remover = offline_agent.fork(alias="CASE_REMOVER", reply=_removing, tools=tools, token_delay=0)
    agent = durable(remover, database_url=database)
    answering = _answering("CASE_ANSWER", database)
    async with MiniAgents():
        pending_elsewhere(database, await _recorded(answering, "ended-1"), "CASE-1")
        reply = await _waiting(agent, "case-1")
        [other] = await afind_runs(answering, "CASE-1")
        assert (other.workflow_id, other.ended, other.waiting) == ("CASE-1", False, False)
        await acancel_run(answering, "CASE-1")
        assert len(await apending_approvals("case-1", database_url=database)) == 1  # still
        await acancel_run(agent, "case-1")
        with pytest.raises(DurableRunCancelledError, match="'case-1' was cancelled"):
            await reply  # (was: DBOS's own DBOSWorkflowCancelledError, raw)


async def test_a_requests_approval_is_open_on_its_own_not_when_another_call_of_its_id_is(
    database: str,
) -> None:
    # (was: the approvals opened were kept by run and call id, and the calls of nested
    # agents of one run may share a call id: a request whose approval was not in the
    # database yet was said to be, once another call of that id waited there)
    from miniagents.ext.dbos import _approvals

    tool = FunctionTool(_pretend_remove, requires_approval=True)
    remover = offline_agent.fork(alias="TWIN_REMOVER", reply=_removing, tools=[tool], token_delay=0)
    agent = durable(remover, database_url=database)
    async with MiniAgents():
        reply = await _waiting(agent, "twin-1")
        [first] = [message async for message in _requests(reply)]
        call = ToolCallMessage(
            tool_name=first.tool_name, arguments=dict(first.arguments), call_id=first.call_id
        )
        twin = ToolSet([tool]).approval_request(call)  # another call of the id, asked nowhere
        assert twin is not None
        assert twin.pending
        assert await aapprovals_open("twin-1", [twin], seconds=0.01) is False
        assert await aapprovals_open("twin-1", [first]) is True
        first.approve()
        assert [str(message) for message in await reply][-1] == "Done."
    assert not _approvals._opened


async def _requests(reply: MessageSequencePromise) -> AsyncIterator[ToolApprovalRequest]:
    """The approval requests of ``reply`` up to the first (read again from its start)."""
    async for promise in reply:
        message = await promise
        if isinstance(message, ToolApprovalRequest):
            yield message
            return


held: list[asyncio.Event] = []
"""``[started, go]``: set once ``HELD`` runs; what it waits for before it replies."""


@miniagent(alias="HELD")
async def _held(ctx: InteractionContext) -> None:
    held[0].set()
    await held[1].wait()
    ctx.reply(f"Reply to {(await ctx.messages)[0]}.")


async def _stopped_here(agent: MiniAgent[..., Message], run: str) -> Engine:
    """The engine, once it has stopped ``agent``'s run ``run`` (of :func:`_held`) as it began.

    Its reply, started here, ends with a ``DurableRunStoppedError``; the run stays pending.
    """
    from miniagents.ext.dbos import _engine

    held[:] = [asyncio.Event(), asyncio.Event()]
    with workflow_id(run):
        first = agent.inquire("Hello?")
    await held[0].wait()
    engine = _engine.current_engine()
    assert engine is not None
    engine.stop(run)
    with pytest.raises(DurableRunStoppedError):
        await first
    return engine


@miniagent(alias="STREAMING_HELD")
async def _streaming_held(ctx: InteractionContext) -> None:
    with MessageTokenAppender() as appender:
        ctx.reply(appender.promise)
        appender.append("Hel")
        held[0].set()
        await held[1].wait()  # (stopped here, the message half streamed)
        appender.append("lo")


async def test_the_messages_a_stopped_run_streamed_end_with_the_reason_of_its_stop(
    database: str,
) -> None:
    # (was: only the reply ended with the stop's DurableRunStoppedError; the message the
    # agent was streaming ended with the generic "cancel() was called on it" text)
    from miniagents.ext.dbos import _engine

    agent = durable(_streaming_held, database_url=database)
    held[:] = [asyncio.Event(), asyncio.Event()]
    async with MiniAgents():
        with workflow_id("streaming-1"):
            reply = agent.inquire("Hello?")
        async for promise in reply:
            await held[0].wait()
            engine = _engine.current_engine()
            assert engine is not None
            engine.stop("streaming-1", "stopped in a test")
            with pytest.raises(StreamCancelledError) as stopped:
                await promise
            break
        with pytest.raises(DurableRunStoppedError) as whole:
            await reply
    assert str(stopped.value) == str(whole.value)
    assert "'streaming-1' stopped in this process before it ended: stopped in a test" in str(
        stopped.value
    )


async def test_a_workflow_id_gives_the_reply_of_its_run_still_running_to_the_same_input_only(
    database: str,
) -> None:
    # (was: while the run ran in this process, a call under its id with another input got
    # its live reply, unchecked: the check of its agent and input came only once it ended)
    agent = durable(_held, database_url=database)
    async with MiniAgents():
        held[:] = [asyncio.Event(), asyncio.Event()]
        with workflow_id("held-1"):
            first = agent.inquire("Hello?")
        await held[0].wait()
        with workflow_id("held-1"):
            other = agent.inquire("Other?")
        with pytest.raises(DurableConfigurationError, match="with other input messages"):
            await other
        with workflow_id("held-1"):
            same = agent.inquire("Hello?")  # its live reply
        held[1].set()
        assert [str(message) for message in await same] == ["Reply to Hello?."]
        assert [str(message) for message in await first] == ["Reply to Hello?."]


async def test_a_run_id_that_holds_the_mark_of_an_approval_is_refused(database: str) -> None:
    # an approval's workflow id is "<run id>::approval<key>": a run so named was taken for
    # an approval of another run (was: DBOS's log lines of a run "refund::approval1" were
    # left out once a run "refund" stopped, and "refund"'s approvals, listed by the prefix
    # "refund::approval", took in that run's)
    with pytest.raises(DurableRecordError, match="::approval"), workflow_id("refund::approval1"):
        pass
    marked = offline_agent.fork(alias="MARKED::approval", reply=_answer, token_delay=0)
    # its runs are named by their input, so their ids begin with the alias: refused as the
    # agent is made (was: only at a run's start, once its input had been read)
    with pytest.raises(DurableRecordError, match=r"alias 'MARKED::approval' .* without '::appr"):
        durable(marked, database_url=database, ids_by_input=True)
    agent = durable(marked, database_url=database)  # (its runs' ids random: it runs)
    async with MiniAgents():
        assert [str(message) for message in await agent.inquire("Hello?")] == ["Answer 1."]
    assert calls == ["Hello?"]


def _runs_of_refunds_recorded(url: str, runs: dict[str, str | None]) -> None:
    """Record a run of ``REFUNDS`` of each id of ``runs``, waiting in a queue nobody reads,
    with an approval that waits at the key it maps to, if any (in one transaction), written
    directly: as the runs recorded before ids holding ``::approval`` were refused."""
    from miniagents.ext.dbos._approvals import APPROVAL_WORKFLOW, approval_id
    from miniagents.ext.dbos._engine import _WORKFLOW

    workflows: list[Waiting] = []
    for run, key in runs.items():
        workflows.append(Waiting(_WORKFLOW, run, ("REFUNDS", ())))
        if key is not None:
            arguments: tuple[object, ...] = (run, key, "refund", "c1", {})
            workflows.append(Waiting(APPROVAL_WORKFLOW, approval_id(run, key), arguments))
    queued_nowhere(url, workflows)


@pytest.mark.parametrize("marked", ["refund::approval1", "refund::approval/1"])
async def test_the_approvals_of_a_run_whose_id_holds_the_mark_are_its_own_only(
    database: str, marked: str
) -> None:
    # a run recorded before ids holding "::approval" were refused ("refund::approval1"):
    # its approvals' ids begin with "refund::approval", the prefix of "refund"'s (was:
    # "refund" was told waiting for its decision, and cancelling it withdrew that call).
    # "refund::approval/1" (an old or crafted id: the mark, then "/" as a call's key
    # begins) made its approval's id read as "refund"'s by the id alone (was: "refund" told
    # waiting, its cancel withdrew the other run's call, whose own lookup found nothing)
    agent = durable(offline_agent.fork(alias="REFUNDS", reply=_answer), database_url=database)
    async with MiniAgents():
        assert await afind_runs(agent, "refund") == []  # (DBOS launched, its tables made)
        await asyncio.to_thread(
            _runs_of_refunds_recorded,
            database,
            {marked: "/REFUNDS.0/approval.c1.0", "refund": None},
        )
        waiting = {run.workflow_id: run.waiting for run in await afind_runs(agent, "refund")}
        assert waiting == {"refund": False, marked: True}
        await acancel_run(agent, "refund")
        assert await apending_approvals("refund", database_url=database) == []
        (call,) = await apending_approvals(marked, database_url=database)
        assert (call.workflow_id, call.call_id) == (marked, "c1")
        await aapprove(marked, "c1", database_url=database)  # (not withdrawn)


async def test_an_approval_is_read_as_its_own_runs_from_its_recorded_input() -> None:
    # the id alone cannot say whose approval it is once a run's id may hold the mark (an
    # id recorded before such ids were refused): "a::approval/b"'s approval at
    # "/approval.c1.0" is "a"'s at "/b::approval/approval.c1.0" too, read by the id
    # (was: the run ended at the first "::approval/", so "a"'s)
    from miniagents.ext.dbos._approvals import approval_id, is_approval_of, run_of_approval

    def recorded(run: str, key: str) -> dict[str, object]:
        return {"args": [run, key, "refund", "c1", {}], "kwargs": {}}

    for run in ("refund", "refund::approval1", "a::approval/b", "a::approval"):
        name = approval_id(run, "/approval.c1.0")
        assert run_of_approval(name, recorded(run, "/approval.c1.0")) == run
        assert is_approval_of(name, recorded(run, "/approval.c1.0"), run)
    crafted = approval_id("a::approval/b", "/approval.c1.0")
    assert not is_approval_of(crafted, recorded("a::approval/b", "/approval.c1.0"), "a")
    assert run_of_approval(crafted, recorded("a", "/approval.c1.0")) is None  # (not its id)
    assert run_of_approval(crafted, {"args": ["a"]}) is None
    assert run_of_approval(crafted, None) is None
    assert run_of_approval("a::approval/b", recorded("a", "/b")) == "a"  # (as recorded)


async def test_an_engine_keeps_the_ids_of_the_newest_runs_stopped_here_only() -> None:
    # (was: the id of every run stopped in the process, kept for its whole life: a
    # long-lived server's memory grew with each reader that gave up)
    from miniagents.ext.dbos import _engine

    engine = _engine.Engine("sqlite:///runs.sqlite", asyncio.get_running_loop(), None)
    for number in range(_engine.STOPPED_KEPT + 1):
        engine.stopped.add(f"stopped-{number}")
    assert (len(engine.stopped), engine.stopped.dropped) == (_engine.STOPPED_KEPT, 1)
    assert "stopped-0" not in engine.stopped
    assert f"stopped-{_engine.STOPPED_KEPT}" in engine.stopped


def _reads_together(
    monkeypatch: pytest.MonkeyPatch, prefix: str, read: list[str], *, most: int | None = None
) -> None:
    """Make the engine's first two reads of a run whose id starts with ``prefix`` each answer
    once both are read (two calls then hold its status at once); each read goes to ``read``.

    ``most``: the reads past that many fail, as a lost connection.
    """
    from miniagents.ext.dbos import _engine

    status_of, run = _engine._status_of, _engine._Database.run
    both = asyncio.Event()

    def counted(client: Any, workflow: str, **options: Any) -> Any:
        if workflow.startswith(prefix):
            read.append(workflow)
            if most is not None and len(read) > most:
                raise ConnectionError("the server of the database is down")
        return status_of(client, workflow, **options)

    async def together(database: Any, work: Any) -> Any:
        before = len(read)
        status = await run(database, work)
        if before < len(read) <= 2:
            if len(read) == 2:
                both.set()
            await both.wait()
        return status

    monkeypatch.setattr(_engine, "_status_of", counted)
    monkeypatch.setattr(_engine._Database, "run", together)


async def test_calls_of_one_input_that_ask_at_once_share_one_run_started_once(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with ids_by_input, two calls of one input are one run: both asked DBOS for its status
    # before either started it, so both started it (was: the second start, a task that
    # only waited for the first's record, was still running at the context's exit, and
    # the loop's end cancelled it: DBOS warned "Asyncio task cancelled for workflow or
    # step", depending on its 1 s poll of that record)

    from miniagents.ext.dbos import _engine

    agent = _answering("SHARED", database, ids_by_input=True)
    async with MiniAgents():  # (DBOS launched: its own tasks are not the runs')
        await agent.inquire("Launch.")
    arrived: list[str] = []
    started: list[str] = []
    check = _engine.check_run_id

    def starting(workflow: str) -> None:
        started.append(workflow)  # (checked as a new run starts)
        check(workflow)

    _reads_together(monkeypatch, "SHARED:", arrived)
    monkeypatch.setattr(_engine, "check_run_id", starting)
    before = asyncio.all_tasks()
    async with MiniAgents():
        first, second = agent.inquire("Hello?"), agent.inquire("Hello?")
        replies = [[str(m) for m in await first], [str(m) for m in await second]]
    left = [task for task in asyncio.all_tasks() - before if not task.done()]
    assert replies == [["Answer 2."], ["Answer 2."]]
    assert len(set(arrived)) == 1
    assert started == arrived[:1]  # (was: started twice)
    assert left == []  # (was: the second start, polling)
    assert calls == ["Launch.", "Hello?"]


def _in_approval(run: str, key: str, log: Callable[[], None]) -> None:
    """Call ``log`` as the task of the approval of ``run``'s call at ``key`` would (its body
    says so as it starts)."""
    from miniagents.ext.dbos import _approvals

    _approvals._approving.set((_approvals.approval_id(run, key), run))
    log()


class _InWorkflow:
    """Stands for DBOS's class in the log filter: the workflow its log line is of."""

    workflow_id: str | None = None


async def test_dboss_cancel_line_of_a_run_whose_id_holds_the_mark_is_read_as_that_runs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DBOS logs "Asyncio task cancelled for workflow or step ..." when a workflow's task or
    # its step's is cancelled; the engine leaves the line out for a run stopped here, or an
    # approval of one. A run recorded before ids holding "::approval" were refused
    # ("refund::approval1") was read as an approval of "refund" (was: stopped here, its
    # line was shown; running here while "refund" had stopped, its line was left out)
    import logging

    from miniagents.ext.dbos import _approvals, _engine

    engine = _engine.Engine("sqlite:///runs.sqlite", asyncio.get_running_loop(), None)
    monkeypatch.setattr(_engine._process, "engine", engine)
    monkeypatch.setattr(_engine, "_dbos", lambda: _InWorkflow)
    _engine._released_logs.install()
    dbos_logger = logging.getLogger("dbos")

    def told(
        workflow: str, *, stopped: str, running: str | None = None, of: str | None = None
    ) -> bool:
        """Whether DBOS's cancel line of ``workflow`` is logged, ``stopped`` stopped here
        (``of``: the run whose approval ``workflow`` is, logged in that approval's task)."""
        engine.stopped = _engine._RecentIds(_engine.STOPPED_KEPT)
        engine.stopped.add(stopped)
        engine.bodies = {} if running is None else {running: body}
        _InWorkflow.workflow_id = workflow
        caplog.clear()
        line = f"Asyncio task cancelled for workflow or step {workflow}"
        if of is None:
            dbos_logger.warning(line)
        else:
            key = workflow.removeprefix(_approvals.approval_id(of, ""))
            contextvars.copy_context().run(_in_approval, of, key, lambda: dbos_logger.warning(line))
        return any(workflow in record.getMessage() for record in caplog.records)

    body = asyncio.ensure_future(asyncio.sleep(0))
    await body
    dbos_logger.addHandler(caplog.handler)
    old = "refund::approval1"
    crafted = "refund::approval/1"  # (an old id: the mark, then "/" as a call's key begins)
    try:
        assert not told(old, stopped=old)
        assert told(old, stopped="refund", running=old)
        assert told(old, stopped="refund")  # (a run, even when not running here)
        assert not told(f"{old}::approval/REFUNDS.0/approval.c1.0", stopped=old, of=old)
        assert not told("refund::approval/REFUNDS.0/approval.c1.0", stopped="refund", of="refund")
        assert told("refund::approval/REFUNDS.0/approval.c1.0", stopped=old, of="refund")
        assert told(crafted, stopped="refund")
        assert told(f"{crafted}::approval/approval.c1.0", stopped="refund", of=crafted)
        assert not told(f"{crafted}::approval/approval.c1.0", stopped=crafted, of=crafted)
        assert told("refund-2", stopped="refund")
    finally:
        dbos_logger.removeHandler(caplog.handler)


async def test_a_run_stopped_here_and_forgotten_is_told_stopped_when_asked_again(
    database: str,
) -> None:
    # a run stopped here whose id the engine no longer keeps (see above), asked for again,
    # is this process's run that nothing runs: it is told stopped after the engine's
    # unclaimed_wait (was: its end was waited for forever), and asked again it runs on
    agent = durable(_held, database_url=database)
    async with MiniAgents():
        engine = await _stopped_here(agent, "forgotten-1")
        engine.stopped.limit = 1  # (as past STOPPED_KEPT)
        engine.stopped.add("another-run")  # its id is dropped
        assert "forgotten-1" not in engine.stopped
        engine.unclaimed_wait = 0.05
        with workflow_id("forgotten-1"):
            again = agent.inquire("Hello?")
        with pytest.raises(DurableRunStoppedError, match="ask for it again"):
            await asyncio.wait_for(again.aresolve_messages(), 30)
        held[1].set()
        with workflow_id("forgotten-1"):
            on = agent.inquire("Hello?")
        assert [str(m) for m in await asyncio.wait_for(on.aresolve_messages(), 30)] == [
            "Reply to Hello?."
        ]


async def test_a_lazy_agents_run_stopped_before_its_task_started_ends_its_reader(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a lazy agent (start_asap=False) whose run is stopped as soon as its reply is
    # published, before the agent's task started: its reader gets the run's stop, nothing
    # waits for ever, and asked again the run runs on here
    from miniagents.ext.dbos import _engine

    lazy = _held.fork(alias="LAZY_HELD", start_asap=False)
    agent = durable(lazy, database_url=database)
    held[:] = [asyncio.Event(), asyncio.Event()]
    async with MiniAgents():
        engine = await _engine.aengine_for(database)
        publish = engine.published

        def stopped_at_once(run: str) -> asyncio.Future[MessageSequencePromise]:
            future = publish(run)  # (its done callback runs before the agent's task does)
            future.add_done_callback(lambda _: engine.stop(run, "stopped in a test"))
            return future

        monkeypatch.setattr(engine, "published", stopped_at_once)
        with workflow_id("lazy-1"):
            reply = agent.inquire("Hello?")
        with pytest.raises(DurableRunStoppedError, match="stopped in a test"):
            await asyncio.wait_for(reply.aresolve_messages(), 30)
        assert not held[0].is_set()  # (the agent's task never ran)
        monkeypatch.setattr(engine, "published", publish)
        held[1].set()
        with workflow_id("lazy-1"):
            again = agent.inquire("Hello?")
        assert [str(m) for m in await asyncio.wait_for(again.aresolve_messages(), 30)] == [
            "Reply to Hello?."
        ]


async def test_a_run_stopped_while_a_call_waits_keeps_its_approval_and_goes_on_asked_again(
    database: str,
) -> None:
    # A run stopped by a plain cancellation (its reader gave up, its context or its loop
    # ended, the process is shutting down) has not ended: DBOS keeps it pending, and asked
    # again (or recovered at the next launch) it goes on from its steps. Its call waits for
    # the same approval then, so the approval is not withdrawn at that stop (withdrawn, the
    # call would go on denied, "the run ended before the call was decided")
    from miniagents.ext.dbos import _engine

    tools = [FunctionTool(_pretend_remove, requires_approval=True)]
    remover = offline_agent.fork(alias="STOPPED", reply=_removing, tools=tools, token_delay=0)
    agent = durable(remover, database_url=database)
    async with MiniAgents():
        reply = await _waiting(agent, "stopped-1")
        reading = asyncio.ensure_future(_read_whole(reply, started := asyncio.Event()))
        await started.wait()
        reading.cancel()  # its reader gives up, and the run stops here, unrecorded, as a
        engine = _engine.current_engine()  # durable pipeline's try that timed out does
        assert engine is not None
        engine.stop("stopped-1")
        with pytest.raises(asyncio.CancelledError):
            await reading
    [pending] = await apending_approvals(database_url=database)  # (it waits on)
    await aapprove("stopped-1", pending.call_id, database_url=database)
    async with MiniAgents():
        with workflow_id("stopped-1"):
            again = await agent.inquire("Remove a.")
    [result] = [message for message in again if isinstance(message, ToolResultMessage)]
    assert (result.text, result.is_error) == ("removed a", False)  # (approved: it ran)
    assert str(again[-1]) == "Done."


async def _read_whole(reply: MessageSequencePromise, started: asyncio.Event) -> object:
    """``reply`` read whole, ``started`` set as its reading starts."""
    started.set()
    return await reply


async def test_a_run_whose_agent_returned_here_is_not_cancelled_before_its_record(
    tmp_path: Path,
) -> None:
    # (was: `await agent.inquire()` returns before DBOS writes the run's record, and an
    # acancel_run in that moment cancelled the run: it ended CANCELLED, its reply unrecorded.
    # Here the file stays locked from the agent's return until acancel_run has returned, so
    # DBOS cannot write the record meanwhile; a cancel, which writes, would wait for the lock
    # and fail as it stays locked)
    from dbos import DBOS

    path = tmp_path / "runs.sqlite"
    lock = sqlite3.connect(path, isolation_level=None)

    @miniagent(alias="RETURNED")
    async def returned(ctx: InteractionContext) -> None:
        ctx.reply("Done.")
        lock.execute("BEGIN IMMEDIATE")  # (the last thing the agent does)

    agent = durable(returned, database_url=f"sqlite:///{path}")
    try:
        async with MiniAgents():
            with workflow_id("returned-1"):
                assert [str(message) for message in await agent.inquire()] == ["Done."]
            try:
                # (afind_runs said such a run had not ended: its record says PENDING yet)
                [found] = await afind_runs(agent, "returned-1")
                assert found.ended
                assert await afind_runs(agent, "returned-1", running_only=True) == []
                await acancel_run(agent, "returned-1")  # the agent has returned: it ended
            finally:
                lock.execute("ROLLBACK")
        [run] = await afind_runs(agent, "returned-1")
        assert (run.ended, run.cancelled) == (True, False)
        assert await acancelled_runs(agent, ["returned-1"]) == set()
    finally:
        lock.close()
        DBOS.destroy(destroy_registry=False)


async def test_a_replay_of_a_run_stopped_here_reads_its_status_once(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # replay read the run's status, then the engine read it again through DBOS: a second
    # round trip of the database per replay (the replay's read is given to the engine)
    from dbos import DBOS

    agent = durable(_held, database_url=database)
    async with MiniAgents():
        await _stopped_here(agent, "replayed-stopped-1")
        read: list[str] = []
        asked = DBOS.get_workflow_status_async

        async def counted(workflow: str, **options: object) -> object:
            read.append(workflow)
            return await asked(workflow, **options)  # type: ignore[arg-type]

        monkeypatch.setattr(DBOS, "get_workflow_status_async", counted)
        held[1].set()  # (resumed, the agent replies at once)
        again = [str(message) for message in await replay(agent, "replayed-stopped-1")]
    assert again == ["Reply to Hello?."]
    assert read == []  # (was: ["replayed-stopped-1"], the engine's own read)


async def test_a_call_that_shares_a_run_published_meanwhile_reads_no_record(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a call under the id of a run about to start here waits for its reply, then checked
    # its input against the run's record, read through DBOS's call, which retries a lost
    # connection with no bound: the server down then held the call, though the run's
    # inputs were here (here, a read past the calls' first ones fails as a lost connection)

    # (no elsewhere_timeout: the wait for the run's end reads no status of its own)
    agent = _answering("PUBLISHED", database, ids_by_input=True, elsewhere_timeout=None)
    async with MiniAgents():  # (DBOS launched: its own reads are not the calls')
        await agent.inquire("Launch.")
    read: list[str] = []
    _reads_together(monkeypatch, "PUBLISHED:", read, most=2)
    async with MiniAgents():
        first, second = agent.inquire("Hello?"), agent.inquire("Hello?")
        replies = [[str(m) for m in await first], [str(m) for m in await second]]
    assert replies == [["Answer 2."], ["Answer 2."]]
    assert len(read) == 2  # (was: 3, the shared call's read of the run's record)


async def test_a_replay_that_waits_through_dbos_checks_the_database_less_and_less_often(
    virtual_clock: VirtualClock,
) -> None:
    # (was: a read every second, 301 of them while a run of another process ended there)
    from miniagents.ext.dbos import _engine

    checks: list[float] = []

    class _Counted(_engine._Database):
        async def run(self, work: object) -> Any:
            checks.append(virtual_clock.elapsed)

    database = _Counted("sqlite:///unread.sqlite")
    ended = await database.awhile_reachable("waited-1", asyncio.sleep(301, "ended"))
    assert ended == "ended"
    assert checks == [1, 3, 7, *range(15, 301, 15)]  # (at most 15 s apart)


async def _stalled(workflow: str, *args: object, **options: object) -> None:
    """DBOS's read through an outage: it retries, and never answers."""
    await asyncio.Event().wait()


async def test_a_run_asked_again_by_its_id_in_an_outage_is_an_error_not_a_wait(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a call asked again under the id of a run held elsewhere read its status through
    # DBOS's call, which retries through an outage with no bound: it stalled (was: no
    # answer; now the engine's kept client reads it, and fails at once)
    from dbos import DBOS

    agent = _answering("OUTAGEASKED", database, elsewhere_timeout=3600)
    async with MiniAgents():
        await _pending_elsewhere(agent, database, "outage")
        monkeypatch.setattr(DBOS, "get_workflow_status_async", _stalled)
        monkeypatch.setattr(DBOS, "get_result_async", _stalled)
        with (
            kept_client_outage(),
            pytest.raises(DurableDatabaseError, match="is not a SQLite database") as caught,
        ):
            await asyncio.wait_for(_asked_again(agent, "outage-1").aresolve_messages(), 30)
    assert "move it away" in str(caught.value)  # (the fix)


async def test_a_wait_for_a_run_held_elsewhere_in_an_outage_says_so_not_a_timeout(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the wait for the end of a run held elsewhere went through DBOS's wait, which retries
    # through an outage: past elsewhere_timeout, the outage was told as a run that "did
    # not end within 0.5 seconds" (was: so; now the database's failure, chained)
    from dbos import DBOS

    agent = _answering("OUTAGEWAITED", database, elsewhere_timeout=0.5)
    waits = asyncio.Event()

    async def stalled(workflow: str) -> None:
        waits.set()
        await _stalled(workflow)

    async with MiniAgents():
        await _pending_elsewhere(agent, database, "waited")
        monkeypatch.setattr(DBOS, "get_result_async", stalled)
        reply = _asked_again(agent, "waited-1")
        resolved = asyncio.ensure_future(reply.aresolve_messages())
        await waits.wait()  # (the run's status was read: its wait meets the outage)
        with kept_client_outage(), pytest.raises(DurableDatabaseError) as caught:
            await asyncio.wait_for(resolved, 30)
    said = str(caught.value)
    assert said.startswith("The durable run 'waited-1' was waited for, but the database"), said
    assert "an outage, not a run that is slow to end" in said
    assert "did not end within" not in said
    assert "file is not a database" in str(caught.value.__cause__)  # (the driver's error)


def _lost_reading(monkeypatch: pytest.MonkeyPatch, lost: Callable[[str], bool]) -> None:
    """Make the engine's kept client read in an outage (see :func:`kept_client_outage`) each
    run for which ``lost`` of its id says so, at that time; DBOS's reads stall."""
    from dbos import DBOS

    from miniagents.ext.dbos import _engine

    status = _engine._Database.astatus

    async def in_an_outage(runs: Any, workflow: str, **options: Any) -> Any:
        with kept_client_outage() if lost(workflow) else contextlib.nullcontext():
            return await status(runs, workflow, **options)

    monkeypatch.setattr(_engine._Database, "astatus", in_an_outage)
    monkeypatch.setattr(DBOS, "get_workflow_status_async", _stalled)


def _remover(alias: str, database: str) -> MiniAgent[..., Message]:
    """A durable agent that removes ``a`` once a person approves (see :func:`_removing`)."""
    tools = [FunctionTool(_pretend_remove, requires_approval=True)]
    remover = offline_agent.fork(alias=alias, reply=_removing, tools=tools, token_delay=0)
    return durable(remover, database_url=database)


def _failed_in_an_outage(messages: tuple[Message, ...]) -> None:
    """Check that the call of ``messages`` failed as the database was lost, and the run went on."""
    [failed] = [message for message in messages if isinstance(message, ToolResultMessage)]
    assert failed.is_error
    said = str(failed)  # (the model is told, as of any tool)
    assert said.startswith("The tool _pretend_remove failed: DurableDatabaseError:"), said
    assert "is not a SQLite database" in said
    assert "move it away" in said  # (the fix)
    assert str(messages[-1]) == "Done."


async def test_a_call_that_waits_for_approval_in_an_outage_is_an_error_not_a_wait(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a call that waits for approval read whether its approval was started through DBOS's
    # call, which retries through an outage with no bound: the run stalled there (was: no
    # answer; now the engine's kept client reads it, and the call fails at once, its error
    # given to the model as any tool's)
    from miniagents.ext.dbos._approvals import APPROVAL_MARK

    agent = _remover("LOST_REMOVER", database)
    _lost_reading(monkeypatch, lambda workflow: APPROVAL_MARK in workflow)
    async with MiniAgents():
        with workflow_id("lost-1"):
            reply = agent.inquire("Remove a.")
        _failed_in_an_outage(await asyncio.wait_for(reply.aresolve_messages(), 30))


async def test_a_call_whose_approval_is_withdrawn_in_an_outage_is_an_error_not_a_wait(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a call whose approval was withdrawn read whether its run was cancelled through DBOS's
    # call, which retries through an outage with no bound: the run stalled there (was: no
    # answer; now the engine's kept client reads it, and the call fails at once)
    from dbos import DBOS

    from miniagents.ext.dbos._approvals import APPROVAL_WORKFLOW, withdraw

    agent = _remover("WITHDRAWN_REMOVER", database)
    waits = False
    _lost_reading(monkeypatch, lambda workflow: waits and workflow == "withdrawn-1")
    async with MiniAgents():
        reply = await _waiting(agent, "withdrawn-1")
        waits = True  # (its approval started: the run's status is read once it is withdrawn)
        [approval] = await DBOS.list_workflows_async(
            name=APPROVAL_WORKFLOW, workflow_id_prefix="withdrawn-1"
        )
        await withdraw(database, {approval.workflow_id})  # (as at the run's end elsewhere)
        _failed_in_an_outage(await asyncio.wait_for(reply.aresolve_messages(), 30))


@pytest.mark.parametrize("stalled", ["start_workflow_async", "get_event_async", "marked"])
async def test_a_call_whose_approval_dbos_waits_on_in_an_outage_is_an_error_not_a_wait(
    database: str, monkeypatch: pytest.MonkeyPatch, stalled: str
) -> None:
    # a call that waits for approval started its approval, waited for its decision and
    # marked a decision given here as sent through DBOS's calls, which retry through an
    # outage with no bound: the run stalled there (was: no answer; now the engine's kept
    # client reads the approval meanwhile, and the call fails once it cannot)
    from dbos import DBOS

    from miniagents.ext.dbos._approvals import APPROVAL_MARK, APPROVAL_WORKFLOW

    agent = _remover(f"STALLED_REMOVER_{stalled.upper()}", database)
    waits = asyncio.Event()  # (DBOS's call stalls: the kept client's reads fail from then on)
    name = "update_workflow_attributes_async" if stalled == "marked" else stalled
    original = getattr(DBOS, name)

    async def stalls(*args: Any, **options: Any) -> Any:
        if (
            name == "start_workflow_async"
            and getattr(args[0], "__name__", "") != "_approval_workflow"
        ):
            return await original(*args, **options)  # (only the approval's start stalls)
        waits.set()
        return await asyncio.Event().wait()  # (never answers)

    monkeypatch.setattr(DBOS, name, stalls)
    _lost_reading(monkeypatch, lambda workflow: waits.is_set() and APPROVAL_MARK in workflow)
    async with MiniAgents():
        with workflow_id(f"stalled-{stalled}"):
            reply = agent.inquire("Remove a.")
        async for promise in reply:
            request = await promise
            if isinstance(request, ToolApprovalRequest) and stalled == "marked":
                # its approval started: decided here, claimed and sent, then marked sent
                assert await aapprovals_open("stalled-marked", [request]) is True
                request.approve()
        messages = await asyncio.wait_for(reply.aresolve_messages(), 30)
        assert waits.is_set()
        _failed_in_an_outage(messages)
        [failed] = [message for message in messages if isinstance(message, ToolResultMessage)]
        assert f"The approval 'stalled-{stalled}{APPROVAL_MARK}" in str(failed)
        assert "could not be read meanwhile (an outage" in str(failed)
        await DBOS.list_workflows_async(name=APPROVAL_WORKFLOW)  # (DBOS answers again)
