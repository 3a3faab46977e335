"""A live run of AG-UI, the AI SDK or the chat page is cut past ``max_live_run_bytes``.

Its run kept every event it streamed, and its reply its text, with no bound while it ran
(a reply of 100 MB peaked at 301 MB). Past the bound, the run is cut: its agent is
cancelled, its client gets its protocol's error (AG-UI's ``RUN_ERROR``, the AI SDK's
``error`` part, which the chat page shows), and so does every later reader of the run.
A run forgotten as it ends (whole or cut) leaves nothing of its reply behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import tracemalloc
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.types import Message as ASGIMessage
from starlette.types import Receive, Scope, Send

from miniagents import Message, MiniAgent
from miniagents.ext.llm.offline import CallTool
from miniagents.ext.web import NoAuthentication, WebSettings, agui_app, ai_sdk_app
from miniagents.ext.web._runs import RunManager
from miniagents.ext.web.web_chat import web_chat_app
from tests.ext.web.long_reply import BOUND, PEAK_BYTES, TOKEN, TOKENS, Sent, writer
from tests.ext.web.serving import (
    SSEEvent,
    agui_input,
    chat_request,
    event_types,
    get_events,
    post_events,
    served,
    until,
    weather_and_poem,
)
from tests.fakes.fixtures import WAIT

HELD_BYTES = 80_000
"""What a run forgotten as it ended may leave allocated (caches' noise, under 30 KB; its
reply's events and text were over 200 KB, cut, or 10 MB, whole)."""
PAGE = Path(__file__).parents[3] / "examples" / "web_chat" / "index.html"


@dataclass(frozen=True)
class Door:
    """One protocol's app, where its runs start and are read again, and its error event."""

    name: str
    app: Callable[..., Starlette]
    path: str
    body: Callable[[str], dict[str, Any]]
    again: Callable[[str], str]
    error: Callable[[list[SSEEvent]], str]

    def __str__(self) -> str:
        return self.name


def _agui_error(events: list[SSEEvent]) -> str:
    last = events[-1]
    assert last.type == "RUN_ERROR", [event.type for event in events[-3:]]
    # the text message it cut is ended first (was: RUN_ERROR came with it still open)
    started = [event.json["messageId"] for event in events if event.type == "TEXT_MESSAGE_START"]
    ended = [event.json["messageId"] for event in events if event.type == "TEXT_MESSAGE_END"]
    assert started
    assert ended == started, (started, ended)
    assert last.json["code"] == "WebRunTooLargeError"
    return str(last.json["message"])


def _ai_sdk_error(events: list[SSEEvent]) -> str:
    assert [event.type for event in events[-2:]] == ["error", "[DONE]"], events[-2:]
    # the text it cut is ended first (was: the error came with it still open)
    assert _left_open(events[:-2], _AI_SDK_ENDS) == [], event_types(events)
    assert "text-end" in event_types(events)
    return str(events[-2].json["errorText"])


def _chat_page(agent: MiniAgent[..., Message], **kwargs: Any) -> Starlette:
    return web_chat_app(agent, page=PAGE, **kwargs)


DOORS = [
    Door(
        "agui",
        agui_app,
        "/",
        lambda key: agui_input(key, thread=f"t-{key}"),
        lambda key: f"/runs/{key}",
        _agui_error,
    ),
    Door("ai_sdk", ai_sdk_app, "/", chat_request, lambda key: f"/{key}/stream", _ai_sdk_error),
    Door(
        "chat_page",
        _chat_page,
        "/api/chat/",
        chat_request,
        lambda key: f"/api/chat/{key}/stream",
        _ai_sdk_error,
    ),
]


@pytest.mark.parametrize("door", DOORS, ids=str)
async def test_a_live_run_past_max_live_run_bytes_is_cut_with_its_protocols_error(
    door: Door,
) -> None:
    sent = Sent()
    app = door.app(
        writer(sent),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_run_bytes=BOUND, keep_runs_for=3600),
    )
    manager = app.state.runs if door.name != "chat_page" else None
    async with served(app) as client:
        tracemalloc.start()
        try:
            _response, events = await post_events(client, door.body("k1"), door.path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        message = door.error(events)
        await until(lambda: sent.stopped)
        if manager is not None:
            await until(lambda: manager.live == 0)
        # (read again from the start, as a client that lost the stream mid-way)
        again_headers = {"last-event-id": "0"}
        _response, again = await get_events(client, door.again("k1"), again_headers)
    assert "max_live_run_bytes (100000)" in message, message
    assert "was cut" in message
    assert door.error(again) == message  # (a later reader gets the same error)
    assert sent.tokens < TOKENS  # (its agent was stopped: it wrote no more)
    streamed = sum(len(event.data) for event in events)
    assert streamed < BOUND + 2 * len(TOKEN) + 10_000, streamed
    assert peak < PEAK_BYTES, f"peak {peak:,} bytes"


@pytest.mark.parametrize("door", DOORS[:2], ids=str)
@pytest.mark.parametrize("bound", [BOUND, 10 * TOKENS * len(TOKEN)], ids=["cut", "whole"])
async def test_a_run_forgotten_as_it_ends_keeps_nothing_of_its_reply(
    door: Door, bound: int
) -> None:
    """``keep_runs_for=0``: once the run has ended (whole, or cut), neither its events nor its
    reply's text stay (its job's context has exited; its task's end holds no frame of it)."""
    sent = Sent()
    app = door.app(
        writer(sent),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_run_bytes=bound, keep_runs_for=0),
    )
    manager = app.state.runs
    async with served(app) as client:
        await post_events(client, door.body("warm"), door.path)  # (the caches, filled once)
        await until(lambda: manager.live == 0 and manager.kept == 0)
        sent.stopped = False
        gc.collect()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            _response, events = await post_events(client, door.body("k1"), door.path)
            streamed = sum(len(event.data) for event in events)
            del events
            # (and its stream closed: the client may read the last event before the server's
            # response lets go of the run, sooner still on a socket that sends at once)
            await until(
                lambda: sent.stopped and not (manager.live or manager.kept or manager.open_streams)
            )
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert streamed > BOUND
    assert held - before < HELD_BYTES, f"{held - before:,} bytes held"


