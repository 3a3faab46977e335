"""A cancelled job keeps nothing of its reply while it is kept (``keep_runs_for``).

A job cancelled where it waited (an AG-UI run paused for an approval, abandoned by a new
run of its thread; an A2A task paused for input, cancelled by its owner) left its reply's
parts generator open, for garbage collection to close later, and its task kept its
``CancelledError``, whose traceback held the stopped frames: the reply, the question and
the agent's local variables stayed alive with the kept job. Now the generator is closed as
the job ends, and the ended task keeps no error: once the cancel has ended, only what the
protocol answers about the job is kept.

A job whose own step failed (its protocol's encoder wrote an event that is not text) left
its events generator open, with its reply and its running agent, until garbage collection
closed it in another task, where its ``MiniAgents`` context failed to exit. Now the job
closes it, in its own task, as it ends.
"""

from __future__ import annotations

import asyncio
import gc
import types
import weakref
from collections.abc import Callable

import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.ext.a2a import a2a_app
from miniagents.ext.input_requests import request_input
from miniagents.ext.llm.offline import CallTool, ScriptedReply, offline_agent
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import NoAuthentication, WebSettings, agui_app
from miniagents.ext.web._reply_parts import ResultDelta, TextDelta, reply_parts
from miniagents.ext.web.lowlevel import Job
from tests.ext.a2a.rpc import call, rpc, send_params
from tests.ext.web.serving import (
    SSEReader,
    agui_input,
    delete_file,
    nothing_deleted,  # noqa: F401
    post_events,
    served,
    until,
)

KEPT = WebSettings(keep_runs_for=3600)
"""The ended jobs are kept an hour: the whole test."""


class Held:
    """An object of the agent's (a local variable, its reply), watched by a weak reference."""


def _open_generators(name: str = "reply_parts") -> list[types.AsyncGeneratorType[object, None]]:
    """The async generators of the function ``name`` still open (suspended, not closed).

    By default a reply's parts' (``_job_events``: a job's events).
    """
    return [
        each
        for each in gc.get_objects()
        if isinstance(each, types.AsyncGeneratorType)
        and each.ag_code.co_name == name
        and each.ag_frame is not None
    ]


def _watch_end(job: Job, earlier: list[types.AsyncGeneratorType[object, None]]) -> list[bool]:
    """Whether the paused ``job``'s reply-parts generator was still open as its task ended
    (filled then; held until then, so that it is not finalized, which would close it).

    ``earlier``: those open before its run started (another test's, not yet collected).
    """
    watched = [each for each in _open_generators() if all(each is not e for e in earlier)]
    assert len(watched) == 1  # (its own: no other job runs)
    open_at_end: list[bool] = []

    def ended(_task: object) -> None:
        open_at_end.append(watched.pop().ag_frame is not None)

    assert job.task is not None
    job.task.add_done_callback(ended)
    return open_at_end


def _kept_errors(job: Job) -> list[str]:
    """The errors ``job``'s ended task still holds (with their tracebacks' frames)."""
    assert job.task is not None
    assert job.task.cancelled()  # (it still says so)
    return [
        type(each).__name__
        for each in gc.get_referents(job.task)
        if isinstance(each, BaseException)
    ]


def _alive(held: dict[str, Callable[[], object]]) -> list[str]:
    """The names of the watched objects still alive, after a full collection."""
    gc.collect()
    return [name for name, ref in held.items() if ref() is not None]


async def test_an_agui_run_paused_and_abandoned_keeps_nothing_of_its_reply() -> None:
    held: dict[str, Callable[[], object]] = {}
    replies: list[ScriptedReply] = [CallTool("delete_file", {"path": "a.txt"}), "Finished."]
    assistant = offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=iter(replies),
        token_delay=0,
    )

    @miniagent
    async def deleting(ctx: InteractionContext) -> None:
        payload = Held()  # (a local variable of the agent's, while it waits)
        held["local"] = weakref.ref(payload)
        note = Message(text="Let me see.")  # (its reply's first message)
        held["message"] = weakref.ref(note)
        ctx.reply(note)
        reply = assistant.inquire(ctx.message_promises)
        held["reply"] = weakref.ref(reply)
        ctx.reply(reply)
        await reply  # (paused at the call's approval)

    app = agui_app(deleting, authentication=NoAuthentication(), settings=KEPT)
    manager = app.state.runs
    async with served(app) as client:
        earlier = _open_generators()
        _response, first = await post_events(client, agui_input("r1", text="Delete a.txt"))
        assert first[-1].json["outcome"]["type"] == "interrupt"
        job = manager.get("r1").job
        assert job.paused
        open_at_end = _watch_end(job, earlier)
        del earlier
        # a new run of the thread abandons the paused one: its job is cancelled
        _response, second = await post_events(client, agui_input("r2", text="Never mind"))
        await until(lambda: job.done)
        assert second[-1].type == "RUN_FINISHED"
        assert manager.job("r1") is job  # (kept: it answers for its run)
        kept_errors = _kept_errors(job)
        alive = _alive(held)
    assert open_at_end == [False]  # (was: left open, for garbage collection to close)
    assert kept_errors == []  # (was: its CancelledError, whose frames held its reply)
    assert alive == []  # (was: ["message"], through its task's CancelledError)


