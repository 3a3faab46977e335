"""The apps under a real uvicorn on 127.0.0.1, a reader of their SSE streams, what tests send.

Besides the server and the reader: the bodies both protocols take (an AG-UI run input, a
``useChat`` request), the agents and tools the web tests share (a gated agent, a poet that
writes what the test gives it, a ``delete_file`` tool that notes what it deleted), and the
events' types.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import signal
import socket
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2 as httpx
import pytest
import uvicorn
import uvicorn.config
from ag_ui.core import Event
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.types import ASGIApp

from miniagents import InteractionContext, Message, MessagePromise, MiniAgent, miniagent
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.tools import FunctionTool, ToolApprovalRequest, ToolCallError
from miniagents.ext.web import agui_app, ai_sdk_app
from miniagents.ext.web._durable import FoundRun
from miniagents.ext.web.serving import listening_socket, server_config
from miniagents.messages import MessageSequencePromise
from miniagents.promising.lowlevel import running_tasks
from miniagents.testing import FakeLLMServer, ToolCall
from tests.fakes.fixtures import WAIT

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

AGUI_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
"""Validates an AG-UI event by the protocol's own models."""


@dataclass(frozen=True)
class SSEEvent:
    id: str | None
    data: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)

    @property
    def type(self) -> str:
        return str(self.json["type"]) if self.data != "[DONE]" else "[DONE]"


