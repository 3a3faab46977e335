"""A durable agent's runs over SSE survive a server killed with SIGKILL and started again.

Each test runs ``durable_server.py`` (the web app of a durable OpenAI agent, against the
fake LLM server of the test, with the real openai SDK) in a child process, follows a run
with an httpx SSE client, kills the server (never after a sleep: when the client has read
the event the test waits for), starts it again on the same SQLite file and goes on: the
client reconnects with ``Last-Event-ID`` and gets the rest of the run, nothing twice and no
gap, the same events as a run nobody killed; the server's record of requests shows that no
model call that had completed was made again, and the tools' side effects happened once.
The same holds for a run that paused for approvals and was resumed before the kill (each
run, the paused one and the one that resumed it, keeps its events' ids), and for an app
mounted in another (no lifespan of its own); a run given up on, or failed, ends after the
restart as it ended before it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from miniagents.ext.dbos._approvals import APPROVAL_WORKFLOW
from miniagents.ext.dbos._sqlite import close_client, new_client
from miniagents.testing import FakeLLMServer, RecordedRequest, ToolCall
from tests.ext.web.serving import SSEEvent, SSEReader, get_events, post_events, until
from tests.fakes.fixtures import fake_llm  # noqa: F401
from tests.subprocesses import ends_within, killed, run_python, start_server

CHILD = Path(__file__).with_name("durable_server.py")
TIMEOUT = 120.0  # seconds a child may take to stop, or to reach a call, at most, on a loaded
# machine: a hang guard only (the fake LLM server's waits wake at the event)
MAIN = "main-model"


class Server:
    """One run of ``durable_server.py``: its URL once it listens.

    It ends, with every process it started, at the end of the test that started it,
    whatever happened (see :func:`_servers_end`).
    """

    def __init__(self, llm: FakeLLMServer, folder: Path, protocol: str, **env: str) -> None:
        self.llm = llm
        env = {
            "DB_URL": f"sqlite:///{folder / 'runs.sqlite'}",
            "SIDE_EFFECTS": str(folder / "side_effects.txt"),
            "PROTOCOL": protocol,
            **env,
        }
        self.process, self.url = start_server(CHILD, llm=llm, env=env, timeout=TIMEOUT)
        _started.append(self)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=60)

    def kill(self) -> None:
        """SIGKILL, to the server and every process it started: nothing of them runs after
        this (a second kill does nothing)."""
        if self.process.returncode is None:
            killed(self.process, TIMEOUT)

    def stop(self) -> None:
        """SIGTERM: the server shuts down (its runs are cancelled, not ended); then every
        process it started is killed (the server too, if it did not end within ``TIMEOUT``:
        that fails the test)."""
        if self.process.returncode is not None:  # (killed, or stopped, already)
            return
        # (not reaped until its group is killed: neither ``send_signal``, which reaps a
        # server that ended by itself, nor ``wait``: the group's id is still its own)
        os.kill(self.process.pid, signal.SIGTERM)
        ended = ends_within(self.process.pid, TIMEOUT)
        _, err = killed(self.process, TIMEOUT)
        assert ended, f"the server did not end within {TIMEOUT} s of SIGTERM:\n{err[-4000:]}"
        assert "Traceback" not in err, err[-4000:]


_started: list[Server] = []
"""The servers the running test started (see :func:`_servers_end`)."""


@pytest.fixture(autouse=True)
def _servers_end() -> Iterator[None]:
    """Every server a test started is killed at its end, with every process it started, if
    it still runs (a test that failed before a server's stop left it running for the rest
    of the run)."""
    try:
        yield
    finally:
        with ExitStack() as ends:  # (each one killed, even if killing another failed)
            for server in _started:
                ends.callback(server.kill)
            _started.clear()


@dataclass(frozen=True)
class Protocol:
    """How a test speaks one protocol: the run's input, its URL, its events."""

    name: str
    body: dict[str, Any]
    path: str  # where a client resumes the run
    last_token: str  # the type of a text token's event, and its field
    body_start: str  # the type of the event a stream starts with

    def delta(self, event: SSEEvent) -> str | None:
        data = event.json if event.data != "[DONE]" else {}
        return data.get("delta") if data.get("type") == self.last_token else None


AG_UI = Protocol(
    "ag-ui",
    {"threadId": "t1", "runId": "r1", "messages": [{"id": "u1", "role": "user", "content": "Go"}]},
    "/runs/r1",
    "TEXT_MESSAGE_CONTENT",
    "RUN_STARTED",
)
AI_SDK = Protocol(
    "ai-sdk",
    {
        "id": "c1",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Go"}]}],
    },
    "/c1/stream",
    "text-delta",
    "start",
)


def _script(llm: FakeLLMServer, start: int = 0, *, pause_second: bool = False) -> None:
    """The model's two calls (from the ``start``-th): a note, then the answer."""
    if start <= 0:
        llm.reply(
            tokens=["Noting ", "it."],
            tool_calls=[ToolCall("note", {"text": "a"}, id="c1")],
            for_model=MAIN,
        )
    llm.reply(
        tokens=["All ", "done ", "now."],
        for_model=MAIN,
        pause_after=1 if pause_second else None,
    )


def _side_effects(folder: Path) -> list[str]:
    path = folder / "side_effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def _approve(call_id: str, run_id: str) -> dict[str, Any]:
    """The AG-UI run ``run_id`` of the thread that approves the call ``call_id``."""
    entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
    return {**AG_UI.body, "runId": run_id, "resume": [entry]}


def _resume_body(protocol: Protocol) -> dict[str, Any]:
    """The protocol's answer that approves the call ``k1`` its run paused at."""
    if protocol is AG_UI:
        return _approve("k1", "r2")
    answered = {
        "id": "a1",
        "role": "assistant",
        "parts": [
            {
                "type": "tool-remove",
                "toolCallId": "k1",
                "state": "approval-responded",
                "input": {"name": "a.txt"},
                "approval": {"id": "k1", "approved": True},
            }
        ],
    }
    return {**AI_SDK.body, "messages": [*AI_SDK.body["messages"], answered]}


def _normalized(events: list[SSEEvent]) -> list[str]:
    """The events' data, the AI SDK's message id (random, made per run) named ``MSG``."""
    starts = [event.json for event in events if event.type == "start"]
    message_ids = {str(start["messageId"]) for start in starts}
    assert len(message_ids) <= 1, message_ids  # one assistant message, even across a restart
    datas = [event.data for event in events]
    for message_id in message_ids:
        datas = [data.replace(message_id, "MSG") for data in datas]
    return datas


