"""Runs over SSE: resume at any cut point, many clients on one run, keeping, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from miniagents import InteractionContext, MiniAgent, MiniAgents, miniagent
from miniagents.ext.llm import UserMessage
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.web import NoAuthentication, WebSettings, agui_app, ai_sdk_app
from miniagents.ext.web._runs import Job, Run, RunManager, _RunResponse
from miniagents.ext.web._usage import JobUsage
from miniagents.ext.web.agui import _AGUI
from miniagents.ext.web.lowlevel import NoRoom
from miniagents.ext.web.web_chat import web_chat_app
from miniagents.promising.lowlevel import task_owner
from miniagents.testing import FakeLLMServer
from tests.ext.web.serving import (
    GatedDurable,
    SSEEvent,
    SSEReader,
    agui_input,
    approval_input,
    approving_assistant,
    chat_request,
    deleted,
    gated,
    get_events,
    nothing_deleted,  # noqa: F401
    post_events,
    served,
    unmetered,
    until,
)
from tests.fakes.asgi24 import Asgi24
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401

TOKENS = ["One ", "two ", "three ", "four ", "five"]
PAGE = Path(__file__).parents[3] / "examples" / "web_chat" / "index.html"


def run_input(run_id: str = "r1") -> dict[str, Any]:
    return agui_input(run_id, text="Count to five")


def chat(chat_id: str = "c1") -> dict[str, Any]:
    return chat_request(chat_id, text="Count")


@pytest.fixture
def llm(fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> MiniAgent[..., Any]:  # noqa: F811
    """An OpenAI agent of the fake server (a client per run's context, closed with it)."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    return openai_agent.fork(model="gpt-4o-mini")


def texts(events: list[SSEEvent]) -> list[str]:
    return [event.data for event in events]


async def followers(app: Starlette, key: str) -> int:
    run = app.state.runs.get(key)
    assert run is not None
    return int(run.followers)


# -- resume ----------------------------------------------------------------------------------


def expected_agui(tokens: list[str]) -> list[str]:
    return [
        '{"type":"RUN_STARTED","threadId":"t1","runId":"r1","protocolVersion":"1.0"}',
        '{"type":"TEXT_MESSAGE_START","messageId":"r1-0","role":"assistant"}',
        *[
            f'{{"type":"TEXT_MESSAGE_CONTENT","messageId":"r1-0","delta":"{token}"}}'
            for token in tokens
        ],
        '{"type":"TEXT_MESSAGE_END","messageId":"r1-0"}',
        '{"type":"RUN_FINISHED","threadId":"t1","runId":"r1"}',
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_client_that_reconnects_at_any_cut_point_misses_nothing_and_gets_nothing_twice(
    data: st.DataObject,
) -> None:
    """Cut anywhere: before, during or after the reply, tokens produced while away or not."""
    count = data.draw(st.integers(1, 4), "tokens")
    tokens = TOKENS[:count]
    released = data.draw(st.integers(0, count), "released before the first read")
    ended_early = released == count and data.draw(st.booleans(), "ended before the first read")
    available = len(expected_agui(tokens)) if ended_early else 2 + released
    cut = data.draw(st.integers(1, available), "events read before the cut")
    away = data.draw(st.integers(0, count - released), "released while away")
    asyncio.run(_resume_scenario(tokens, released, ended_early, cut, away))


async def _resume_scenario(
    tokens: list[str], released: int, ended_early: bool, cut: int, away: int
) -> None:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    pending = list(tokens)

    def release(count: int, *, end: bool = False) -> None:
        for _ in range(count):
            queue.put_nowait(pending.pop(0))
        if end:
            queue.put_nowait(None)

    app = agui_app(
        gated(queue), authentication=NoAuthentication(), settings=WebSettings(grace_period=3600)
    )
    async with served(app) as client:
        release(released, end=ended_early)
        async with client.stream("POST", "/", json=run_input()) as response:
            before = await SSEReader(response).take(cut)
        await until(lambda: app.state.runs.get("r1").followers == 0)
        if not ended_early:
            release(away)
        async with client.stream(
            "GET", "/runs/r1", headers={"last-event-id": before[-1].id or ""}
        ) as response:
            assert response.status_code == 200
            if not ended_early:
                release(len(pending), end=True)
            after = await SSEReader(response).rest()
    assert texts(before) + texts(after) == expected_agui(tokens)
    assert [event.id for event in before + after] == [str(n) for n in range(len(before + after))]


def _watches(manager: RunManager) -> list[asyncio.Task[None]]:
    """The watches of their server's stop among ``manager``'s tasks (one per stream)."""
    return [task for task in manager.tasks if "stop" in task.get_name()]


async def test_a_streams_watch_of_its_servers_stop_is_its_managers_not_a_miniagents_blocks() -> (
    None
):
    # a server run inside a MiniAgents block, whose exit waits for every task made in it:
    # a watch of the block's own would hold that exit until the server stops
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    app = agui_app(gated(queue), authentication=NoAuthentication())
    async with MiniAgents():
        made_here = task_owner.get()
        assert made_here is not None
        async with (
            served(app) as client,
            client.stream("POST", "/", json=run_input()) as response,
        ):
            reader = SSEReader(response)
            await reader.take(1)
            watching = [task for task in made_here if "stop" in task.get_name()]
            assert watching == []  # (was: the block's own)
            assert len(_watches(app.state.runs)) == 1
            queue.put_nowait(None)
            await reader.rest()
        assert not _watches(app.state.runs)  # (ended by its stream)


async def test_a_job_is_its_managers_so_a_miniagents_blocks_exit_does_not_wait_for_it() -> None:
    # a run started inside a MiniAgents block (an app called in-process), whose exit waits
    # for every task made in it: the job outlives its request by design (resumed, replayed,
    # ended by its server's stop or its expiry), so a block's own would hold that exit
    import httpx2

    queue: asyncio.Queue[str | None] = asyncio.Queue()
    app = agui_app(gated(queue), authentication=NoAuthentication())
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://localhost") as client:
        async with MiniAgents():
            made_here = task_owner.get()
            assert made_here is not None
            posted = asyncio.create_task(client.post("/", json=run_input()))
            await until(lambda: app.state.runs.get("r1") is not None)
            job = app.state.runs.get("r1").job
            assert job.task is not None
            assert job.task not in made_here  # (was: the block's own)
            assert job.task in app.state.runs.tasks
        assert not job.done  # (the block's exit did not wait for it)
        queue.put_nowait(None)
        response = await posted
    assert '"RUN_FINISHED"' in response.text
    assert job.task not in app.state.runs.tasks  # (ended; its stream's watch ends a pass later)


async def test_an_ai_sdk_chat_resumes_mid_answer_at_its_stream_url() -> None:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    app = ai_sdk_app(
        gated(queue), authentication=NoAuthentication(), settings=WebSettings(grace_period=3600)
    )
    async with served(app) as client:
        queue.put_nowait("Hel")
        async with client.stream("POST", "/", json=chat()) as response:
            before = await SSEReader(response).until("text-delta")
        await until(lambda: app.state.runs.get("c1").followers == 0)
        queue.put_nowait("lo")
        async with client.stream(
            "GET", "/c1/stream", headers={"last-event-id": before[-1].id or ""}
        ) as response:
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            queue.put_nowait(None)
            after = await SSEReader(response).rest()
        ended = await client.get("/c1/stream")  # the AI SDK's own resume: nothing streams now
    assert ended.status_code == 204
    whole = before + after
    assert [event.id for event in whole] == [str(n) for n in range(len(whole))]
    assert [event.type for event in whole] == [
        "start",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
        "[DONE]",
    ]


async def test_an_ai_sdk_chat_whose_run_ended_has_no_stream_to_resume_but_a_cut_client_does() -> (
    None
):
    # useChat's resume (a reload) asks for the chat's active stream: the ended run's message
    # is in the client's messages already, so streaming it again would show it twice
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    app = ai_sdk_app(
        gated(queue), authentication=NoAuthentication(), settings=WebSettings(grace_period=3600)
    )
    async with served(app) as client:
        async with client.stream("POST", "/", json=chat()) as response:
            reader = SSEReader(response)
            head = await reader.take(2)  # start, start-step: the run streams
            async with client.stream("GET", "/c1/stream") as resumed:
                assert resumed.status_code == 200  # an active stream: from its first event
                queue.put_nowait("Hi")
                queue.put_nowait(None)
                again = await SSEReader(resumed).rest()
            rest = await reader.rest()
        ended = await client.get("/c1/stream")
        _response, tail = await get_events(client, "/c1/stream", {"last-event-id": "3"})
    assert again == head + rest
    assert (ended.status_code, ended.content) == (204, b"")
    assert tail == (head + rest)[4:]  # a client cut off before the end still gets the rest
    assert tail[-1].data == "[DONE]"


# -- many clients, one run ----------------------------------------------------------------------


async def test_many_clients_follow_one_run_and_one_llm_call(
    fake_llm: FakeLLMServer,  # noqa: F811
    llm: MiniAgent[..., Any],
) -> None:
    fake_llm.reply(tokens=TOKENS, pause_after=2)
    async with (
        served(agui_app(llm, authentication=NoAuthentication())) as client,
        client.stream("POST", "/", json=run_input()) as first,
    ):
        reader = SSEReader(first)
        head = await reader.take(4)  # started, message start, two tokens
        record = await fake_llm.wait_paused_async(0, WAIT)
        async with (
            client.stream("GET", "/runs/r1") as second,
            client.stream("GET", "/runs/r1", headers={"last-event-id": "2"}) as third,
        ):
            second_reader, third_reader = SSEReader(second), SSEReader(third)
            assert await second_reader.take(4) == head
            assert texts(await third_reader.take(1)) == texts(head[3:])
            record.resume()
            rest = await reader.rest()
            assert await second_reader.rest() == rest
            assert await third_reader.rest() == rest
    assert rest[-1].type == "RUN_FINISHED"
    content = [e.json["delta"] for e in head + rest if e.type == "TEXT_MESSAGE_CONTENT"]
    assert "".join(content) == "".join(TOKENS)
    assert len(fake_llm.requests) == 1
    assert fake_llm.requests[0].outcome == "complete"


# -- keeping ----------------------------------------------------------------------------------


async def test_an_ended_run_is_kept_for_keep_runs_for_seconds(
    fake_llm: FakeLLMServer,  # noqa: F811
    llm: MiniAgent[..., Any],
) -> None:
    fake_llm.reply(tokens=["Hi"], times=2)
    async with served(
        agui_app(llm, authentication=NoAuthentication(), settings=WebSettings(keep_runs_for=3600))
    ) as client:
        _response, events = await post_events(client, run_input())
        _response, again = await get_events(client, "/runs/r1", {"last-event-id": "1"})
        assert again == events[2:]
    async with served(
        agui_app(llm, authentication=NoAuthentication(), settings=WebSettings(keep_runs_for=0))
    ) as client:
        _response, events = await post_events(client, run_input())
        assert events[-1].type == "RUN_FINISHED"
        gone = await client.get("/runs/r1")
        assert gone.status_code == 404
        assert "ended more than 0 seconds ago" in gone.json()["error"]["message"]
    assert len(fake_llm.requests) == 2


# -- cancellation -------------------------------------------------------------------------------


async def test_the_last_client_leaving_cancels_the_run_and_closes_its_llm_stream(
    fake_llm: FakeLLMServer,  # noqa: F811
    llm: MiniAgent[..., Any],
) -> None:
    fake_llm.reply(tokens=TOKENS, hang_after=2)
    async with served(
        agui_app(llm, authentication=NoAuthentication(), settings=WebSettings(grace_period=0))
    ) as client:
        async with client.stream("POST", "/", json=run_input()) as response:
            head = await SSEReader(response).take(4)
        assert [e.type for e in head][-1] == "TEXT_MESSAGE_CONTENT"
        assert await fake_llm.wait_disconnected_async(0, WAIT)  # the LLM's HTTP stream closed
        _response, events = await get_events(client, "/runs/r1")
    assert events[:4] == head
    assert unmetered(events[-1].json) == {
        "type": "RUN_FINISHED",
        "threadId": "t1",
        "runId": "r1",
        "outcome": {"type": "cancelled"},
    }
    # (its call, cut before the provider's count, counts the pieces it streamed; its prompt's
    # tokens are unknown: left out, as is the total (was: "inputTokens": 0, a total of 2))
    assert events[-1].json["usage"] == [{"model": "gpt-4o-mini", "outputTokens": 2}]
    assert fake_llm.requests[0].client_disconnected
    assert len(fake_llm.requests) == 1


async def test_an_ai_sdk_run_left_by_its_client_ends_with_abort(
    fake_llm: FakeLLMServer,  # noqa: F811
    llm: MiniAgent[..., Any],
) -> None:
    fake_llm.reply(tokens=TOKENS, hang_after=1)
    async with served(
        ai_sdk_app(llm, authentication=NoAuthentication(), settings=WebSettings(grace_period=0))
    ) as client:
        async with client.stream("POST", "/", json=chat()) as response:
            await SSEReader(response).until("text-delta")
        assert await fake_llm.wait_disconnected_async(0, WAIT)
        _response, events = await get_events(client, "/c1/stream", {"last-event-id": "0"})
    assert [event.type for event in events[-3:]] == ["message-metadata", "abort", "[DONE]"]
    # (its prompt's tokens are unknown: left out, as is the total (was: "inputTokens": 0))
    assert events[-3].json["messageMetadata"] == {"usage": {"outputTokens": 1}}


@pytest.mark.parametrize("make_app", [agui_app, ai_sdk_app], ids=["agui", "ai_sdk"])
async def test_a_client_that_left_gives_back_its_stream_under_an_asgi_2_4_server(
    make_app: Any,
) -> None:
    # (under ASGI 2.4 Starlette's StreamingResponse no longer watches for the client
    # leaving: sse-starlette's does, so the slot and the follower are given back as the
    # response returns, not when its events are collected)
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    app = make_app(
        gated(queue), authentication=NoAuthentication(), settings=WebSettings(grace_period=0)
    )
    runs: RunManager = app.state.runs
    server = Asgi24(app, lambda path: path == "/")
    async with served(server) as client:
        queue.put_nowait("Hel")
        body = run_input() if make_app is agui_app else chat("r1")
        async with client.stream("POST", "/", json=body) as response:
            await SSEReader(response).take(3)
            assert (runs.open_streams, await followers(app, "r1")) == (1, 1)
        await asyncio.wait_for(server.ended.wait(), WAIT)  # (the response has returned)
        assert (runs.open_streams, await followers(app, "r1")) == (0, 0)
        await until(lambda: runs.live == 0)  # nobody follows it: cancelled (no grace)


async def test_a_client_back_within_the_grace_period_keeps_the_run_going(
    fake_llm: FakeLLMServer,  # noqa: F811
    llm: MiniAgent[..., Any],
) -> None:
    fake_llm.reply(tokens=TOKENS, pause_after=2)
    app = agui_app(llm, authentication=NoAuthentication(), settings=WebSettings(grace_period=3600))
    async with served(app) as client:
        async with client.stream("POST", "/", json=run_input()) as response:
            head = await SSEReader(response).take(4)
        record = await fake_llm.wait_paused_async(0, WAIT)
        await until(lambda: app.state.runs.get("r1").followers == 0)  # every client gone
        async with client.stream("GET", "/runs/r1", headers={"last-event-id": "3"}) as response:
            record.resume()
            rest = await SSEReader(response).rest()
    assert rest[-1].type == "RUN_FINISHED"
    content = [e.json["delta"] for e in head + rest if e.type == "TEXT_MESSAGE_CONTENT"]
    assert "".join(content) == "".join(TOKENS)
    assert not fake_llm.requests[0].client_disconnected
    assert len(fake_llm.requests) == 1


async def test_a_new_request_for_a_chat_cancels_its_run_still_streaming(
    fake_llm: FakeLLMServer,  # noqa: F811
    llm: MiniAgent[..., Any],
) -> None:
    fake_llm.reply(tokens=TOKENS, hang_after=1)
    fake_llm.reply(tokens=["Fresh"])
    async with served(
        ai_sdk_app(llm, authentication=NoAuthentication(), settings=WebSettings(grace_period=3600))
    ) as client:
        async with client.stream("POST", "/", json=chat()) as response:
            reader = SSEReader(response)
            await reader.until("text-delta")
            _response, fresh = await post_events(client, chat())
            old_rest = await reader.rest()
        assert await fake_llm.wait_disconnected_async(0, WAIT)
    assert [event.type for event in old_rest[-2:]] == ["abort", "[DONE]"]
    assert "".join(e.json["delta"] for e in fresh if e.type == "text-delta") == "Fresh"


def recovered_run() -> tuple[RunManager, Run]:
    """A recovered AG-UI run of Alice's (its replay to come), of a manager that lets one
    principal have one stream open."""

    @miniagent
    async def echo(ctx: Any) -> None:
        ctx.reply("hi")

    settings = WebSettings(max_streams_per_principal=1, grace_period=3600)
    protocol = _AGUI(edits=settings.approval_edits)
    manager = RunManager(
        protocol, echo, context=MiniAgents, approval_flow="protocol", settings=settings
    )
    ids = protocol.ids("r1", "t1")
    job = Job(
        manager, "alice", ids, protocol.encoder(ids, "protocol", 60.0, JobUsage()), recovered=True
    )
    return manager, job.current


async def test_a_client_waiting_for_a_recovered_runs_event_holds_a_stream_slot() -> None:
    """A client whose ``Last-Event-ID`` a recovered run's replay has not reached waits for it
    holding one of its streams' slots: with ``max_streams_per_principal=1`` a second such
    client is a 429 while the first waits, and the slot is free again once it has its
    answer."""

    manager, run = recovered_run()

    def request() -> Request:
        headers = [(b"last-event-id", b"5")]
        return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})

    waiting = asyncio.ensure_future(run.aresponse_after(request()))
    await asyncio.sleep(0)  # (its first step: it takes the slot and waits for event 5)
    assert not waiting.done()
    assert manager.open_streams == 1
    second = await run.aresponse_after(request())
    assert second.status_code == 429
    run.end()  # the replay ended without event 5: the waiting client's id is not the run's
    first = await waiting
    assert first.status_code == 400
    assert manager.open_streams == 0


