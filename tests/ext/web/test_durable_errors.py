"""What a durable app's client is told of a failed run, live and read again after restarts.

A durable run's failure is told under the reference the server's log has it under, however
often and after however many restarts the run is read; a run that DBOS stopped is told a
sentence of the library's, DBOS's own text logged for the operator.

These tests launch DBOS in the test's process, on a SQLite file, and destroy it at their end;
a restart is a new event loop (``asyncio.run``), on which DBOS is destroyed and launched
again, and a new app of the same agent.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest
from starlette.applications import Starlette

from miniagents import (
    InteractionContext,
    Message,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.ext import told_errors
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.web import NoAuthentication
from miniagents.ext.web._durable import DurableJobs
from tests.ext.web.serving import (
    PROTOCOLS,
    Protocol,
    SSEEvent,
    get_events,
    post_events,
    served,
)

SECRET = "https://api.example.com/v1?key=sk-secret-1234"
LOGGER = "miniagents.ext.web"
TOLD = re.compile(
    r"The agent LEAKY(?:_AGUI|_AI_SDK)? failed with ConnectionError\. The server's log has "
    r"the error under the reference ([0-9a-f]{32}): ask the agent's operator to look it up "
    r"there\."
)


@miniagent
async def leaky(ctx: InteractionContext) -> None:
    ctx.reply("Partial answer")
    raise ConnectionError(f"The call to {SECRET} failed.")


def _told_reference(events: list[SSEEvent]) -> str:
    """The reference the failure's last event tells (AG-UI's ``message``, the AI SDK's
    ``errorText``)."""
    ending = next(event.json for event in reversed(events) if event.data != "[DONE]")
    assert ending["type"] in ("RUN_ERROR", "error"), events
    text = ending.get("message", ending.get("errorText"))
    found = TOLD.fullmatch(text)
    assert found is not None, text
    return found[1]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
def test_a_failed_durable_run_read_again_after_restarts_tells_the_reference_logged_then(
    protocol: Protocol, tmp_path: Path, caplog: pytest.LogCaptureFixture, destroyed: None
) -> None:
    """A durable run fails: its client is told a reference, the log has the error under it.
    Read again by a new app after a restart of DBOS, twice, and after another restart, the
    run's replay fails as it did and is told under that same reference, logged once. (Each
    read after a restart told, and logged, a new reference: the client's no longer matched
    the operator's log of the failure.)"""
    caplog.set_level(logging.ERROR, logger=LOGGER)
    agent = durable(
        leaky.fork(alias=f"LEAKY_{protocol.name.upper()}"),
        database_url=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    follow = {"last-event-id": "0"}  # (the AI SDK replays an ended chat from an event id)

    async def started() -> str:
        async with served(protocol.app(agent, authentication=NoAuthentication())) as client:
            _response, events = await post_events(client, protocol.body("k1"))
        assert SECRET not in "".join(event.data for event in events)
        return _told_reference(events)

    async def read_again(times: int) -> list[str]:
        app = protocol.app(agent, authentication=NoAuthentication())
        told: list[str] = []
        async with served(app) as client:
            for _ in range(times):
                response, events = await get_events(client, protocol.resume_path("k1"), follow)
                assert response.status_code == 200, response
                told.append(_told_reference(events))
        return told

    first = asyncio.run(started())
    again = asyncio.run(read_again(2))  # (DBOS launched again, on a new loop: a restart)
    last = asyncio.run(read_again(1))
    assert [*again, *last] == [first] * 3
    logged = [record for record in caplog.records if record.name == LOGGER]
    assert len(logged) == 1, [record.getMessage() for record in logged]
    assert (
        logged[0]
        .getMessage()
        .endswith(f" run 'k1' failed with ConnectionError (reference {first}).")
    )
    assert logged[0].exc_info is not None
    assert SECRET in str(logged[0].exc_info[1])


STEP_TOLD = re.compile(
    r"The server, streaming the run, failed with TypeError\. The server's log has the error "
    r"under the reference ([0-9a-f]{32}): ask the server's operator to look it up there\."
)


@miniagent
async def greeting(ctx: InteractionContext) -> None:
    ctx.reply("Hello")


def _not_text_events(app: Starlette) -> Starlette:
    """``app``, its protocol's encoder making an event that is not text (a protocol's bug:
    the job's own step, which logs it, fails)."""
    protocol = app.state.runs.protocol
    make_encoder = protocol.encoder

    def not_text(*args: object) -> object:
        encoder = make_encoder(*args)
        encoder.events = lambda _part: [None]
        return encoder

    protocol.encoder = not_text
    return app


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
def test_a_durable_runs_failed_step_read_again_after_a_restart_tells_the_reference_logged_then(
    protocol: Protocol, tmp_path: Path, caplog: pytest.LogCaptureFixture, destroyed: None
) -> None:
    """A durable job's own step fails (its protocol's encoder): its client is told a
    reference, the log has the error under it. Read again after restarts, the replay fails
    the same step and is told under that same reference, logged once. (Each read after a
    restart told, and logged, a new reference, as the agent's failures once were.)"""
    caplog.set_level(logging.ERROR, logger=LOGGER)
    agent = durable(
        greeting.fork(alias=f"GREETING_{protocol.name.upper()}"),
        database_url=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    follow = {"last-event-id": "0"}

    def told(events: list[SSEEvent]) -> str:
        ending = next(event.json for event in reversed(events) if event.data != "[DONE]")
        assert ending["type"] in ("RUN_ERROR", "error"), events
        found = STEP_TOLD.fullmatch(ending.get("message", ending.get("errorText")))
        assert found is not None, ending
        return found[1]

    async def started() -> str:
        app = _not_text_events(protocol.app(agent, authentication=NoAuthentication()))
        async with served(app) as client:
            _response, events = await post_events(client, protocol.body("k1"))
        return told(events)

    async def read_again() -> str:
        app = _not_text_events(protocol.app(agent, authentication=NoAuthentication()))
        async with served(app) as client:
            response, events = await get_events(client, protocol.resume_path("k1"), follow)
        assert response.status_code == 200, response
        return told(events)

    first = asyncio.run(started())
    again = [asyncio.run(read_again()) for _ in range(2)]  # (DBOS launched again: a restart)
    assert again == [first] * 2
    logged = [record for record in caplog.records if record.name == LOGGER]
    assert len(logged) == 1, [record.getMessage() for record in logged]
    assert logged[0].getMessage().endswith(f" failed with TypeError (reference {first}).")


async def test_a_failures_reference_is_read_from_the_runs_notes_not_its_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destroyed: None
) -> None:
    """The reference a failed run's failure was logged under is read from the notes kept
    with the run, in one query: none of its steps (each with its recorded result) is read.
    (It was found with ``afind_runs``, which reads every step of the run.)"""
    from dbos import DBOS

    agent = durable(leaky.fork(alias="LEAKY_NOTED"), database_url=f"sqlite:///{tmp_path / 'r.db'}")
    async with MiniAgents():
        with workflow_id("failed-1"), pytest.raises(ConnectionError):
            await agent.inquire()
        jobs = DurableJobs(agent, "ag-ui")
        failure = ConnectionError(f"The call to {SECRET} failed.")
        await jobs.anote_failure("failed-1", failure, "ref-1", logging.getLogger(LOGGER))

        def no_steps(*args: object, **kwargs: object) -> NoReturn:
            raise AssertionError("the run's steps were read")

        monkeypatch.setattr(DBOS, "list_workflow_steps_async", no_steps)
        assert await jobs.alogged_failure("failed-1", failure) == "ref-1"
        assert await jobs.alogged_failure("failed-1", ConnectionError("Another.")) == ""
        assert await jobs.alogged_failure("failed-2", failure) == ""  # (no such run)


def test_the_low_level_gives_the_told_errors_kit_whole() -> None:
    """A protocol of another package says what failed in its own words, as the durable run
    DBOS stopped does, and ends them with ``told_reference``: the low level gives it beside
    ``told_error``. (It gave ``told_error``, ``ToldError`` and ``ToldResult`` alone.)"""
    from miniagents.ext.web import lowlevel

    kit = {"ToldError", "ToldResult", "told_error", "told_reference"}
    assert kit <= set(lowlevel.__all__)
    assert all(getattr(lowlevel, name) is getattr(told_errors, name) for name in kit)


@miniagent
async def taken_over(ctx: InteractionContext) -> None:
    """A live run's reply that DBOS stops: it raises DBOS's own error, no ``Exception``."""
    from dbos import error

    ctx.reply("Partial answer")
    raise error.DBOSWorkflowConflictIDError("ag-ui:internal-detail")


class _StoppedByDBOS(DurableJobs):
    """A durable agent's runs whose live replies DBOS stops (:func:`taken_over`'s)."""

    __slots__ = ()

    def started(
        self, workflow_id: str, messages: list[Message], kwargs: Mapping[str, object]
    ) -> MessageSequencePromise[Message]:
        return taken_over.inquire(messages, **kwargs)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_live_run_dbos_stopped_tells_a_sentence_and_logs_dbos_text(
    protocol: Protocol, tmp_path: Path, caplog: pytest.LogCaptureFixture, destroyed: None
) -> None:
    """DBOS stops a live run (not cancelled: it is no longer this execution's): its client
    is told a sentence of the library's, which says what happened and what to do, then
    where the log has the error in the words every error told by reference ends with
    (``told_reference``); the log has DBOS's error, its text in its traceback, under that
    reference, logged as ``told_error`` logs. (The client was told DBOS's own text, ``DBOS
    Error 1: Workflow ... is no longer owned by this execution``, and nothing was logged;
    then a reference sentence of its own, and a log line of its own.)"""
    caplog.set_level(logging.ERROR, logger=LOGGER)
    agent = durable(
        taken_over.fork(alias=f"TAKEN_OVER_{protocol.name.upper()}"),
        database_url=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    app = protocol.app(agent, authentication=NoAuthentication())
    web_name = "ag-ui" if protocol.name == "agui" else "ai-sdk"
    jobs = _StoppedByDBOS(agent, web_name)
    app.state.runs.durable = jobs
    async with served(app) as client:
        _response, events = await post_events(client, protocol.body("k1"))
    ending = next(event.json for event in reversed(events) if event.data != "[DONE]")
    assert ending["type"] in ("RUN_ERROR", "error"), events
    text = ending.get("message", ending.get("errorText"))
    told = re.fullmatch(
        r"The durable run '(.+)' was stopped by DBOS before its end, so its reply stops "
        r"here: ask again in a new run \(a new run id, or a new message of the chat\)\. "
        r"(.+)",
        text,
    )
    assert told is not None, text
    assert told[1].startswith(f"{web_name}:")
    assert '"k1"' in told[1]
    assert "internal-detail" not in "".join(event.data for event in events)
    assert "no longer owned" not in text
    logged = [record for record in caplog.records if record.name == LOGGER]
    assert len(logged) == 1, [record.getMessage() for record in logged]
    line = re.fullmatch(
        re.escape(f"The durable run {told[1]!r}, stopped by DBOS before its end, failed with ")
        + r"DBOSWorkflowConflictIDError \(reference ([0-9a-f]{32})\)\.",
        logged[0].getMessage(),
    )
    assert line is not None, logged[0].getMessage()
    assert told[2] == told_errors.told_reference(line[1])  # (the reference the log has it under)
    assert logged[0].exc_info is not None
    assert type(logged[0].exc_info[1]).__name__ == "DBOSWorkflowConflictIDError"
    assert (
        "DBOSWorkflowConflictIDError: DBOS Error 1: Workflow ag-ui:internal-detail is no "
        "longer owned by this execution"
    ) in caplog.text


class _HeldNotes(DurableJobs):
    """A durable agent's runs whose failure's note (``held``: its read, or its write) waits
    on :attr:`release`, a future the test holds; :attr:`waiting`, the job's task once it
    waits there."""

    __slots__ = ("held", "release", "waiting")

    def __init__(self, agent: MiniAgent[..., Message], protocol: str, held: str) -> None:
        super().__init__(agent, protocol)
        self.held = held
        self.release: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting: asyncio.Future[asyncio.Task[object]] = (
            asyncio.get_running_loop().create_future()
        )

    async def _hold(self, step: str) -> None:
        if step == self.held:
            task = asyncio.current_task()
            assert task is not None
            self.waiting.set_result(task)
            await self.release

    async def alogged_failure(self, workflow_id: str, error: Exception) -> str:
        await self._hold("read")
        return await super().alogged_failure(workflow_id, error)

    async def anote_failure(
        self, workflow_id: str, error: Exception, reference: str, logger: logging.Logger
    ) -> None:
        await self._hold("write")
        await super().anote_failure(workflow_id, error, reference, logger)


@pytest.mark.parametrize("held", ["read", "write"])
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_durable_runs_failed_step_cancelled_while_its_failure_is_noted_still_tells_it(
    protocol: Protocol, held: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, destroyed: None
) -> None:
    """A durable job's own step fails, and the job is cancelled (its server stops, say) while
    the failure's reference is read from, or noted with, its durable run: its run still ends
    with its error events, told under the reference logged. (It ended with no ending at all:
    the cancellation left the failure's handler before a word of it was written.)"""
    caplog.set_level(logging.ERROR, logger=LOGGER)
    agent = durable(
        greeting.fork(alias=f"GREETING_HELD_{protocol.name.upper()}"),
        database_url=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    app = _not_text_events(protocol.app(agent, authentication=NoAuthentication()))
    jobs = _HeldNotes(agent, "ag-ui" if protocol.name == "agui" else "ai-sdk", held)
    app.state.runs.durable = jobs
    async with served(app) as client:
        posted = asyncio.ensure_future(post_events(client, protocol.body("k1")))
        job_task = await jobs.waiting
        job_task.cancel()
        _response, events = await posted
    assert jobs.release.cancelled()  # (the job was cancelled while it waited there)
    ending = next(event.json for event in reversed(events) if event.data != "[DONE]")
    assert ending["type"] in ("RUN_ERROR", "error"), events
    found = STEP_TOLD.fullmatch(ending.get("message", ending.get("errorText")))
    assert found is not None, ending
    logged = [record for record in caplog.records if record.name == LOGGER]
    assert len(logged) == 1, [record.getMessage() for record in logged]
    assert logged[0].getMessage().endswith(f" failed with TypeError (reference {found[1]}).")


@pytest.mark.parametrize("ending", ["cancelled", "stopped"])
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_durable_agents_failure_cancelled_while_it_is_read_ends_as_the_cancellation(
    protocol: Protocol, ending: str, tmp_path: Path, destroyed: None
) -> None:
    """A durable agent fails, and its job is given up on (``cancelled``) or stopped with its
    server (``stopped``) while the failure's reference is read from its durable run: its
    run ends as the cancellation says (AG-UI's cancelled ``RUN_FINISHED``, the AI SDK's
    ``abort``; the server-stopped error), not with the agent's error, which was neither
    logged nor noted (a read after a restart is told the replay's failure)."""
    held = "read"
    agent = durable(
        leaky.fork(alias=f"LEAKY_HELD_{protocol.name.upper()}"),
        database_url=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    app = protocol.app(agent, authentication=NoAuthentication())
    jobs = _HeldNotes(agent, "ag-ui" if protocol.name == "agui" else "ai-sdk", held)
    app.state.runs.durable = jobs
    async with served(app) as client:
        posted = asyncio.ensure_future(post_events(client, protocol.body("k1")))
        job_task = await jobs.waiting
        if ending == "cancelled":
            job_task.cancel()
        else:
            app.state.runs.stop()
        _response, events = await posted
    assert jobs.release.cancelled()  # (the job was cancelled while it waited there)
    last = next(event.json for event in reversed(events) if event.data != "[DONE]")
    if ending == "cancelled":
        assert last in ({"type": "abort"}, {**last, "type": "RUN_FINISHED"}), events
        assert last.get("outcome", {"type": "cancelled"}) == {"type": "cancelled"}, last
    else:
        assert last["type"] in ("RUN_ERROR", "error"), events
        text = last.get("message", last.get("errorText"))
        assert text.startswith("The server stopped while the run 'k1' streamed"), text
    assert "ConnectionError" not in "".join(event.data for event in events)


@pytest.mark.parametrize("ending", ["cancelled", "stopped"])
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_durable_agents_failure_cancelled_while_it_is_noted_tells_its_reference(
    protocol: Protocol,
    ending: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    destroyed: None,
) -> None:
    """A durable agent fails, and its job is given up on (``cancelled``) or stopped with its
    server (``stopped``) while the new reference the log has its error under is noted with
    its durable run: its run ends with the agent's error told under that reference (the log
    has the error under it once). (It ended as the cancellation said: the log had the error
    under a reference its client was never told.)"""
    caplog.set_level(logging.ERROR, logger=LOGGER)
    alias = f"LEAKY_NOTED_{protocol.name.upper()}"
    agent = durable(leaky.fork(alias=alias), database_url=f"sqlite:///{tmp_path / 'runs.db'}")
    app = protocol.app(agent, authentication=NoAuthentication())
    jobs = _HeldNotes(agent, "ag-ui" if protocol.name == "agui" else "ai-sdk", "write")
    app.state.runs.durable = jobs
    async with served(app) as client:
        posted = asyncio.ensure_future(post_events(client, protocol.body("k1")))
        job_task = await jobs.waiting
        if ending == "cancelled":
            job_task.cancel()
        else:
            app.state.runs.stop()
        _response, events = await posted
    assert jobs.release.cancelled()  # (the job was cancelled while it waited there)
    endings = [event.json["type"] for event in events if event.data != "[DONE]"][-2:]
    assert endings[0] not in ("RUN_ERROR", "error", "abort", "RUN_FINISHED"), events  # (one)
    last = next(event.json for event in reversed(events) if event.data != "[DONE]")
    assert last["type"] in ("RUN_ERROR", "error"), events
    text = last.get("message", last.get("errorText"))
    found = re.fullmatch(
        f"The agent {alias} failed with ConnectionError\\. The server's log has the error "
        "under the reference ([0-9a-f]{32}): ask the agent's operator to look it up there\\.",
        text,
    )
    assert found is not None, text
    logged = [record for record in caplog.records if record.name == LOGGER]
    assert len(logged) == 1, [record.getMessage() for record in logged]
    assert logged[0].getMessage().endswith(f" failed with ConnectionError (reference {found[1]}).")


class _BrokenNotes(DurableJobs):
    """A durable agent's runs whose failure's note (``broken``: its read, or its write) fails
    with an error past the :class:`~miniagents.ext.dbos.DurableError` it tells itself (its
    database's driver, say)."""

    __slots__ = ("broken",)

    def __init__(self, agent: MiniAgent[..., Message], protocol: str, broken: str) -> None:
        super().__init__(agent, protocol)
        self.broken = broken

    async def alogged_failure(self, workflow_id: str, error: Exception) -> str:
        if self.broken == "read":
            raise RuntimeError("The notes' database went away.")
        return await super().alogged_failure(workflow_id, error)

    async def anote_failure(
        self, workflow_id: str, error: Exception, reference: str, logger: logging.Logger
    ) -> None:
        if self.broken == "write":
            raise RuntimeError("The notes' database went away.")
        await super().anote_failure(workflow_id, error, reference, logger)


@pytest.mark.parametrize("broken", ["read", "write"])
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_durable_agents_failure_whose_note_fails_is_still_told_as_the_agents(
    protocol: Protocol,
    broken: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    destroyed: None,
) -> None:
    """A durable agent fails, and reading or noting its failure's reference with its durable
    run fails past what ``DurableJobs`` tells itself: its client is still told the agent's
    failure, under a new reference (the log has the error under it once, and a warning
    says the note failed), as a failed step's is. (It was told that the server, streaming
    the run, failed with the note's ``RuntimeError``: the agent's error was lost.)"""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    agent = durable(
        leaky.fork(alias=f"LEAKY_{protocol.name.upper()}"),
        database_url=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    app = protocol.app(agent, authentication=NoAuthentication())
    web_name = "ag-ui" if protocol.name == "agui" else "ai-sdk"
    app.state.runs.durable = _BrokenNotes(agent, web_name, broken)
    async with served(app) as client:
        _response, events = await post_events(client, protocol.body("k1"))
    reference = _told_reference(events)  # (the agent's failure: "The agent LEAKY_... failed")
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1, [record.getMessage() for record in errors]
    assert errors[0].getMessage().endswith(f" failed with ConnectionError (reference {reference}).")
    [warned] = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert "could not be read from or noted with its durable run (RuntimeError)" in (
        warned.getMessage()
    )