def _ids(events: list[SSEEvent]) -> list[int]:
    """The events' positions (a durable app's SSE id starts with its event's position)."""
    return [int((event.id or "-1").split(".")[0].split("~")[0]) for event in events]


@asynccontextmanager
async def _client_of(server: Server, *, kill: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``server``; after the block the server is stopped, or killed if ``kill``."""
    try:
        async with server.client() as client:
            yield client
    finally:
        if kill:
            server.kill()
        else:
            server.stop()


async def _killed_at_pause(
    server: Server,
    client: httpx.AsyncClient,
    protocol: Protocol,
    body: dict[str, Any],
    delta: str,
    *,
    paused: int,
    path: str = "/",
) -> list[SSEEvent]:
    """POST ``body`` to ``server``, read its events to the token ``delta``, then kill it.

    The model's call that streams ``delta`` pauses after it (``pause_after``): once the fake
    LLM server's request number ``paused`` has paused, the server is killed with the stream
    still open. Returns the events read, the one of ``delta`` last.
    """
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        reader = SSEReader(response)
        seen: list[SSEEvent] = []
        while (event := await reader.next()) is not None:
            seen.append(event)
            if protocol.delta(event) == delta:
                break
        await server.llm.wait_paused_async(paused, timeout=TIMEOUT)
        server.kill()
    return seen


async def _killed_in_second_call(
    llm: FakeLLMServer, folder: Path, protocol: Protocol, *, held_again: bool = False
) -> list[SSEEvent]:
    """The protocol's run (:func:`_script`), its server killed once the model's second call
    has streamed ``All `` and waits; the second call is scripted again for the next server
    (held after its first token too, if ``held_again``). Returns the events read."""
    paused = len(llm.requests) + 1  # (the second call of the run)
    _script(llm, pause_second=True)
    server = Server(llm, folder, protocol.name)
    async with _client_of(server, kill=True) as client:  # the 2nd call streams, and waits
        seen = await _killed_at_pause(
            server, client, protocol, protocol.body, "All ", paused=paused
        )
    llm.clear_script()
    _script(llm, start=1, pause_second=held_again)
    return seen


async def _reference(llm: FakeLLMServer, folder: Path, protocol: Protocol) -> list[SSEEvent]:
    """The events of the run that nobody killed."""
    folder.mkdir()  # noqa: ASYNC240 - a test's temporary folder, at once
    _script(llm)
    async with _client_of(Server(llm, folder, protocol.name)) as client:
        response, events = await post_events(client, protocol.body)
        assert response.status_code == 200
    llm.clear_script()
    return events


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", [AG_UI, AI_SDK], ids=lambda protocol: protocol.name)
async def test_a_run_killed_mid_stream_resumes_at_the_clients_last_event_after_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    protocol: Protocol,
) -> None:
    reference = _normalized(await _reference(fake_llm, tmp_path / "reference", protocol))
    before = len(fake_llm.requests)

    seen = await _killed_in_second_call(fake_llm, tmp_path, protocol)
    assert _side_effects(tmp_path) == ["note a"]

    async with _client_of(Server(fake_llm, tmp_path, protocol.name)) as client:
        last = {"Last-Event-ID": seen[-1].id or ""}
        response, rest = await get_events(client, protocol.path, last)
        assert response.status_code == 200, await response.aread()

    assert _ids(seen + rest) == list(range(len(seen) + len(rest)))  # no gap, nothing twice
    assert _normalized(seen + rest) == reference  # the same events as the run nobody killed
    models = [str(request.json["model"]) for request in fake_llm.requests[before:]]
    assert models == [MAIN] * 3  # the 1st call once; the 2nd, killed, again
    assert _side_effects(tmp_path) == ["note a"]  # the note ran once

    # started once more, the server replays the ended run from its record: no call made
    async with _client_of(Server(fake_llm, tmp_path, protocol.name)) as client:
        cut = {"Last-Event-ID": (seen + rest)[3].id or ""}  # (inside the first text)
        response, replayed = await get_events(client, protocol.path, cut)
        assert response.status_code == 200
        response, whole = await get_events(client, protocol.path)
    assert _ids(replayed) == list(range(4, len(reference)))
    if protocol is AG_UI:
        assert [event.data for event in whole] == [event.data for event in seen + rest]
    else:  # useChat's resume: the ended chat has no active stream (its message is the page's)
        assert (response.status_code, whole) == (204, [])
    assert replayed == (seen + rest)[4:]
    assert len(fake_llm.requests) == before + 3


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", [AG_UI, AI_SDK], ids=lambda protocol: protocol.name)
async def test_a_made_up_last_event_id_of_a_recovered_run_is_a_400_at_the_runs_end(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    protocol: Protocol,
) -> None:
    # after a restart a run's events come again from its replay, then live: an id beyond
    # them is known to be none of the run's at its end (or its pause) only; till then the
    # client waits, holding one stream's slot, and gets the 400 a run here answers at once
    # (the second call again, held after a token)
    await _killed_in_second_call(fake_llm, tmp_path, protocol, held_again=True)
    async with _client_of(Server(fake_llm, tmp_path, protocol.name)) as client:
        made_up = asyncio.ensure_future(
            client.get(protocol.path, headers={"Last-Event-ID": "999999"})
        )
        # the run recovered for it goes on, live
        await fake_llm.wait_paused_async(2, timeout=TIMEOUT)
        assert not made_up.done()
        fake_llm.requests[2].resume()
        refused = await made_up
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "unknown_event_id"
        response, whole = await get_events(client, protocol.path, {"Last-Event-ID": "0"})
    if protocol is AG_UI:
        assert response.status_code == 200
        assert whole[-1].type == "RUN_FINISHED"


@pytest.mark.timeout(240)
async def test_a_run_paused_for_an_approval_is_resumed_after_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    fake_llm.reply(
        tokens=["Removing."],
        tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="k1")],
        for_model=MAIN,
    )
    fake_llm.reply(tokens=["Removed ", "it."], for_model=MAIN)

    # the server is killed while the call waits for its approval
    async with _client_of(Server(fake_llm, tmp_path, "ag-ui"), kill=True) as client:
        _, paused = await post_events(client, AG_UI.body)
    outcome = paused[-1].json["outcome"]
    assert outcome["type"] == "interrupt"
    assert [interrupt["id"] for interrupt in outcome["interrupts"]] == ["k1"]
    assert _side_effects(tmp_path) == []

    async with _client_of(Server(fake_llm, tmp_path, "ag-ui")) as client:
        refused_edit = _approve("k1", "r2")
        refused_edit["resume"][0]["payload"] = {"approved": True, "arguments": {"name": 7}}
        refused = await client.post("/", json=refused_edit)  # the tool refuses it: not decided
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_arguments"
        response, events = await post_events(client, _resume_body(AG_UI))
        assert response.status_code == 200

    async with _client_of(Server(fake_llm, tmp_path, "ag-ui")) as client:
        # the first run paused and was resumed: its replay pauses there too
        cut = {"Last-Event-ID": str(len(paused) - 1)}
        response, after_pause = await get_events(client, "/runs/r1", cut)
        assert response.status_code == 200
        _, whole = await get_events(client, "/runs/r1")  # the whole run, from its record
        _, resumed_again = await get_events(client, "/runs/r2")  # found by its own id

    assert after_pause == []  # the paused run ended with its interrupt, as it did
    assert [event.type for event in whole] == [event.type for event in paused]
    assert _ids(whole) == _ids(paused)
    assert [event.data for event in resumed_again] == [event.data for event in events]
    assert [event.type for event in events] == [
        "RUN_STARTED",
        "SUBAGENT_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "SUBAGENT_FINISHED",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    assert events[0].json["runId"] == "r2"
    assert [e.json["content"] for e in events if e.type == "TOOL_CALL_RESULT"] == ["removed a.txt"]
    assert whole[-1].json["outcome"]["interrupts"][0]["id"] == "k1"
    assert [str(request.json["model"]) for request in fake_llm.requests] == [MAIN, MAIN]
    assert _side_effects(tmp_path) == ["removed a.txt"]  # approved after the restart, once


def _status_of_key(folder: Path, protocol: Protocol, key: str) -> str | None:
    """The status of the durable run of the protocol's job ``key`` (a run id, a chat id)."""
    statuses = _statuses(folder, protocol, key)
    return statuses[0] if statuses else None


def _statuses(folder: Path, protocol: Protocol, key: str) -> list[str]:
    """The statuses of the durable runs of the protocol's job ``key``, oldest first.

    (Their approvals' workflows, whose ids start alike, aside.)
    """
    connection = sqlite3.connect(folder / "runs.sqlite")
    try:
        rows = connection.execute(
            "SELECT status FROM workflow_status WHERE workflow_uuid LIKE ? AND name != ? "
            "ORDER BY created_at",
            (f'{protocol.name}:["{key}",%', APPROVAL_WORKFLOW),
        ).fetchall()
    finally:
        connection.close()
    return [str(status) for (status,) in rows]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", [AG_UI, AI_SDK], ids=lambda protocol: protocol.name)
async def test_a_run_its_client_gave_up_on_is_not_recovered_after_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    protocol: Protocol,
) -> None:
    _script(fake_llm, start=1, pause_second=True)  # one call, which streams a token and waits
    key = "r1" if protocol is AG_UI else "c1"
    first = Server(fake_llm, tmp_path, protocol.name, GRACE="0")
    async with _client_of(first, kill=True) as client:
        async with client.stream("POST", "/", json=protocol.body) as response:
            reader = SSEReader(response)
            while (event := await reader.next()) is not None and protocol.delta(event) is None:
                pass
        # the client left: the run is cancelled at once, its model call closed
        assert await fake_llm.wait_disconnected_async(0, timeout=TIMEOUT)
        await until(lambda: _status_of_key(tmp_path, protocol, key) == "CANCELLED")
        # how it ended, for a reader (the AI SDK's: a client cut off after the first event)
        cut = {} if protocol is AG_UI else {"Last-Event-ID": "0"}
        _, before = await get_events(client, protocol.path, cut)

    async with _client_of(Server(fake_llm, tmp_path, protocol.name)) as client:
        if protocol is AI_SDK:  # an ended chat has no stream to resume, after a restart too
            assert (await client.get(protocol.path)).status_code == 204
        response, events = await get_events(client, protocol.path, cut)
        assert response.status_code == 200

    assert len(fake_llm.requests) == 1  # the run given up on was not run on at the restart
    if protocol is AG_UI:  # replayed up to where it stopped, then ended as it ended then
        assert [event.type for event in events] == ["RUN_STARTED", "RUN_FINISHED"]
        assert events[-1].json["outcome"] == {"type": "cancelled"}
        assert events[-1].data == before[-1].data
    else:
        assert [event.type for event in events] == ["start-step", "abort", "[DONE]"]
        assert [event.data for event in events[-2:]] == [event.data for event in before[-2:]]