async def test_a_follower_holds_one_stream_slot_handed_from_its_wait_to_its_stream() -> None:
    """The slot a follower takes while it waits for its ``Last-Event-ID`` is handed over to
    its stream, not freed and taken again: with ``max_streams_per_principal=1``, once the
    first follower has its response, a second is refused (429) and the first's stream is
    sent (it was freed there, so the second got the slot and the first was refused after
    its wait)."""

    manager, run = recovered_run()

    def request(last: bytes | None) -> Request:
        headers = [] if last is None else [(b"last-event-id", last)]
        return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})

    waiting = asyncio.ensure_future(run.aresponse_after(request(b"0")))
    await asyncio.sleep(0)  # (its first step: it takes the slot and waits for event 1)
    run.append('{"type":"RUN_STARTED","threadId":"t1","runId":"r1"}')
    run.append('{"type":"RUN_FINISHED","threadId":"t1","runId":"r1"}')
    run.end()
    first = await waiting
    assert manager.open_streams == 1  # (handed over to the response)
    second = await run.aresponse_after(request(None))
    assert second.status_code == 429
    sent: list[MutableMapping[str, Any]] = []
    never: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        return await never

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "asgi": {}}
    await first(scope, receive, send)
    assert sent[0]["status"] == 200
    body = b"".join(message.get("body", b"") for message in sent[1:])
    assert b"RUN_FINISHED" in body
    assert manager.open_streams == 0