@asynccontextmanager
async def served(
    app: ASGIApp, *, stop: asyncio.Event | None = None, bounded: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` under uvicorn on a free port of 127.0.0.1, and an httpx client pointed at it.

    The socket listens before the server starts, so the first request waits in its backlog
    rather than racing the start; it is the commands' own (``listening_socket``), so its
    connections send each write at once, as theirs do. The server stops at the end, or once
    ``stop`` is set (a shutdown as a signal starts it, while the test's client still reads).
    ``bounded``: the server is ``server_config``'s (``app`` a Starlette app), else uvicorn's
    plain one.
    """
    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    if bounded:
        assert isinstance(app, Starlette), "server_config serves a Starlette app"
        config = server_config(app, shutdown_seconds=5)
    else:
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
    server = uvicorn.Server(config)

    async def stopped(stop: asyncio.Event) -> None:
        await stop.wait()
        server.should_exit = True

    async with _serving(server, sock):
        stopping = None if stop is None else asyncio.create_task(stopped(stop))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                yield client
        finally:
            if stopping is not None:
                stopping.cancel()


_FOUND: weakref.WeakKeyDictionary[uvicorn.Server, dict[int, Any]] = weakref.WeakKeyDictionary()
"""The signal handlers each server of :func:`_serving` found as it started."""


@asynccontextmanager
async def _serving(
    server: uvicorn.Server, listener: socket.socket
) -> AsyncIterator[asyncio.Task[None]]:
    """``server`` serving on ``listener`` (the task serving), stopped and ``listener`` closed at
    the end, which leaves the process the signal handlers it had before.

    uvicorn puts back the handlers each server found as it ends: two servers that end in
    another order than they started leave the first one's, of a stopped server (which
    sse-starlette's watch then read as every stream's stop). Here a handler of a stopped
    server of this helper is replaced by the one that server found, down to a live one.
    """
    _FOUND[server] = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        yield task
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            listener.close()
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    handler = signal.getsignal(sig)
                    # (a stopped server's, of this helper: the one it found, down to a live one)
                    while (
                        isinstance(its := getattr(handler, "__self__", None), uvicorn.Server)
                        and its in _FOUND
                        and its.should_exit
                    ):
                        handler = _FOUND[its][sig]
                    signal.signal(sig, handler)


async def aclosed_with(websocket: ClientConnection, code: int, reason: str) -> None:
    """Check that the server closes ``websocket`` (at its next read) with ``code`` and
    ``reason``."""
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(websocket.recv(), WAIT)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)


@dataclass(frozen=True)
class Running:
    """A server that :func:`running` runs: uvicorn's, the task serving and its port."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def ashut_down(self) -> None:
        """Shut the server down, failing if that takes more than WAIT seconds."""
        self.server.should_exit = True
        await asyncio.wait_for(asyncio.shield(self.task), WAIT)


@asynccontextmanager
async def running(config: uvicorn.Config) -> AsyncIterator[Running]:
    """A server of ``config`` (``server_config``'s) on a free port of 127.0.0.1.

    It listens on the commands' own socket (``listening_socket``). The server is stopped at
    the end; the tests talk to it over raw sockets.
    """
    server = uvicorn.Server(config)
    listener = listening_socket("127.0.0.1", 0)
    async with _serving(server, listener) as serving:
        yield Running(server, serving, listener.getsockname()[1])


@asynccontextmanager
async def bounded(config: uvicorn.Config) -> AsyncIterator[int]:
    """The port of a server of ``config`` that :func:`running` runs."""
    async with running(config) as run:
        yield run.port


def configs_run(monkeypatch: pytest.MonkeyPatch) -> list[uvicorn.Config]:
    """The configurations of the uvicorn servers run from now on, none of them served.

    A command that serves (``miniagents web``, ``miniagents studio``) returns at once, its
    server started in name only.
    """
    configs: list[uvicorn.Config] = []

    def run(self: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        configs.append(self.config)
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return configs


async def trickle(writer: asyncio.StreamWriter, piece: bytes) -> None:
    """Send ``piece`` again and again, a pause between, until the connection is closed."""
    with suppress(ConnectionError):
        while not writer.is_closing():
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)  # (the pace only: the server's close or answer decides)


async def answer_of(reader: asyncio.StreamReader) -> tuple[bytes, Any]:
    """The next answer read from a raw connection: its status line and headers, its JSON."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    return head, json.loads(await asyncio.wait_for(reader.readexactly(length), WAIT))


class SSEReader:
    """Reads the SSE events of one streamed response, a few at a time or to its end."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> SSEEvent | None:
        """The next event, or ``None`` at the end of the stream."""
        event_id: str | None = None
        data: list[str] = []
        async for line in self._lines:
            if line == "":
                if data:
                    return SSEEvent(event_id, "\n".join(data))
                event_id = None
            elif not line.startswith(":"):  # a comment: sse-starlette's pings
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    event_id = value
                elif name == "data":
                    data.append(value)
        return None

    async def take(self, count: int) -> list[SSEEvent]:
        """The next ``count`` events (fewer if the stream ends)."""
        found: list[SSEEvent] = []
        while len(found) < count and (event := await self.next()) is not None:
            found.append(event)
        return found

    async def until(self, kind: str) -> list[SSEEvent]:
        """The events up to and with the next one of type ``kind``."""
        found: list[SSEEvent] = []
        while (event := await self.next()) is not None:
            found.append(event)
            if event.type == kind:
                return found
        raise AssertionError(f"the stream ended without a {kind} event: {found}")

    async def rest(self) -> list[SSEEvent]:
        """Every event to the end of the stream."""
        found: list[SSEEvent] = []
        while (event := await self.next()) is not None:
            found.append(event)
        return found


async def events_of(response: httpx.Response) -> list[SSEEvent]:
    """The SSE events of a streamed response, to its end."""
    return await SSEReader(response).rest()


async def post_events(
    client: httpx.AsyncClient,
    body: object,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
) -> tuple[httpx.Response, list[SSEEvent]]:
    """POST ``body`` (with ``headers``) and read the whole stream of the response."""
    async with client.stream("POST", path, json=body, headers=dict(headers or {})) as response:
        return response, await events_of(response)


async def get_events(
    client: httpx.AsyncClient, path: str, headers: Mapping[str, str] | None = None
) -> tuple[httpx.Response, list[SSEEvent]]:
    """GET ``path`` and read the whole stream of the response."""
    async with client.stream("GET", path, headers=dict(headers or {})) as response:
        return response, await events_of(response)


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (a hang fails after WAIT seconds).

    For what no event tells (a count another task or a browser's page keeps): where a task
    does, wait for it (the library's tasks' end: :func:`tasks_ended`), not for this poll.
    """

    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - the app signals no event for this
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), WAIT)


async def tasks_ended() -> None:
    """Wait until every task the library started has ended (a hang fails after WAIT seconds).

    It waits on the tasks themselves, again while new ones appear (a task that ends may
    have started another).
    """

    async def ended() -> None:
        while tasks := running_tasks():
            await asyncio.wait(tasks)

    await asyncio.wait_for(ended(), WAIT)


async def _from_queue(tokens: asyncio.Queue[str | None]) -> AsyncIterator[str]:
    while (token := await tokens.get()) is not None:
        yield token


def gated(tokens: asyncio.Queue[str | None]) -> MiniAgent[[]]:
    """An agent whose one reply streams the tokens put in ``tokens`` (``None`` ends it)."""

    @miniagent
    async def gated_agent(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(_from_queue(tokens)))

    return gated_agent


class GatedDurable:
    """A durable agent's runs as the run manager uses them (a stand-in: none are recorded),
    whose awaits before a start (``aabandon_all``: a new chat turn's, or a new AG-UI run's;
    ``afind_named``: an AG-UI start's run-id check) each wait for the test's ``gate``,
    counted in ``waiting``.

    Put it in the manager as ``app.state.runs.durable = GatedDurable(agent)``.
    """

    def __init__(self, agent: MiniAgent[..., Message]) -> None:
        self.agent = agent
        self.waiting = 0
        self.gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def _await_gate(self) -> None:
        self.waiting += 1
        await self.gate

    async def aabandon_all(
        self,
        owner: str | None,
        key: str | None = None,
        *,
        group: str | None = None,
        but: Collection[str | None] = (),
        paused_elsewhere: bool = False,
    ) -> None:
        await self._await_gate()

    async def afind_named(self, owner: str | None, name: str) -> None:
        await self._await_gate()

    async def acancelled(self, workflow_ids: Collection[str]) -> set[str]:
        return set()

    async def afind(self, owner: str | None, **_: object) -> FoundRun | None:
        return None

    def workflow_id(self, owner: str | None, key: str, group: str) -> str:
        return f"{key}/{group}"

    def started(
        self, workflow_id: str, messages: list[Message], kwargs: Mapping[str, object]
    ) -> MessageSequencePromise[Message]:
        return self.agent.inquire(messages, **kwargs)

    def abandon(self, workflow_id: str) -> None:
        pass

    async def awritten(self) -> None:
        pass

    async def alogged_failure(self, workflow_id: str, error: Exception) -> str:
        return ""

    async def aapprovals_open(
        self, workflow_id: str, requests: Sequence[ToolApprovalRequest], logger: logging.Logger
    ) -> None:
        pass  # (nothing is recorded: the pause is told at once)

    async def anote_failure(
        self, workflow_id: str, error: Exception, reference: str, logger: logging.Logger
    ) -> None:
        pass


def queued_poet(tokens: asyncio.Queue[str | None]) -> MiniAgent[[str]]:
    """A tool agent ``POET`` whose reply streams the tokens put in ``tokens`` (``None`` ends it)."""

    @miniagent
    async def poet(ctx: InteractionContext, subject: str) -> None:
        """Write a poem."""
        ctx.reply(MessagePromise.from_async_iterable(_from_queue(tokens)))

    return poet


def weather(city: str) -> str:
    """Get the weather in a city."""
    if city == "Atlantis":
        raise ToolCallError("There is no weather under the sea.")
    return f"Sunny in {city}"


@miniagent
async def poet(ctx: InteractionContext, subject: str) -> None:
    """Write a one-line poem."""
    ctx.reply(offline_agent.inquire(subject, reply=f"Streams flow, {subject} glow.", token_delay=0))


def weather_and_poem(*weathers: CallTool, answer: str) -> MiniAgent[..., Message]:
    """The offline model calling ``weathers`` (``weather`` calls), then ``POET``, then answering."""
    calls = [*weathers, CallTool("POET", {"subject": "rivers"})]
    return offline_agent.fork(
        tools=[weather, poet], reply=one_per_call(calls, answer), token_delay=0
    )


def two_models(
    llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, *, then_fail: bool = False
) -> MiniAgent[[]]:
    """An agent whose reply is gpt-4o-mini's answer (12 tokens in, 3 out), then gpt-4o's (20
    in, 4 of them cached, 5 out), each of the real OpenAI SDK on ``llm``; or, ``then_fail``,
    the first answer and then a ``RuntimeError("the agent broke")``."""
    monkeypatch.setenv("OPENAI_BASE_URL", llm.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    llm.reply(tokens=["Small ", "answer."], usage=(12, 3), for_model="gpt-4o-mini")
    llm.reply(tokens=["Big ", "answer."], usage=(20, 5), cached_tokens=4, for_model="gpt-4o")
    model = openai_agent.fork(stream=True, max_retries=0)

    @miniagent
    async def answers(ctx: InteractionContext) -> None:
        ctx.reply(await model.inquire("Hi", model="gpt-4o-mini"))
        if then_fail:
            raise RuntimeError("the agent broke")
        ctx.reply(await model.inquire("Hi", model="gpt-4o"))

    return answers


def with_writer(llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> MiniAgent[..., Message]:
    """gpt-4o-mini calling ``WRITER`` (10 tokens in, 2 out), then answering (15 in, 3 out);
    ``WRITER``, an agent called as a tool, calls gpt-4o (30 in, 7 out). Each of the real
    OpenAI SDK on ``llm``."""
    model = _openai_on(llm, monkeypatch)
    llm.reply(
        tool_calls=[ToolCall("WRITER", {"subject": "rivers"}, id="w1")],
        usage=(10, 2),
        for_model="gpt-4o-mini",
    )
    llm.reply(tokens=["Rivers ", "flow."], usage=(30, 7), for_model="gpt-4o")
    llm.reply(tokens=["Done."], usage=(15, 3), for_model="gpt-4o-mini")

    @miniagent
    async def writer(ctx: InteractionContext, subject: str) -> None:
        """Write a one-line poem."""
        ctx.reply(model.inquire(subject, model="gpt-4o"))

    return model.fork(model="gpt-4o-mini", tools=[writer])


def approving(llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> MiniAgent[..., Message]:
    """gpt-4o-mini calling ``delete_file``, which waits for approval (10 tokens in, 2 out),
    then answering (15 in, 3 out: its answer's usage says 25 in, 5 out, its tool loop's),
    of the real OpenAI SDK on ``llm``."""
    model = _openai_on(llm, monkeypatch)
    llm.reply(
        tool_calls=[ToolCall("delete_file", {"path": "a.txt"}, id="d1")],
        usage=(10, 2),
        for_model="gpt-4o-mini",
    )
    llm.reply(tokens=["Deleted."], usage=(15, 3), for_model="gpt-4o-mini")
    tool = FunctionTool(delete_file, requires_approval=True)
    return model.fork(model="gpt-4o-mini", tools=[tool])


def _openai_on(llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> MiniAgent[..., Message]:
    monkeypatch.setenv("OPENAI_BASE_URL", llm.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    return openai_agent.fork(stream=True, max_retries=0)


# -- what the tests send, and read -------------------------------------------------------------


def agui_input(
    run_id: str = "r1",
    *,
    thread: str = "t1",
    text: str = "Hi",
    resume: list[dict[str, Any]] | None = None,
    messages: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An AG-UI ``RunAgentInput`` of one user message (``text``), or ``messages``."""
    body: dict[str, Any] = {
        "threadId": thread,
        "runId": run_id,
        "messages": messages or [{"id": "u1", "role": "user", "content": text}],
    }
    if resume is not None:
        body["resume"] = resume
    return body


def chat_request(
    chat_id: str = "c1", *, text: str = "Hi", messages: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A ``useChat`` request of one user message (``text``), or ``messages``."""
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}
    return {"id": chat_id, "trigger": "submit-message", "messages": messages or [user]}


def answered_chat(
    events: list[SSEEvent], approval: dict[str, Any], *, text: str = "Delete"
) -> dict[str, Any]:
    """The chat ``c1`` (its user's message ``text``) as ``useChat`` sends it again after
    ``addToolApprovalResponse``: the call asked for in ``events``, answered with ``approval``."""
    data = [event.json for event in events if event.data != "[DONE]"]
    asked = next(e for e in data if e["type"] == "tool-approval-request")
    call = next(
        e
        for e in data
        if e["type"] == "tool-input-available" and e["toolCallId"] == asked["toolCallId"]
    )
    part = {
        "type": f"tool-{call['toolName']}",
        "toolCallId": call["toolCallId"],
        "state": "approval-responded",
        "input": call["input"],
        "approval": {"id": asked["approvalId"], **approval},
    }
    assistant_message = {"id": data[0]["messageId"], "role": "assistant", "parts": [part]}
    [user] = chat_request("c1", text=text)["messages"]
    return chat_request("c1", messages=[user, assistant_message])


def unmetered(event: dict[str, Any]) -> dict[str, Any]:
    """An AG-UI event's JSON without the usage it reports (its ``usage`` and ``metadata``)."""
    return {key: value for key, value in event.items() if key not in ("usage", "metadata")}


def event_types(events: list[SSEEvent]) -> list[str]:
    """The events' types."""
    return [event.type for event in events]


def collapsed(events: list[SSEEvent]) -> list[str]:
    """The events' types, each run of one type as one."""
    return [kind for kind, _ in itertools.groupby(event.type for event in events)]


deleted: list[str] = []
"""The paths ``delete_file`` was called with (emptied before each test by ``nothing_deleted``)."""


def delete_file(path: str) -> str:
    """Delete a file."""
    deleted.append(path)
    return f"Deleted {path}"


@pytest.fixture(autouse=True)
def nothing_deleted() -> None:
    """Empty ``deleted`` (import it into a test module that uses ``delete_file``)."""
    deleted.clear()


def approving_assistant() -> MiniAgent[..., Message]:
    """An offline assistant that calls ``delete_file`` (which needs a person's approval) on
    ``a.txt``, then says it finished."""
    return offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=one_per_call(CallTool("delete_file", {"path": "a.txt"}), "Finished."),
        token_delay=0,
    )


def approval_input(
    run_id: str = "r1", resume: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The AG-UI run ``run_id`` that asks :func:`approving_assistant` to delete ``a.txt``
    (``resume``: the entries that answer its interrupts)."""
    return agui_input(run_id, text="Delete a.txt", resume=resume)


# -- the two protocols, for the tests that run over both ------------------------------------


@dataclass(frozen=True)
class Protocol:
    """How one protocol's app is driven."""

    name: str
    app: Callable[..., Starlette]
    body: Callable[[str], dict[str, Any]]
    resume_path: Callable[[str], str]
    no_run_status: int  # resuming a run that is not there
    invalid_code: str
    bad_shapes: tuple[tuple[bytes, str], ...]  # a body of the wrong shape, a name its error says
    last_type: str

    def __str__(self) -> str:
        return self.name


AGUI = Protocol(
    name="agui",
    app=agui_app,
    body=lambda key: agui_input(key, thread=f"thread-{key}"),
    resume_path=lambda key: f"/runs/{key}",
    no_run_status=404,
    invalid_code="invalid_run_input",
    bad_shapes=(
        (b'{"threadId": "t", "messages": []}', "runId"),
        (b'{"threadId": "t", "runId": "r", "messages": "hi"}', "messages"),
        (b"[1, 2]", "RunAgentInput"),
        (b'{"threadId": "t", "runId": "", "messages": []}', "runId is empty"),
        (b'{"threadId": "t", "runId": "a/b", "messages": []}', "runId holds a '/'"),
    ),
    last_type="RUN_FINISHED",
)
AI_SDK = Protocol(
    name="ai_sdk",
    app=ai_sdk_app,
    body=chat_request,
    resume_path=lambda key: f"/{key}/stream",
    no_run_status=204,
    invalid_code="invalid_chat_request",
    bad_shapes=(
        (b'{"messages": []}', "id"),
        (b'{"id": "c", "messages": [{"id": "u", "role": "robot", "parts": []}]}', "role"),
        (b'{"id": "c", "messages": [{"id": "u", "role": "user"}]}', "parts"),
        (b'{"id": "", "messages": []}', "id is empty"),
        (b'{"id": "c/d", "messages": []}', "id holds a '/'"),
    ),
    last_type="[DONE]",
)
PROTOCOLS = [AGUI, AI_SDK]

SERVED_WS = "websockets-sansio"
"""The uvicorn WebSocket protocol ``server_config`` serves with, the websockets library
installed (the only one from uvicorn 0.52.1, the web extra's floor: it drops a page that
vanished as soon as its ping goes unanswered)."""