async def _ai_sdk_killed_at_approval(llm: FakeLLMServer, folder: Path) -> list[SSEEvent]:
    """The chat ``c1`` asks to approve the call ``k1``; its server is killed as it waits."""
    llm.reply(tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="k1")], for_model=MAIN)
    async with _client_of(Server(llm, folder, "ai-sdk"), kill=True) as client:
        _, paused = await post_events(client, AI_SDK.body)
    assert "tool-approval-request" in [event.type for event in paused]
    return paused


@pytest.mark.timeout(240)
async def test_an_ai_sdk_run_paused_for_an_approval_is_resumed_after_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    paused = await _ai_sdk_killed_at_approval(fake_llm, tmp_path)
    assert [event.type for event in paused][-3:] == ["finish-step", "finish", "[DONE]"]
    fake_llm.reply(tokens=["Removed ", "it."], for_model=MAIN)

    async with _client_of(Server(fake_llm, tmp_path, "ai-sdk")) as client:
        response, events = await post_events(client, _resume_body(AI_SDK))
        assert response.status_code == 200

    types = [event.type for event in events]
    assert types[0] == "start"
    assert "start-step" not in types[: types.index("tool-output-available")]  # outside a step
    assert events[0].json["messageId"] == paused[0].json["messageId"]  # the same message
    outputs = [event.json["output"] for event in events if event.type == "tool-output-available"]
    assert outputs == ["removed a.txt"]
    assert types[-3:] == ["finish-step", "finish", "[DONE]"]
    assert [str(request.json["model"]) for request in fake_llm.requests] == [MAIN, MAIN]
    assert _side_effects(tmp_path) == ["removed a.txt"]  # approved after the restart, once