async def test_a_resume_holds_its_stream_slot_while_its_resume_awaits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resume takes its stream's slot before it decides anything and hands it to its run's
    stream: with ``max_streams_per_principal=1``, a stream that opens while the resume awaits
    (a durable job notes its pause in its database there) is refused. (It looked at the room
    and took the slot only as its stream started: the stream opened meanwhile took it, and
    the run, its call decided and gone on, was refused a 429 with no stream.)"""
    app = agui_app(
        approving_assistant(),
        authentication=NoAuthentication(),
        settings=WebSettings(max_streams_per_principal=1),
    )
    meanwhile: list[NoRoom | None] = []
    resume_run = RunManager.aresume_run

    async def opened_meanwhile(manager: RunManager, *args: Any, **kwargs: Any) -> Run | Response:
        meanwhile.append(manager.streams.take(None, manager.settings))  # (another's stream)
        await asyncio.sleep(0)  # (as a durable job's note of its pause awaits)
        return await resume_run(manager, *args, **kwargs)

    monkeypatch.setattr(RunManager, "aresume_run", opened_meanwhile)
    async with served(app) as client:
        _response, first = await post_events(client, approval_input("r1"))
        call_id = first[-1].json["outcome"]["interrupts"][0]["id"]
        entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
        response, second = await post_events(client, approval_input("r2", [entry]))
        assert response.status_code == 200
        assert meanwhile == [NoRoom("max_streams_per_principal", 1)]
        assert second[-1].type == "RUN_FINISHED"
        await until(lambda: app.state.runs.open_streams == 0)
    assert deleted == ["a.txt"]


@pytest.mark.parametrize("stopped", ["started_first", "started_last"])
async def test_two_servers_of_one_process_each_stop_their_own_runs_alone(stopped: str) -> None:
    """Two servers of ``server_config`` in one process, a live run on each: the one that
    stops ends its own run saying so (``RUN_ERROR``, ``WebServerStoppedError``) and the
    other's run goes on to its end. (sse-starlette's watch follows the server uvicorn's
    signal handler names, the last started, and stops every stream of the thread: stopping
    the first left its run to a bare close after the grace; stopping the last stopped the
    other's run as well.)"""
    queues: list[asyncio.Queue[str | None]] = [asyncio.Queue(), asyncio.Queue()]
    stops = [asyncio.Event(), asyncio.Event()]
    door = NoAuthentication()
    async with contextlib.AsyncExitStack() as stack:
        readers = []
        for queue, stop in zip(queues, stops, strict=True):
            app = agui_app(gated(queue), authentication=door)
            client = await stack.enter_async_context(served(app, stop=stop, bounded=True))
            queue.put_nowait("Hel")
            response = await stack.enter_async_context(client.stream("POST", "/", json=run_input()))
            reader = SSEReader(response)
            await reader.until("TEXT_MESSAGE_CONTENT")
            readers.append(reader)
        ends, goes_on = (0, 1) if stopped == "started_first" else (1, 0)
        stops[ends].set()
        rest = await asyncio.wait_for(readers[ends].rest(), WAIT)
        assert [event.type for event in rest] == ["TEXT_MESSAGE_END", "RUN_ERROR"]
        assert rest[-1].json["code"] == "WebServerStoppedError"
        queues[goes_on].put_nowait("lo")
        queues[goes_on].put_nowait(None)
        rest = await asyncio.wait_for(readers[goes_on].rest(), WAIT)
        assert [event.type for event in rest] == [
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "RUN_FINISHED",
        ]
        assert rest[0].json["delta"] == "lo"