async def _responses_once_closed(manager: RunManager) -> list[EventSourceResponse]:
    """The SSE responses still in memory in the first pass of the loop that finds none of
    ``manager``'s streams open (looked at from this task in each pass, not a pass later; a
    hang fails after WAIT seconds)."""
    async with asyncio.timeout(WAIT):
        while manager.open_streams:  # noqa: ASYNC110 - the manager signals no event for this
            await asyncio.sleep(0)
    gc.collect()
    return [held for held in gc.get_objects() if isinstance(held, EventSourceResponse)]


@pytest.mark.parametrize("door", DOORS[:2], ids=str)
async def test_a_stream_that_frees_its_slot_holds_nothing_of_its_reply_any_more(
    door: Door,
) -> None:
    """When a run's stream frees its slot (``open_streams`` drops), nothing holds its
    response any more, nor through it its run's events.

    (Was: its watch of its server's stop, cancelled as the stream ended, held the response
    until it ran its cancellation, a pass of the loop after the slot was freed; a test that
    measured in that pass found the reply held, 144 kB cut or 5 MB whole, on Python 3.13
    over a socket that sends at once.)
    """
    app = door.app(
        writer(Sent()),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_run_bytes=BOUND, keep_runs_for=0),
    )
    async with served(app) as client:
        _response, events = await post_events(client, door.body("k1"), door.path)
        door.error(events)
        held = await _responses_once_closed(app.state.runs)
    assert held == []