@pytest.mark.timeout(240)
async def test_a_new_ai_sdk_message_after_a_restart_abandons_the_paused_one(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # a chat has one paused message at most: a new message abandons the paused one, after
    # a restart too (was: the paused message's durable run, not recovered here, stayed
    # pending, recovered at every start, and its approval, sent after the new message,
    # still removed the file)
    await _ai_sdk_killed_at_approval(fake_llm, tmp_path)
    fake_llm.reply(tokens=["Never ", "mind ", "then."], for_model=MAIN)

    other = {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "Never mind."}]}
    async with _client_of(Server(fake_llm, tmp_path, "ai-sdk")) as client:
        new_message = {**AI_SDK.body, "messages": [*AI_SDK.body["messages"], other]}
        response, events = await post_events(client, new_message)
        assert response.status_code == 200
        assert [event.type for event in events][-2:] == ["finish", "[DONE]"]
    assert _statuses(tmp_path, AI_SDK, "c1") == ["CANCELLED", "SUCCESS"]

    async with _client_of(Server(fake_llm, tmp_path, "ai-sdk")) as client:
        late = await client.post("/", json=_resume_body(AI_SDK))  # the abandoned one's approval
        assert late.status_code == 409, late.text
        assert late.json()["error"]["code"] == "not_pending"
    assert _side_effects(tmp_path) == []
    assert [str(request.json["model"]) for request in fake_llm.requests] == [MAIN, MAIN]


def _scripted_never_mind(llm: FakeLLMServer) -> dict[str, Any]:
    """Script the model: AG-UI's run r1 asks to remove ``a.txt`` (the call ``k1``, which waits
    for approval), the next call answers "Never mind then.". Returns the new run r5 of the
    thread (a new message of the user's) that replaces r1."""
    llm.reply(tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="k1")], for_model=MAIN)
    llm.reply(tokens=["Never ", "mind ", "then."], for_model=MAIN)
    other = {"id": "u2", "role": "user", "content": "Never mind."}
    return {**AG_UI.body, "runId": "r5", "messages": [*AG_UI.body["messages"], other]}