def test_the_sse_starlette_watch_a_run_stream_replaces_is_still_sse_starlettes() -> None:
    """A run's stream replaces sse-starlette's watch of the server's stop
    (``_listen_for_exit_signal_with_grace``, private): a release of sse-starlette that
    renamed it would leave the stream on the watch that stops other servers' streams."""
    assert (
        inspect.getsource(EventSourceResponse.__call__).count(
            "self._listen_for_exit_signal_with_grace"
        )
        == 1
    )
    assert "_listen_for_exit_signal_with_grace" in vars(_RunResponse)


@pytest.mark.parametrize("protocol", ["agui", "ai_sdk", "chat_page"])
async def test_a_live_run_whose_server_stops_ends_saying_so_not_with_a_bare_close(
    protocol: str,
) -> None:
    """The server stops (a shutdown, as a signal starts it) mid-answer: the client's stream
    ends its open text (AG-UI's ``TEXT_MESSAGE_END``, the AI SDK's ``text-end``), then fails
    with ``WebServerStoppedError`` (AG-UI's ``RUN_ERROR``, the AI SDK's and the chat page's
    error part), saying the run stopped with the server and is asked again. (The
    stream closed mid-message, with no ending: a client could not tell a stopped server
    from a lost connection.)"""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    agent, door = gated(queue), NoAuthentication()
    if protocol == "agui":
        app, path, body, first = (
            agui_app(agent, authentication=door),
            "/",
            run_input(),
            "TEXT_MESSAGE_CONTENT",
        )
    elif protocol == "ai_sdk":
        app, path, body, first = ai_sdk_app(agent, authentication=door), "/", chat(), "text-delta"
    else:
        app = web_chat_app(agent, page=PAGE, authentication=door)
        path, body, first = "/api/chat/", chat(), "text-delta"
    stop = asyncio.Event()
    async with served(app, stop=stop) as client:
        queue.put_nowait("Hel")
        async with client.stream("POST", path, json=body) as response:
            reader = SSEReader(response)
            await reader.until(first)
            stop.set()
            rest = await asyncio.wait_for(reader.rest(), WAIT)
    if protocol == "agui":
        assert [event.type for event in rest] == ["TEXT_MESSAGE_END", "RUN_ERROR"]
        assert rest[-1].json["code"] == "WebServerStoppedError"
        message = rest[-1].json["message"]
    else:
        assert [event.type for event in rest] == ["text-end", "error", "[DONE]"]
        message = rest[1].json["errorText"]
    assert "server stopped" in message
    assert "cannot be read again" in message