@pytest.mark.parametrize("how", ["task", "scope"])
async def test_a_stream_whose_request_is_cancelled_frees_its_slot_and_stays_cancelled(
    how: str,
) -> None:
    """A run's stream whose request is cancelled as it sends (``task``: its task, as a
    server cancels its connections' tasks; ``scope``: an anyio cancel scope around the app,
    as a middleware's) lets its cancellation through, its slot freed and its response let
    go of."""
    sent = Sent()
    app = agui_app(
        writer(sent), authentication=NoAuthentication(), settings=WebSettings(keep_runs_for=0)
    )
    manager = app.state.runs
    ends: list[tuple[str, int]] = []

    async def cancelling(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request = asyncio.current_task()
        assert request is not None
        around = anyio.CancelScope()

        async def sending(message: ASGIMessage) -> None:
            await send(message)
            if not message.get("body"):
                return
            if how == "task" and not request.cancelling():  # (its first event sent)
                request.cancel()
            around.cancel()

        try:
            with around if how == "scope" else contextlib.nullcontext():
                await app(scope, receive, sending)
        except asyncio.CancelledError:
            ends.append(("cancelled", manager.open_streams))
            raise
        ends.append(("cancelled" if around.cancelled_caught else "returned", manager.open_streams))

    async with served(cancelling) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await post_events(client, agui_input("k1"))
        held = await _responses_once_closed(manager)
        await until(lambda: sent.stopped and manager.live == 0)
    assert ends == [("cancelled", 0)]
    assert held == []


_ENDS = {
    "TEXT_MESSAGE_END": ("TEXT_MESSAGE_START", "messageId"),
    "TOOL_CALL_END": ("TOOL_CALL_START", "toolCallId"),
    "SUBAGENT_FINISHED": ("SUBAGENT_STARTED", "subagentRunId"),
}
"""The AG-UI events that end an item, with the event that starts it and its id's field."""


_AI_SDK_ENDS = {
    "text-end": ("text-start", "id"),
    "tool-input-available": ("tool-input-start", "toolCallId"),
    "tool-input-error": ("tool-input-start", "toolCallId"),
}
"""The UI message stream parts that end a part, with the one that starts it and its id's field."""


def _left_open(events: list[SSEEvent], ends: Mapping[str, tuple[str, str]] = _ENDS) -> list[str]:
    """The items (text messages, tool calls, nested runs; ``ends``: the protocol's events
    that end one, AG-UI's by default) started and never ended.

    An end of an item that is not open fails.
    """
    opened: list[str] = []
    starts = dict(ends.values())
    for event in events:
        if event.type in starts:
            opened.append(f"{event.type} {event.json[starts[event.type]]}")
        elif event.type in ends:
            start, field = ends[event.type]
            item = f"{start} {event.json[field]}"
            assert item in opened, (item, opened)
            opened.remove(item)
    return opened


async def _cut_after_each_event(
    client: httpx.AsyncClient,
    manager: RunManager,
    whole: list[SSEEvent],
    body: Callable[[str], dict[str, Any]],
) -> AsyncIterator[tuple[int, str, list[SSEEvent]]]:
    """The run ``body`` starts, cut after each event of ``whole`` (its uncut run) but the
    first: the app's ``max_live_run_bytes`` one byte short of the events up to the next.

    Each cut run's key (``body``'s argument) is the event's index in two digits (a run's
    ids hold its key: the same size for each); yielded: the index, the key, its events.
    """
    sizes = list(itertools.accumulate(len(event.data) for event in whole))
    for cut_after in range(1, len(whole)):
        manager.settings = WebSettings(max_live_run_bytes=sizes[cut_after] - 1)
        key = f"{cut_after:02d}"
        _response, events = await post_events(client, body(key))
        yield cut_after, key, events


async def test_an_agui_run_cut_between_two_events_of_one_part_ends_every_item_it_opened() -> None:
    """A cut lands after any event of the run, inside a part too (a tool's output opens a
    nested run and its text message in one part, and ends them, then gives the result, in
    another): its ``RUN_ERROR`` comes with every text message, tool call and nested run
    the client saw opened ended before it, and nothing else ended. (A cut after a tool's
    output's ``TEXT_MESSAGE_END``, before its ``SUBAGENT_FINISHED``, left the nested run
    open; one after its ``SUBAGENT_STARTED``, before its ``TEXT_MESSAGE_START``, ended a
    text message never started.)"""
    agent = weather_and_poem(CallTool("weather", {"city": "Paris"}), answer="Both done.")
    app = agui_app(agent, authentication=NoAuthentication())
    manager = app.state.runs
    async with served(app) as client:
        _response, whole = await post_events(client, agui_input("r00", thread="t00"))
        assert whole[-1].type == "RUN_FINISHED"
        assert "SUBAGENT_STARTED" in {event.type for event in whole}
        cuts = _cut_after_each_event(
            client, manager, whole, lambda key: agui_input(f"r{key}", thread=f"t{key}")
        )
        async for cut_after, key, events in cuts:
            if cut_after == len(whole) - 1:  # (its RUN_FINISHED: the test below)
                continue
            seen = [event.data.replace(key, "00") for event in events[: cut_after + 1]]
            assert seen == [event.data for event in whole[: cut_after + 1]]
            assert events[-1].type == "RUN_ERROR", (cut_after, event_types(events))
            assert events[-1].json["code"] == "WebRunTooLargeError"
            assert _left_open(events[:-1]) == [], (cut_after, event_types(events))


async def test_an_ai_sdk_run_cut_between_two_events_ends_every_part_it_opened() -> None:
    """A cut lands after any event of the run: its ``error`` comes with every text and
    call's input the client saw started ended before it (a text by ``text-end``, an input by
    ``tool-input-error``), and nothing else ended. (It came with them still streaming: the
    client's message kept a text part, or a call, in its streaming state.) A run whose
    ending (``finish-step``, ``finish``, ``[DONE]``) takes it over the bound ends as it
    says, finished: it was cut after its ``finish``, or its stream broke off before it."""
    agent = weather_and_poem(CallTool("weather", {"city": "Paris"}), answer="Both done.")
    app = ai_sdk_app(agent, authentication=NoAuthentication())
    manager = app.state.runs
    async with served(app) as client:
        _response, whole = await post_events(client, chat_request("c00"))
        assert event_types(whole)[-3:] == ["finish-step", "finish", "[DONE]"]
        assert {"tool-input-start", "text-start"} <= set(event_types(whole))
        ended_inputs = 0
        cuts = _cut_after_each_event(client, manager, whole, lambda key: chat_request(f"c{key}"))
        async for cut_after, _key, events in cuts:
            types = event_types(events)
            if cut_after >= len(whole) - 3:  # (its ending: it finishes whole)
                assert types == event_types(whole), (cut_after, types)
                continue
            assert types[-2:] == ["error", "[DONE]"], (cut_after, types)
            assert "finish" not in types, (cut_after, types)
            assert _left_open(events[:-2], _AI_SDK_ENDS) == [], (cut_after, types)
            ended_inputs += types.count("tool-input-error")
        assert ended_inputs > 0  # (some cut came inside a call's input)


async def test_an_agui_run_whose_finish_takes_it_over_the_bound_ends_finished_once() -> None:
    """A run whose ``RUN_FINISHED`` takes it over ``max_live_run_bytes`` ends finished, as
    it says: its ``RUN_ERROR`` of a cut came after its ``RUN_FINISHED`` (two endings)."""
    agent = weather_and_poem(CallTool("weather", {"city": "Paris"}), answer="Both done.")
    app = agui_app(agent, authentication=NoAuthentication())
    manager = app.state.runs
    async with served(app) as client:
        _response, whole = await post_events(client, agui_input("r00", thread="t00"))
        assert whole[-1].type == "RUN_FINISHED"
        bound = sum(len(event.data) for event in whole) - 1
        manager.settings = WebSettings(max_live_run_bytes=bound)
        _response, events = await post_events(client, agui_input("r01", thread="t01"))
    assert event_types(events) == event_types(whole)


async def test_a_protocol_whose_cut_fails_still_ends_the_run_cut_and_logs_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A protocol whose ``cut`` raises (its own bug) still ends the cut run with the
    encoder's failure events (``RUN_ERROR`` of ``WebRunTooLargeError``) and its agent is
    stopped; the failure is logged, saying to fix the protocol's ``cut()``. (The error
    escaped the job's task: the run ended with no ending event, its agent still running.)"""
    sent = Sent()
    app = agui_app(
        writer(sent),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_run_bytes=BOUND),
    )
    manager = app.state.runs

    def failing_cut(*args: object) -> list[str]:
        raise RuntimeError("a bug of the protocol")

    monkeypatch.setattr(manager.protocol, "cut", failing_cut)
    async with served(app) as client:
        with caplog.at_level(logging.ERROR, logger=manager.protocol.logger.name):
            _response, events = await post_events(client, agui_input("k1", thread="t-k1"))
            await until(lambda: sent.stopped)
            await until(lambda: manager.live == 0)
    assert events[-1].type == "RUN_ERROR", event_types(events)[-3:]
    assert events[-1].json["code"] == "WebRunTooLargeError"
    assert "was cut" in events[-1].json["message"]
    assert sent.tokens < TOKENS
    logged = [record for record in caplog.records if "Fix the protocol's cut()" in record.message]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "a bug of the protocol" in str(logged[0].exc_info[1])