@asynccontextmanager
async def _paused_on_first_of_two(
    llm: FakeLLMServer, folder: Path, **first_env: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Clients of two AG-UI servers on one database (``first_env``: the first's more
    settings), once the thread's run r1 has paused for an approval on the first."""
    first = Server(llm, folder, "ag-ui", DBOS__VMID="server-a", **first_env)
    second = Server(llm, folder, "ag-ui", DBOS__VMID="server-b")
    async with _client_of(first) as client, _client_of(second) as other_client:
        _, paused = await post_events(client, AG_UI.body)
        assert paused[-1].json["outcome"]["type"] == "interrupt"
        yield client, other_client


@pytest.mark.timeout(240)
async def test_a_new_agui_run_of_a_thread_after_a_restart_abandons_its_paused_run(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # a new run of a thread without resume abandons the thread's paused runs, after a
    # restart too (was: the paused run's durable run, not made again here, stayed pending,
    # and its interrupt, answered after the new run, still removed the file)
    new_run = _scripted_never_mind(fake_llm)
    async with _client_of(Server(fake_llm, tmp_path, "ag-ui"), kill=True) as client:
        _, paused = await post_events(client, AG_UI.body)
    assert paused[-1].json["outcome"]["type"] == "interrupt"

    async with _client_of(Server(fake_llm, tmp_path, "ag-ui")) as client:
        response, events = await post_events(client, new_run)
        assert response.status_code == 200
        assert events[-1].type == "RUN_FINISHED"
    assert _statuses(tmp_path, AG_UI, "r1") == ["CANCELLED"]

    async with _client_of(Server(fake_llm, tmp_path, "ag-ui")) as client:
        late = await client.post("/", json=_approve("k1", "r2"))  # the abandoned one's
        assert late.status_code == 404, late.text
        assert late.json()["error"]["code"] == "unknown_interrupt"
    assert _side_effects(tmp_path) == []
    assert [str(request.json["model"]) for request in fake_llm.requests] == [MAIN, MAIN]


@pytest.mark.timeout(240)
async def test_a_new_agui_run_of_a_thread_leaves_the_run_another_server_streams_of_it(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # two servers on one database, each a DBOS executor of its own (DBOS__VMID): a new run
    # of the thread on one abandons the thread's runs of its own executor only, never the
    # run the other streams (was: it cancelled it, and the other's stream ended at its next
    # step with the run cancelled under it)
    fake_llm.reply(tokens=["All ", "done ", "now."], for_model=MAIN, pause_after=1)
    fake_llm.reply(tokens=["Hello."], for_model=MAIN)
    first = Server(fake_llm, tmp_path, "ag-ui", DBOS__VMID="server-a")
    second = Server(fake_llm, tmp_path, "ag-ui", DBOS__VMID="server-b")
    other = {"id": "u2", "role": "user", "content": "Hi."}
    new_run = {**AG_UI.body, "runId": "r5", "messages": [*AG_UI.body["messages"], other]}
    async with (
        _client_of(first) as client,
        _client_of(second) as other_client,
        client.stream("POST", "/", json=AG_UI.body) as response,
    ):
        reader = SSEReader(response)
        while (event := await reader.next()) is not None and AG_UI.delta(event) is None:
            pass
        paused = await fake_llm.wait_paused_async(0, timeout=TIMEOUT)
        _, events = await post_events(other_client, new_run)
        assert events[-1].type == "RUN_FINISHED"
        statuses = _statuses(tmp_path, AG_UI, "r1")
        paused.resume()
        rest = await reader.rest()
    assert statuses == ["PENDING"]  # the other server's live run, left alone
    assert [AG_UI.delta(event) for event in rest if AG_UI.delta(event)] == ["done ", "now."]
    assert rest[-1].json["type"] == "RUN_FINISHED"
    assert "outcome" not in rest[-1].json or rest[-1].json["outcome"]["type"] == "success"
    assert _statuses(tmp_path, AG_UI, "r1") == ["SUCCESS"]


@pytest.mark.timeout(240)
async def test_a_new_agui_run_of_a_thread_abandons_its_run_paused_on_another_live_server(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # two servers on one database: the thread's run paused for an approval on one (its
    # job live there), a new run of the thread on the other replaces it, as it does on one
    # server (was: it was left pending, and its interrupt, answered on the first server
    # after the new run, still removed the file)
    new_run = _scripted_never_mind(fake_llm)
    async with _paused_on_first_of_two(fake_llm, tmp_path) as (client, other_client):
        _, events = await post_events(other_client, new_run)
        assert events[-1].type == "RUN_FINISHED"
        statuses = _statuses(tmp_path, AG_UI, "r1")
        _, late = await post_events(client, _approve("k1", "r2"))  # the abandoned one's
    assert statuses == ["CANCELLED"]
    assert late[-1].json.get("outcome") == {"type": "cancelled"}, late  # (not run on)
    assert _side_effects(tmp_path) == []
    assert [str(request.json["model"]) for request in fake_llm.requests] == [MAIN, MAIN]


@pytest.mark.timeout(240)
async def test_a_resume_sent_to_another_server_than_the_paused_runs_says_to_send_it_there(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # the thread's run waits for an approval on the first server: the second answers its
    # resume at once with a 409 that says where to send it (was: it replayed the run, whose
    # end it waited for, and the run waited for the very resume: the request never ended),
    # and the resume sent there goes on as ever
    fake_llm.reply(tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="k1")], for_model=MAIN)
    fake_llm.reply(tokens=["Removed."], for_model=MAIN)
    async with _paused_on_first_of_two(fake_llm, tmp_path) as (client, other_client):
        refused = await asyncio.wait_for(other_client.post("/", json=_approve("k1", "r2")), 60)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "paused_elsewhere", refused.text
        assert "DBOS__VMID" in refused.text
        _, resumed = await post_events(client, _approve("k1", "r2"))
    assert resumed[-1].type == "RUN_FINISHED"
    assert _side_effects(tmp_path) == ["removed a.txt"]


@pytest.mark.timeout(240)
async def test_a_run_paused_here_and_replaced_on_another_server_frees_its_live_place_here(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # the first server holds one live run: the thread's run paused there is replaced by a
    # new run of the thread on the second server (its durable run cancelled), so a run of
    # another thread on the first server has room (was: the paused job held its place
    # until it expired, and the new run was refused with a 503)
    another_thread = {**AG_UI.body, "threadId": "t2", "runId": "r7"}
    new_run = _scripted_never_mind(fake_llm)
    fake_llm.reply(tokens=["Hello ", "there."], for_model=MAIN)  # (the run of another_thread)
    async with _paused_on_first_of_two(fake_llm, tmp_path, MAX_LIVE="1") as (client, other_client):
        _, events = await post_events(other_client, new_run)
        assert events[-1].type == "RUN_FINISHED"
        assert _statuses(tmp_path, AG_UI, "r1") == ["CANCELLED"]
        response, events = await post_events(client, another_thread)
        assert response.status_code == 200, [event.data for event in events]
        assert events[-1].type == "RUN_FINISHED"
    assert _side_effects(tmp_path) == []


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", [AG_UI, AI_SDK], ids=lambda protocol: protocol.name)
async def test_a_run_resumed_from_a_pause_and_killed_resumes_at_the_clients_last_event(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    protocol: Protocol,
) -> None:
    fake_llm.reply(
        tokens=["Removing."],
        tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="k1")],
        for_model=MAIN,
    )
    fake_llm.reply(tokens=["Removed ", "it ", "now."], for_model=MAIN, pause_after=1)

    first = Server(fake_llm, tmp_path, protocol.name)
    async with _client_of(first, kill=True) as client:
        _, paused = await post_events(client, protocol.body)  # ends where it waits
        body = _resume_body(protocol)  # the second call waits (paused)
        seen = await _killed_at_pause(first, client, protocol, body, "Removed ", paused=1)
    assert _side_effects(tmp_path) == ["removed a.txt"]

    fake_llm.clear_script()
    fake_llm.reply(tokens=["Removed ", "it ", "now."], for_model=MAIN)  # the killed call again
    async with _client_of(Server(fake_llm, tmp_path, protocol.name)) as client:
        resumed_path = "/runs/r2" if protocol is AG_UI else protocol.path
        last = {"Last-Event-ID": seen[-1].id or ""}
        response, rest = await get_events(client, resumed_path, last)
        assert response.status_code == 200
        if protocol is AG_UI:  # the paused run: nothing after its interrupt
            cut = {"Last-Event-ID": paused[-1].id or ""}
            response, after_pause = await get_events(client, "/runs/r1", cut)
            assert response.status_code == 200
            assert after_pause == []
            _, whole = await get_events(client, "/runs/r1")
            assert _ids(whole) == _ids(paused)
            assert [event.type for event in whole] == [event.type for event in paused]

    assert _ids(seen + rest) == list(range(len(seen) + len(rest)))  # no gap, nothing twice
    deltas = [protocol.delta(event) for event in seen + rest]
    tool_output = ["removed a.txt"] if protocol is AG_UI else []  # (a sub-agent's text)
    assert [delta for delta in deltas if delta is not None] == [
        *tool_output,
        "Removed ",
        "it ",
        "now.",
    ]
    end = ["RUN_FINISHED"] if protocol is AG_UI else ["finish-step", "finish", "[DONE]"]
    assert [event.type for event in rest][-len(end) :] == end
    assert len([event for event in seen + rest if event.type == protocol.body_start]) == 1
    models = [str(request.json["model"]) for request in fake_llm.requests]
    assert models == [MAIN] * 3  # the 1st call once; the 2nd, killed, again
    assert _side_effects(tmp_path) == ["removed a.txt"]  # the approved call ran once


@pytest.mark.timeout(240)
async def test_a_mounted_app_recovers_its_runs_in_a_context_of_its_own_after_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    _script(fake_llm, pause_second=True)
    first = Server(fake_llm, tmp_path, "ag-ui", MOUNT="/agent")
    async with _client_of(first, kill=True) as client:  # the 2nd call streams, and waits
        seen = await _killed_at_pause(
            first, client, AG_UI, AG_UI.body, "All ", paused=1, path="/agent/"
        )

    fake_llm.clear_script()
    _script(fake_llm, start=1)  # the second call again
    async with _client_of(Server(fake_llm, tmp_path, "ag-ui", MOUNT="/agent")) as client:
        last = {"Last-Event-ID": seen[-1].id or ""}
        # the first request after the restart launches DBOS; the recovered run is the
        # app's (its first reader leaving does not end it): a second reader gets it all
        async with client.stream("GET", "/agent/runs/r1", headers=last) as response:
            assert response.status_code == 200
            first_rest = await SSEReader(response).take(1)
        response, rest = await get_events(client, "/agent/runs/r1", last)
        assert response.status_code == 200

    assert first_rest == rest[:1]
    assert _ids(seen + rest) == list(range(len(seen) + len(rest)))  # no gap, nothing twice
    assert [event.type for event in rest][-1] == "RUN_FINISHED"
    assert "".join(AG_UI.delta(event) or "" for event in seen + rest).endswith("All done now.")
    assert [str(request.json["model"]) for request in fake_llm.requests] == [MAIN] * 3
    assert _side_effects(tmp_path) == ["note a"]


@pytest.mark.timeout(240)
async def test_a_failed_run_asked_for_after_a_restart_ends_with_its_own_error(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    fake_llm.fail(400, message="The prompt is too long.", for_model=MAIN)  # not retried
    async with _client_of(Server(fake_llm, tmp_path, "ag-ui"), kill=True) as client:
        _, failed = await post_events(client, AG_UI.body)
        await until(lambda: _status_of_key(tmp_path, AG_UI, "r1") == "ERROR")

    async with _client_of(Server(fake_llm, tmp_path, "ag-ui")) as client:
        response, events = await get_events(client, "/runs/r1")
        assert response.status_code == 200

    assert [event.type for event in events] == ["RUN_STARTED", "RUN_ERROR"]
    assert "The prompt is too long." in failed[-1].json["message"]
    assert events[-1].data == failed[-1].data  # the same error as the client saw then
    assert len(fake_llm.requests) == 1  # the failed call was not made again


@pytest.mark.timeout(240)
@pytest.mark.parametrize("followed", [False, True], ids=["resumed", "followed_then_resumed"])
async def test_two_paused_agui_runs_of_one_thread_are_each_resumed_after_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    followed: bool,
) -> None:
    # r1 and r2 of the thread t1 run at once and both pause (r2 first); after a restart
    # each is resumed by its own interrupts, whether their clients follow them again first
    # or not (was: a resume recovered the thread's newest paused run alone, so r1's was a
    # 404; a run followed while another of its thread waited here paused under a key of its
    # own, so its resume was a 404 too)
    fake_llm.reply(  # r1's call streams a token and waits (paused) while r2 runs
        tokens=["Removing ", "a."],
        tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="k1")],
        for_model=MAIN,
        pause_after=1,
    )
    fake_llm.reply(
        tokens=["Removing b."],
        tool_calls=[ToolCall("remove", {"name": "b.txt"}, id="k2")],
        for_model=MAIN,
    )
    second = {**AG_UI.body, "runId": "r2"}
    async with (
        _client_of(Server(fake_llm, tmp_path, "ag-ui"), kill=True) as client,
        client.stream("POST", "/", json=AG_UI.body) as first,
    ):
        reader = SSEReader(first)
        await fake_llm.wait_paused_async(0, timeout=TIMEOUT)
        _, r2 = await post_events(client, second)  # pauses at k2
        fake_llm.requests[0].resume()
        r1 = await reader.rest()  # pauses at k1
    for events, call in ((r1, "k1"), (r2, "k2")):
        outcome = events[-1].json["outcome"]
        assert [interrupt["id"] for interrupt in outcome["interrupts"]] == [call]
    assert _side_effects(tmp_path) == []

    fake_llm.reply(tokens=["Removed ", "a."], for_model=MAIN)
    fake_llm.reply(tokens=["Removed ", "b."], for_model=MAIN)
    async with _client_of(Server(fake_llm, tmp_path, "ag-ui")) as client:
        if followed:  # each client follows its run again (r2's first), as they were
            for run, events in (("r2", r2), ("r1", r1)):
                response, again = await get_events(client, f"/runs/{run}")
                assert response.status_code == 200
                assert [event.type for event in again] == [event.type for event in events]
                assert _ids(again) == _ids(events)
        resumed = {}
        for call, run in (("k1", "r3"), ("k2", "r4")):  # the older run's first
            response, events = await post_events(client, _approve(call, run))
            assert response.status_code == 200, (call, [event.data for event in events])
            resumed[call] = events

    for call, name in (("k1", "a"), ("k2", "b")):
        events = resumed[call]
        assert events[-1].type == "RUN_FINISHED"
        assert "outcome" not in events[-1].json or events[-1].json["outcome"]["type"] == "success"
        results = [e.json["content"] for e in events if e.type == "TOOL_CALL_RESULT"]
        assert results == [f"removed {name}.txt"]  # its own call, approved
        deltas = [str(e.json["delta"]) for e in events if e.type == "TEXT_MESSAGE_CONTENT"]
        assert deltas[-2:] == ["Removed ", f"{name}."]  # the model's answer to it
    assert _side_effects(tmp_path) == ["removed a.txt", "removed b.txt"]  # each approved once
    assert [str(request.json["model"]) for request in fake_llm.requests] == [MAIN] * 4