class _LetGoFailed(Exception):
    """A failure of a job's last step (the manager letting go of it): a bug of its own."""


async def test_a_job_whose_task_fails_does_not_stop_the_shutdown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # was: aclose suppressed only a CancelledError, so the first job's error was raised out
    # of the app's shutdown, and the jobs after it were not waited for
    started: dict[str, asyncio.Event] = {"r1": asyncio.Event(), "r2": asyncio.Event()}

    @miniagent
    async def waiting(ctx: InteractionContext, key: str) -> None:
        ctx.reply("Hello")
        started[key].set()
        await asyncio.Event().wait()  # (only the shutdown's cancel ends it)

    app = agui_app(waiting, authentication=NoAuthentication())
    manager: RunManager = app.state.runs
    let_go = Job._let_go

    def failing_let_go(job: Job) -> None:
        let_go(job)
        if job.current.key == "r1":
            raise _LetGoFailed("The manager failed to let go of the job.")

    monkeypatch.setattr(Job, "_let_go", failing_let_go)
    jobs = []
    for key in started:
        ids = manager.protocol.ids(key, f"t-{key}")
        jobs.append(manager.start_new(None, ids, [UserMessage(text="Hi")], {"key": key}).job)
    for event in started.values():
        await event.wait()
    await manager.aclose()  # (was: raised _LetGoFailed)
    assert all(job.done for job in jobs)  # (r2's too: waited for)
    logged = [record for record in caplog.records if record.exc_info is not None]
    assert [type(record.exc_info[1]) for record in logged if record.exc_info] == [_LetGoFailed]
    assert logged[0].getMessage() == (
        "The ag-ui run 'r1' failed with _LetGoFailed as the server stopped; the other runs "
        "were stopped all the same."
    )