async def test_an_a2a_task_paused_for_input_and_cancelled_keeps_nothing_of_its_reply() -> None:
    held: dict[str, Callable[[], object]] = {}

    @miniagent
    async def asking(ctx: InteractionContext) -> None:
        payload = Held()
        held["local"] = weakref.ref(payload)
        question = request_input("Which city?")
        held["question"] = weakref.ref(question)
        ctx.reply(question)
        await question.aanswer()

    app = a2a_app(asking, authentication=NoAuthentication(), settings=KEPT)
    manager = app.state.runs
    async with served(app) as web:
        earlier = _open_generators()
        sent = (await call(web, rpc("SendMessage", send_params()))).json()
        task = sent["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        job = manager.job(task["id"])
        assert job is not None
        assert job.question is not None
        open_at_end = _watch_end(job, earlier)
        del earlier
        answer = (await call(web, rpc("CancelTask", {"id": task["id"]}))).json()
        assert answer["result"]["status"]["state"] == "TASK_STATE_CANCELED", answer
        assert job.done
        assert manager.job(task["id"]) is job  # (kept: GetTask answers it)
        kept_errors = _kept_errors(job)
        alive = _alive(held)
        ended = (await call(web, rpc("GetTask", {"id": task["id"]}))).json()
    assert ended["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    assert open_at_end == [False]
    assert kept_errors == []
    assert alive == []  # (was: ["local", "question"])


async def test_a_job_whose_own_step_failed_closes_its_events_as_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # its client is told the run failed (was: the stream just ended), and the error is
    # logged once, by the app (was: only by asyncio, as its task's unretrieved exception)
    go, hold = asyncio.Event(), asyncio.Event()
    agent_ended: list[bool] = []

    @miniagent
    async def talking(ctx: InteractionContext) -> None:
        await go.wait()
        ctx.reply("Hello")
        try:
            await hold.wait()  # (never set: only a cancellation ends it)
        finally:
            agent_ended.append(True)

    app = agui_app(talking, authentication=NoAuthentication(), settings=KEPT)
    manager = app.state.runs
    protocol = manager.protocol
    make_encoder = protocol.encoder

    def not_text_events(*args: object) -> object:
        encoder = make_encoder(*args)
        encoder.events = lambda _part: [None]  # (a protocol's bug: an event not text)
        return encoder

    protocol.encoder = not_text_events
    async with served(app) as client:
        earlier = _open_generators("_job_events")
        async with client.stream("POST", "/", json=agui_input("r1", text="Hi")) as response:
            reader = SSEReader(response)
            opening = await reader.next()
            assert opening is not None
            assert opening.type == "RUN_STARTED"
            job = manager.job("r1")
            assert job is not None
            watched = [
                e for e in _open_generators("_job_events") if all(e is not b for b in earlier)
            ]
            assert len(watched) == 1
            del earlier
            at_end: list[tuple[bool, list[bool]]] = []
            assert job.task is not None
            job.task.add_done_callback(
                lambda _task: at_end.append((watched.pop().ag_frame is not None, list(agent_ended)))
            )
            go.set()
            rest = await reader.rest()  # (the stream ends: the job's run was ended)
        await until(lambda: job.done)
        failure = job.task.exception()
    assert failure is None  # (was: its AttributeError, the event's size: None.isascii())
    assert at_end == [(False, [True])]  # (was: open, its agent still waiting)
    assert [event.type for event in rest] == ["RUN_ERROR"]
    told = rest[-1].json
    assert told["code"] == "TypeError"  # (the event, refused before it is kept)
    reference = _logged_once(caplog, TypeError)
    assert told["message"] == (
        "The server, streaming the run, failed with TypeError. The server's log has the "
        f"error under the reference {reference}: ask the server's operator to look it up there."
    )


def _logged_once(caplog: pytest.LogCaptureFixture, kind: type[BaseException]) -> str:
    """The reference of the one error of ``kind`` logged (with its traceback), by the app."""
    logged = [
        record
        for record in caplog.records
        if record.exc_info is not None and isinstance(record.exc_info[1], kind)
    ]
    assert [record.name for record in logged] == ["miniagents.ext.web"]
    reference = logged[0].args[-1] if isinstance(logged[0].args, tuple) else None
    assert isinstance(reference, str)
    return reference


_NESTED_PARTS = ("parts", "_text_parts", "_call_parts", "_results", "_result_parts", "tokens")
"""The generators a reply's parts read from (``reply_parts``'s, nested in it)."""


@pytest.mark.parametrize("stop_at", [TextDelta, ResultDelta], ids=["text", "result"])
async def test_a_reply_closed_part_way_closes_the_generators_it_reads_from(
    stop_at: type[object],
) -> None:
    # a reply's parts closed early (its job cancelled, its client gone) left the generators
    # nested in them suspended, closed only when collected, in another task
    replies: list[ScriptedReply] = [CallTool("delete_file", {"path": "a.txt"}), "Deleted it."]
    assistant = offline_agent.fork(
        tools=[FunctionTool(delete_file)],
        reply=iter(replies),
        token_delay=0,
    )
    async with MiniAgents():
        earlier = [each for name in _NESTED_PARTS for each in _open_generators(name)]
        reply = reply_parts(assistant.inquire("Delete a.txt"), "m", error_texts=False)
        async for part in reply:
            if isinstance(part, stop_at):
                break
        nested = [
            each
            for name in _NESTED_PARTS
            for each in _open_generators(name)
            if all(each is not before for before in earlier)
        ]
        del earlier
        assert nested  # (suspended where the reply stopped)
        await reply.aclose()
        left_open = [each.ag_code.co_name for each in nested if each.ag_frame is not None]
    assert left_open == []  # (was: ["parts", "_text_parts"], say)


async def test_a_job_closed_at_its_agents_question_closes_the_question_s_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a job's events closed where they yielded a question's pause (the job's pause failed)
    # left the question's generator open, for collection to close in another task
    watched: list[types.AsyncGeneratorType[object, None]] = []

    @miniagent
    async def asking(ctx: InteractionContext) -> None:
        question = request_input("Which city?")
        ctx.reply(question)
        await question.aanswer()

    def failing_pause(_job: Job) -> None:
        watched.extend(_open_generators("_asking"))  # (held: not finalized, which closes it)
        raise _PauseFailed("The job could not pause.")

    monkeypatch.setattr(Job, "_pause", failing_pause)
    app = a2a_app(asking, authentication=NoAuthentication(), settings=KEPT)
    manager = app.state.runs
    async with served(app) as web:
        sent = (await call(web, rpc("SendMessage", send_params()))).json()
        job = manager.job(sent["result"]["task"]["id"])
        assert job is not None
        await until(lambda: job.done)
    assert len(watched) == 1
    assert watched[0].ag_frame is None  # (was: still suspended at its pause)


class _PauseFailed(Exception):
    """A job's failure to pause (a bug of the manager's)."""


class _CloseFailed(Exception):
    """An error of a job's context as it closes (an agent's, raised as it was cancelled)."""


class _FailingClose(MiniAgents):
    """A context whose exit fails where the job's events are closed."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        await super().__aexit__(exc_type, exc, traceback)
        if exc_type is GeneratorExit:
            raise _CloseFailed("The context failed as the job's events were closed.")


async def test_an_error_raised_as_a_job_s_events_close_is_logged_as_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # was: taken for the agent's failure, whose events the closed generator then yielded:
    # Python raised "async generator ignored GeneratorExit" instead, logged by asyncio
    @miniagent
    async def talking(ctx: InteractionContext) -> None:
        ctx.reply("Hello")

    app = agui_app(talking, authentication=NoAuthentication(), settings=KEPT, context=_FailingClose)
    manager = app.state.runs
    protocol = manager.protocol
    make_encoder = protocol.encoder

    def not_text_events(*args: object) -> object:
        encoder = make_encoder(*args)
        encoder.events = lambda _part: [None]  # (a protocol's bug: an event not text)
        return encoder

    protocol.encoder = not_text_events
    async with served(app) as client:
        _response, events = await post_events(client, agui_input("r1", text="Hi"))
        job = manager.job("r1")
        assert job is not None
        await until(lambda: job.done)
        assert job.task is not None
        failure = job.task.exception()
    assert failure is None
    assert [event.type for event in events] == ["RUN_STARTED", "RUN_ERROR"]
    assert events[-1].json["code"] == "TypeError"  # (the step that failed first)
    logged = [type(record.exc_info[1]).__name__ for record in caplog.records if record.exc_info]
    assert logged == ["TypeError", "_CloseFailed"]  # (was: its RuntimeError besides)


async def test_an_event_not_text_is_not_kept_in_the_run_s_log() -> None:
    # the event was kept before it was measured (its size: the error), so the log held it:
    # a request that read the log (A2A's SendMessage answer, a later GetTask) failed with a
    # 500, an error in the task's fold
    @miniagent
    async def talking(ctx: InteractionContext) -> None:
        ctx.reply("Hello")

    app = a2a_app(talking, authentication=NoAuthentication(), settings=KEPT)
    manager = app.state.runs
    protocol = manager.protocol
    make_encoder = protocol.encoder

    def not_text_events(*args: object) -> object:
        encoder = make_encoder(*args)
        encoder.events = lambda _part: [None]  # (a protocol's bug: an event not text)
        return encoder

    protocol.encoder = not_text_events
    async with served(app) as web:
        sent = await call(web, rpc("SendMessage", send_params()))
        assert sent.status_code == 200  # (was: 500, its answer folded from the log)
        task_id = sent.json()["result"]["task"]["id"]
        job = manager.job(task_id)
        assert job is not None
        await until(lambda: job.done)
        got = await call(web, rpc("GetTask", {"id": task_id}))
        assert got.status_code == 200  # (was: 500)
        assert all(isinstance(event, str) for run in job.runs for event in run.events)
    assert got.json()["result"]["status"]["state"] == "TASK_STATE_FAILED"