@pytest.mark.timeout(240)
async def test_an_agui_run_paused_twice_keeps_each_runs_events_after_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    for call_id, name in (("k1", "a.txt"), ("k2", "b.txt")):
        fake_llm.reply(tool_calls=[ToolCall("remove", {"name": name}, id=call_id)], for_model=MAIN)
    fake_llm.reply(tokens=["Both ", "gone."], for_model=MAIN, pause_after=1)

    first = Server(fake_llm, tmp_path, "ag-ui")
    async with _client_of(first, kill=True) as client:
        _, r1 = await post_events(client, AG_UI.body)  # pauses at k1
        _, r2 = await post_events(client, _approve("k1", "r2"))  # then at k2
        body = _approve("k2", "r3")  # the last call waits (paused)
        r3 = await _killed_at_pause(first, client, AG_UI, body, "Both ", paused=2)
    assert [run[-1].json["outcome"]["interrupts"][0]["id"] for run in (r1, r2)] == ["k1", "k2"]

    fake_llm.clear_script()
    fake_llm.reply(tokens=["Both ", "gone."], for_model=MAIN)  # the killed call again
    async with _client_of(Server(fake_llm, tmp_path, "ag-ui")) as client:
        response, rest = await get_events(client, "/runs/r3", {"Last-Event-ID": r3[-1].id or ""})
        assert response.status_code == 200
        _, r2_again = await get_events(client, "/runs/r2")
        _, r1_again = await get_events(client, "/runs/r1")

    assert _ids(r3 + rest) == list(range(len(r3) + len(rest)))  # no gap, nothing twice
    assert "".join(AG_UI.delta(event) or "" for event in r3 + rest).endswith("Both gone.")
    assert [event.type for event in rest][-1] == "RUN_FINISHED"
    for before, after in ((r1, r1_again), (r2, r2_again)):  # each run numbered as it was
        assert _ids(after) == _ids(before)
        assert [event.type for event in after] == [event.type for event in before]
    assert r2_again[-1].json["outcome"]["interrupts"][0]["id"] == "k2"
    assert len(fake_llm.requests) == 4  # the 3 calls, the killed one twice
    assert _side_effects(tmp_path) == ["removed a.txt", "removed b.txt"]