async def test_a_cancelled_shutdown_raises_its_cancel_while_it_waits_for_a_job() -> None:
    # was: the wait for each job's task ignored every CancelledError, so a cancel of aclose
    # itself was swallowed there, and aclose went on to the next job and returned
    stopping, release = asyncio.Event(), asyncio.Event()
    started = asyncio.Event()

    @miniagent
    async def slow_to_stop(ctx: InteractionContext) -> None:
        ctx.reply("Hello")
        started.set()
        try:
            await asyncio.Event().wait()  # (only the shutdown's cancel ends it)
        finally:
            stopping.set()
            await release.wait()  # (it takes its time to stop: aclose waits for it)

    app = agui_app(slow_to_stop, authentication=NoAuthentication())
    manager: RunManager = app.state.runs
    ids = manager.protocol.ids("r1", "t1")
    job = manager.start_new(None, ids, [UserMessage(text="Hi")], {}).job
    await started.wait()
    closing = asyncio.create_task(manager.aclose())
    await stopping.wait()  # (aclose waits for the job's task now)
    closing.cancel()
    try:
        with pytest.raises(asyncio.CancelledError):
            await closing  # (was: returned)
    finally:
        release.set()
    assert job.task is not None
    await asyncio.wait([job.task], timeout=WAIT)  # (its stop goes on: waited for here)
    assert job.done