UNKNOWN_RUNS = """
import asyncio

import httpx2 as httpx

from miniagents.ext.dbos import durable
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.web import NoAuthentication, agui_app, ai_sdk_app

agent = durable(offline_agent.fork(alias="WEB", token_delay=0), database_url="sqlite:///runs.sqlite")


async def main() -> None:
    for make, path in ((agui_app, "/runs/nope"), (ai_sdk_app, "/nochat/stream")):
        app = make(agent, authentication=NoAuthentication())
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://localhost"
        ) as client:
            response = await client.get(path)
            print(make.__name__, response.status_code, response.text[:60])


asyncio.run(main())
"""


def test_a_durable_app_answers_a_run_it_does_not_know_as_a_plain_app_does(
    tmp_path: Path,
) -> None:
    # the recovery of a durable app looked the run up in its database, found none, and
    # failed on a name its lookup had not bound (an UnboundLocalError, a 500)
    done = run_python(["-c", UNKNOWN_RUNS], tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    agui, ai_sdk = done.stdout.splitlines()
    assert agui.startswith("agui_app 404 ")
    assert "unknown_run" in agui
    assert ai_sdk == "ai_sdk_app 204 "
    assert "UnboundLocalError" not in done.stderr


def _texts(protocol: Protocol, events: list[SSEEvent]) -> list[str]:
    """The texts of the text messages (AI SDK: text parts) a client saw, in order of start.

    The events must be a stream the protocol allows: a text starts once under its id, and
    only a started text gets tokens and ends (AG-UI's clients check as much; the AI SDK's
    finds a text part by its id); every text has ended when the run does.
    """
    start, delta, end = (
        ("TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END")
        if protocol is AG_UI
        else ("text-start", "text-delta", "text-end")
    )
    key = "messageId" if protocol is AG_UI else "id"
    texts: dict[str, str] = {}
    active: set[str] = set()
    for event in events:
        if event.type not in (start, delta, end):
            continue
        name = str(event.json[key])
        if event.type == start:
            assert name not in texts, f"the text {name!r} started twice"
            texts[name] = ""
            active.add(name)
        else:
            assert name in active, f"{event.type} of the text {name!r}, which is not open"
            if event.type == delta:
                texts[name] += str(event.json["delta"])
            else:
                active.discard(name)
    assert not active, f"texts never ended: {active}"
    return list(texts.values())


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", [AG_UI, AI_SDK], ids=lambda protocol: protocol.name)
async def test_a_call_made_again_after_a_restart_is_a_new_message_never_spliced_to_the_old(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    protocol: Protocol,
) -> None:
    # the client read "The refund was " when the server was killed; the call, unfinished, was
    # not recorded: after the restart it is made again, and the model says something else.
    # The client's Last-Event-ID pointed into the first answer's tokens: resumed there, it
    # read "The refund was that order." (the old tokens, then the new ones after them)
    first_answer = ["The ", "refund ", "was ", "approved ", "yesterday."]
    fake_llm.reply(tokens=first_answer, for_model=MAIN, pause_after=3)
    first = Server(fake_llm, tmp_path, protocol.name)
    async with _client_of(first, kill=True) as client:
        seen = await _killed_at_pause(first, client, protocol, protocol.body, "was ", paused=0)

    fake_llm.clear_script()
    fake_llm.reply(tokens=["I ", "cannot ", "find ", "that ", "order."], for_model=MAIN)
    async with _client_of(Server(fake_llm, tmp_path, protocol.name)) as client:
        response, rest = await get_events(
            client, protocol.path, {"Last-Event-ID": seen[-1].id or ""}
        )
        assert response.status_code == 200, await response.aread()
        # the partial message ended, then the answer made again as a message of its own
        assert _texts(protocol, seen + rest) == ["The refund was ", "I cannot find that order."]
        # a client of the new stream that lost it inside the new message goes on exactly
        middle = next(i for i, event in enumerate(rest) if protocol.delta(event) == "find ")
        cut = {"Last-Event-ID": rest[middle].id or ""}
        response, after_middle = await get_events(client, protocol.path, cut)
        assert response.status_code == 200

    assert after_middle == rest[middle + 1 :]
    end = ["RUN_FINISHED"] if protocol is AG_UI else ["finish-step", "finish", "[DONE]"]
    assert [event.type for event in rest][-len(end) :] == end
    assert [str(request.json["model"]) for request in fake_llm.requests] == [MAIN, MAIN]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", [AG_UI, AI_SDK], ids=lambda protocol: protocol.name)
async def test_a_run_keeps_its_owner_across_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    protocol: Protocol,
) -> None:
    alice, bob = (
        {"authorization": "Bearer alice-secret-token"},
        {"authorization": "Bearer bob-secret-token"},
    )
    _script(fake_llm)
    async with _client_of(Server(fake_llm, tmp_path, protocol.name, AUTH="1")) as client:
        response, events = await post_events(client, protocol.body, headers=alice)
        assert response.status_code == 200
    name = protocol.name
    workflows = _workflow_ids(tmp_path)
    assert workflows
    assert all(w.startswith(f'{name}:"alice":') for w in workflows), workflows

    async with _client_of(Server(fake_llm, tmp_path, protocol.name, AUTH="1")) as client:
        last = {"Last-Event-ID": events[0].id or ""}
        response, hers = await get_events(client, protocol.path, {**alice, **last})
        assert response.status_code == 200
        response, his = await get_events(client, protocol.path, {**bob, **last})
        assert (response.status_code, his) == (404 if protocol is AG_UI else 204, [])
        nobody = await client.get(protocol.path)
        assert nobody.status_code == 401
    assert hers == events[1:]  # replayed from her record, found by her only