class _GatedTurns(GatedDurable):
    """Its run-id check answers at once: only a new turn's abandoning waits for the gate."""

    async def afind_named(self, owner: str | None, name: str) -> None:
        return None


@pytest.mark.parametrize(
    ("make_app", "body", "ending"),
    [(agui_app, run_input(), "RUN_FINISHED"), (ai_sdk_app, chat(), '"finish"')],
    ids=["ag-ui", "ai-sdk"],
)
async def test_a_new_turn_holds_its_stream_slot_while_its_durable_room_awaits(
    make_app: Callable[..., Starlette], body: dict[str, Any], ending: str
) -> None:
    """A new run (AG-UI) or chat turn (AI SDK) takes its stream's slot before it asks the
    durable agent's database (its thread's paused runs given up on) and hands it to its
    run's stream: with ``max_streams_per_principal=1``, a stream that opens meanwhile is
    refused and the run is sent. (It looked at the room, awaited, and took the slot only as
    its stream started: the stream opened meanwhile took it, and the run, started, was
    refused a 429.)"""
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    settings = WebSettings(max_streams_per_principal=1)
    app = make_app(gated(tokens), authentication=NoAuthentication(), settings=settings)
    manager = app.state.runs
    abandons = _GatedTurns(gated(tokens))
    manager.durable = abandons
    async with served(app) as client:
        started = asyncio.ensure_future(client.post("/", json=body))
        await until(lambda: abandons.waiting == 1)
        meanwhile = manager.streams.take(None, manager.settings)  # (another's stream)
        abandons.gate.set_result(None)
        for token in ("Hi", None):
            tokens.put_nowait(token)
        response = await started
        if meanwhile is None:  # (was: taken, so the run's stream was refused)
            manager.streams.free(None)
        await until(lambda: manager.open_streams == 0)
    assert meanwhile == NoRoom("max_streams_per_principal", 1)
    assert response.status_code == 200
    assert ending in response.text


async def test_a_server_that_stopped_before_stops_no_stream_of_the_process_after_it() -> None:
    # two uvicorn servers of one thread that end in another order than they started: as the
    # second ends, uvicorn puts back the SIGTERM handler it found, the first's, whose server
    # has stopped (was: sse-starlette's watch read that server's stop, and from then on
    # every stream of the process not under server_config, of an app called in-process
    # too, was stopped as it began: WebServerStoppedError)
    import signal

    import httpx2
    import uvicorn

    from miniagents.ext.web.serving import listening_socket
    from miniagents.testing import virtual_time

    original = signal.getsignal(signal.SIGTERM)
    try:
        first, second = (
            uvicorn.Server(uvicorn.Config(Starlette(), log_level="warning", lifespan="off"))
            for _ in range(2)
        )
        sockets = [listening_socket("127.0.0.1", 0) for _ in range(2)]
        serving = asyncio.create_task(first.serve(sockets=sockets[:1]))
        await until(lambda: first.started)
        serving_too = asyncio.create_task(second.serve(sockets=sockets[1:]))
        await until(lambda: second.started)
        first.should_exit = True
        await serving
        second.should_exit = True
        await serving_too
        assert getattr(signal.getsignal(signal.SIGTERM), "__self__", None) is first
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        app = agui_app(gated(queue), authentication=NoAuthentication())
        transport = httpx2.ASGITransport(app=app)
        with virtual_time():  # (the loop's idle moments: each timer's time, at once)
            async with httpx2.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                posted = asyncio.create_task(client.post("/", json=run_input()))
                # (virtual seconds: the run starts, and sse-starlette's watch looked at once)
                await asyncio.sleep(5)
                assert app.state.runs.get("r1") is not None
                queue.put_nowait("Hello")
                queue.put_nowait(None)
                response = await posted
        said = [line for line in response.text.splitlines() if line.startswith("data:")]
        assert "RUN_ERROR" not in response.text, said
        assert '"RUN_FINISHED"' in said[-1]
    finally:
        signal.signal(signal.SIGTERM, original)
        for each in sockets:
            each.close()