def _workflow_ids(folder: Path) -> list[str]:
    """The ids of the durable runs of the test's database (their approvals aside)."""
    connection = sqlite3.connect(folder / "runs.sqlite")
    try:
        rows = connection.execute("SELECT workflow_uuid FROM workflow_status").fetchall()
    finally:
        connection.close()
    return [str(row[0]) for row in rows if "::" not in str(row[0])]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", [AG_UI, AI_SDK], ids=lambda protocol: protocol.name)
async def test_only_its_principal_resumes_a_paused_run_and_the_record_says_who_decided(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    protocol: Protocol,
) -> None:
    alice, bob = (
        {"authorization": "Bearer alice-secret-token"},
        {"authorization": "Bearer bob-secret-token"},
    )
    fake_llm.reply(
        tokens=["Removing."],
        tool_calls=[ToolCall("remove", {"name": "a.txt"}, id="k1")],
        for_model=MAIN,
    )
    fake_llm.reply(tokens=["Removed ", "it."], for_model=MAIN)
    async with _client_of(Server(fake_llm, tmp_path, protocol.name, AUTH="1")) as client:
        _, _paused = await post_events(client, protocol.body, headers=alice)
        stranger = await client.post("/", json=_resume_body(protocol), headers=bob)
        assert stranger.status_code == (404 if protocol is AG_UI else 409), stranger.text
        assert _side_effects(tmp_path) == []  # nothing decided
        response, _events = await post_events(client, _resume_body(protocol), headers=alice)
        assert response.status_code == 200
    assert _side_effects(tmp_path) == ["removed a.txt"]
    [decision] = _decisions_recorded(tmp_path)
    assert (decision["approved"], decision["decided_by"]) == (True, "alice")
    assert isinstance(decision["decided_at"], str)


def _decisions_recorded(folder: Path) -> list[dict[str, object]]:
    """The decisions the approvals of the test's durable runs ended with, as recorded."""
    client = new_client(f"sqlite:///{folder / 'runs.sqlite'}")
    try:
        approvals = client.list_workflows(name=APPROVAL_WORKFLOW)
    finally:
        close_client(client)
    return [dict(approval.output) for approval in approvals if approval.output is not None]


RACE = Path(__file__).with_name("durable_resume_race.py")


@pytest.mark.parametrize("protocol", ["ai-sdk", "ag-ui"])
def test_a_durable_runs_resume_sent_before_it_paused_waits_for_it_and_starts_nothing_again(
    tmp_path: Path, protocol: str
) -> None:
    # the resume comes while the round's other call still runs (the call that waits already
    # known to the client): it waits until the job pauses, then resumes it; the job, which
    # a durable record shows running, is not made again (the tools and the model once each)
    done = run_python([str(RACE)], tmp_path, env={"PROTOCOL": protocol})
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.splitlines() == [
        "paused before: False",
        "resume answered before the pause: False",
        "status: 200",
        "live: 0",
        "first outputs: ['held']",
        "second outputs: ['removed a.txt']",
        "text: Done.",
        "ran: ['hold', 'remove a.txt']",
        "turns: [0, 1]",
    ]


@asynccontextmanager
async def _cancelled_in_second_call(
    llm: FakeLLMServer, folder: Path, protocol: Protocol
) -> AsyncIterator[tuple[SSEReader, RecordedRequest]]:
    """The protocol's run (:func:`_script`) on a server of its own, cancelled by another
    process (a DBOS client, as an operator's) once the model's second call has streamed
    ``All `` and waits. Yields the run's reader and the held call; the server stops after."""
    paused = len(llm.requests) + 1  # (the run's second call)
    _script(llm, pause_second=True)
    async with (
        _client_of(Server(llm, folder, protocol.name)) as client,
        client.stream("POST", "/", json=protocol.body) as response,
    ):
        assert response.status_code == 200
        reader = SSEReader(response)
        while (event := await reader.next()) is not None and protocol.delta(event) != "All ":
            pass
        held = await llm.wait_paused_async(paused, timeout=TIMEOUT)
        runs = new_client(f"sqlite:///{folder / 'runs.sqlite'}")
        try:
            (run,) = runs.list_workflows(workflow_id_prefix=f"{protocol.name}:")
            await asyncio.to_thread(runs.cancel_workflow, run.workflow_id)
        finally:
            close_client(runs)
        yield reader, held


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", [AG_UI, AI_SDK], ids=lambda protocol: protocol.name)
async def test_a_live_run_cancelled_through_dbos_ends_as_its_replay_after_a_restart(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
    protocol: Protocol,
) -> None:
    # another process (an operator) cancels the durable run while the model's second call
    # waits after its first token: once the call goes on, the stream ends with the
    # protocol's cancelled events (RUN_FINISHED cancelled, abort), the same as the run's
    # replay after a restart ends with (was: live, RUN_ERROR or an AI SDK error part;
    # replayed, the cancelled events)
    async with _cancelled_in_second_call(fake_llm, tmp_path, protocol) as (reader, held):
        held.resume()
        rest = await reader.rest()
    live = [event.data for event in rest]
    if protocol is AG_UI:
        assert [event.type for event in rest][-1:] == ["RUN_FINISHED"], rest
        assert rest[-1].json["outcome"] == {"type": "cancelled"}
        assert "RUN_ERROR" not in [event.type for event in rest]
    else:
        assert [event.type for event in rest][-2:] == ["abort", "[DONE]"], rest
        assert "error" not in [event.type for event in rest]

    cut = {} if protocol is AG_UI else {"Last-Event-ID": "0"}
    async with _client_of(Server(fake_llm, tmp_path, protocol.name)) as client:
        response, replayed = await get_events(client, protocol.path, cut)
        assert response.status_code == 200
    ending = 1 if protocol is AG_UI else 2
    assert [event.data for event in replayed][-ending:] == live[-ending:]


@pytest.mark.timeout(240)
async def test_a_live_run_cancelled_through_dbos_closes_its_model_call_at_once(
    fake_llm: FakeLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # another process cancels the durable run while the model's second call streams (held
    # after its first token): the call is closed without its end, and the run's stream ends
    # there, cancelled (was: the call, a DBOS step, went on to its end, and the job stayed
    # open for as long as the call was held)
    async with _cancelled_in_second_call(fake_llm, tmp_path, AG_UI) as (reader, held):
        assert await fake_llm.wait_disconnected_async(held.index, timeout=TIMEOUT)  # not resumed
        rest = await reader.rest()
    assert [AG_UI.delta(event) for event in rest if AG_UI.delta(event)] == []
    assert rest[-1].json["outcome"] == {"type": "cancelled"}
