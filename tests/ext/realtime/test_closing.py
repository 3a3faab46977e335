"""A realtime session's close: it ends however many of the API's events the session left unread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from miniagents import MiniAgents
from miniagents.ext.llm.observing import LLMCallWatch, llm_call_observers
from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMProvider
from miniagents.ext.realtime import SessionEnd
from miniagents.ext.realtime.errors import RealtimeConnectionError, RealtimeServerError
from miniagents.ext.realtime.openai import _OpenAILink
from miniagents.ext.realtime.provider import (
    RealtimeEvent,
    ReplyEnded,
    ReplyStarted,
    ServerFailed,
    TextOut,
    ToolCalled,
    _close_reading_out,
)
from miniagents.messages import ImagePart
from miniagents.promising.lowlevel import running_tasks
from miniagents.testing import FakeLLMServer, virtual_time
from tests.ext.realtime.kit import APIS, Api, ScriptedLink, scripted_agent, streamed
from tests.ext.web.serving import until
from tests.fakes.fixtures import WAIT
from tests.fakes.tracing import Traces, traces  # noqa: F401 (the fixture)


async def test_a_session_cancelled_with_the_apis_events_unread_closes_at_once(
    api: Api, fake_llm: FakeLLMServer
) -> None:
    # (was: the connection stopped reading its socket once 16 of the API's messages waited
    # unread, as they do when the session stops reading them, cancelled (the voice page left
    # as a tool finished); the API's answer to the close waited behind them, and the close
    # for its timeout: 10 s, the agent's MiniAgents context held as long (forever for an
    # OpenAI client given close_timeout=None, as here))
    fake_llm.speak([f"word {number} " for number in range(200)])
    ended = asyncio.Event()

    async def asked() -> AsyncIterator[str]:
        yield "Talk a lot."
        await ended.wait()  # (the input stays open: the page is there, until it leaves)

    arguments: dict[str, Any] = {}
    if api.name == "openai":
        arguments["websocket_options"] = {"close_timeout": None}
    voice = api.voice(fake_llm, **arguments)
    async with asyncio.timeout(WAIT):  # (a hang fails here: the close's own timeout is 10 s)
        async with MiniAgents():
            reply = voice.inquire(asked())
            await until(lambda: replied(fake_llm))
            # (the whole reply sent, most of it unread: the session waits for room in the
            # replies, which nobody reads)
            reply.cancel()  # (as the voice page does when it leaves)
        assert not running_tasks()
    assert fake_llm.realtime_sessions[-1].outcome == "closed"


def replied(server: FakeLLMServer) -> bool:
    """Whether the fake sent its last realtime session's reply to its end."""
    if not (sessions := server.realtime_sessions):
        return False
    return any(
        event.get("type") == "response.done"
        or (event.get("serverContent") or {}).get("turnComplete")
        for event in sessions[-1].sent
    )


async def test_a_links_close_reads_the_messages_ahead_of_the_answer_to_it_then_stops() -> None:
    # (the helper both links close with: a close that waits behind unread messages ends,
    # a read that fails ends the reading quietly, a close that fails says so; each time
    # the reading task is ended with the close)
    unread: asyncio.Queue[str] = asyncio.Queue(maxsize=1)  # (the connection's flow control)
    read: list[str] = []

    async def close() -> None:
        for message in ("word", "word", "done"):
            await unread.put(message)  # (waits for room: for the reading)
        await unread.join()

    async def receive() -> None:
        read.append(await unread.get())
        unread.task_done()
        if read[-1] == "done":
            raise RuntimeError("The connection is closed.")

    async with asyncio.timeout(WAIT):  # (a hang fails here)
        await _close_reading_out(close, receive, "reading to its close")
    assert read == ["word", "word", "done"]
    assert not running_tasks()

    async def silent() -> None:
        await asyncio.Event().wait()  # (no message: the close ends the reading)

    async def failed() -> None:
        raise RuntimeError("The socket was already gone.")

    with pytest.raises(RuntimeError, match="already gone"):
        async with asyncio.timeout(WAIT):  # (a reading never stopped hangs)
            await _close_reading_out(failed, silent, "reading to its close")
    assert not running_tasks()


class _RefusingLink(ScriptedLink):
    """A realtime API that refuses the session's first text, and says one more event as it
    closes; its events note the task that reads them, and the one their generator ends in."""

    def __init__(self) -> None:
        super().__init__()
        self.read_in: asyncio.Task[Any] | None = None
        self.ended_in: asyncio.Task[Any] | None = None

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        raise ValueError("The API refused the text.")

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        self.read_in = asyncio.current_task()
        try:
            await self.closed.wait()
            yield ServerFailed("Closing.", "closing", fatal=False)
            await asyncio.Event().wait()  # (more to come: the session stops reading first)
        finally:
            self.ended_in = asyncio.current_task()


async def test_a_session_that_stops_reading_its_links_events_closes_their_generator_itself() -> (
    None
):
    # (was: the generator was dropped unclosed when the session failed, its finally run
    # later, at garbage collection, in a task of asyncio's own)
    link = _RefusingLink()
    async with MiniAgents():
        with pytest.raises(ValueError, match="refused the text"):
            await scripted_agent(lambda: link, "REFUSED").inquire("Hi.")
        assert link.ended_in is not None  # (ended as the session did)
    assert link.ended_in is link.read_in


class _FailingCloseLink(ScriptedLink):
    """An API that ends the session with its error, and whose close fails too."""

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        return None

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        yield ServerFailed("The model is overloaded.", "server_error")
        await self.closed.wait()

    async def aclose(self) -> None:
        self.closed.set()
        raise RuntimeError("The socket was already gone.")


async def test_a_close_that_fails_after_the_sessions_error_keeps_the_sessions_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: the close's RuntimeError, raised in the session's finally, replaced the API's)
    link = _FailingCloseLink()
    async with MiniAgents():
        with pytest.raises(RealtimeServerError, match="overloaded"):
            await scripted_agent(lambda: link, "CLOSING").inquire("Hi.")
    assert "failed to close" in caplog.text
    assert "The socket was already gone." in caplog.text


async def test_an_openai_connection_whose_setup_cannot_be_sent_is_closed(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (was: the link was dropped with its connection open, as no session owned it yet)
    async def refused(link: _OpenAILink, session: dict[str, Any]) -> None:
        raise RealtimeConnectionError("The setup could not be sent.")

    monkeypatch.setattr(_OpenAILink, "aconfigure", refused)
    voice = APIS[0].voice(fake_llm)
    async with MiniAgents():
        with pytest.raises(RealtimeConnectionError, match="setup could not be sent"):
            await voice.inquire(streamed(["Hi."]))
    record = await fake_llm.wait_realtime_async(0, lambda record: record.outcome != "open")
    assert record.outcome == "closed"


class _NoEventsLink(ScriptedLink):
    """A defective link whose ``events()`` fails as it is called (not an async generator)."""

    def events(self) -> AsyncIterator[RealtimeEvent]:
        raise RealtimeServerError("The events cannot be read.")


async def test_a_link_whose_events_fail_to_start_is_closed_and_gets_no_input() -> None:
    # (was: the input's task started first, and ran on, unstopped, and the link was never
    # closed)
    link = _NoEventsLink()
    voice = scripted_agent(lambda: link, "NO_EVENTS")

    async def asked() -> AsyncIterator[str]:
        yield "Hi."

    async with MiniAgents():
        with pytest.raises(RealtimeServerError, match="cannot be read"):
            await voice.inquire(asked())
        assert link.closed.is_set()


class _HandshakeLink(ScriptedLink):
    """An API whose reply calls a tool (its words still streaming), and whose close waits
    for the API's answer (a close handshake) that never comes; made in the session's task."""

    def __init__(self) -> None:
        super().__init__()
        self.session = asyncio.current_task()
        self.closing = asyncio.Event()

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        return None

    async def arespond(self) -> None:
        return None

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        yield ReplyStarted("r1")
        yield TextOut("i1", "Let me look that up.")
        yield ToolCalled("c1", "slow", "{}")
        await self.closed.wait()

    async def aclose(self) -> None:
        self.closed.set()
        self.closing.set()
        await asyncio.Event().wait()


async def test_a_session_cancelled_again_as_its_link_closes_still_ends_all_it_started(
    traces: Traces,  # noqa: F811
) -> None:
    # (was: the second cancellation, raised in the close, skipped the rest of the session's
    # end: its tool ran on, and the trace of its reply waited for an end that never came,
    # so the MiniAgents context waited for it forever)
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def slow() -> str:
        """Runs until stopped."""
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        return "Never."

    links: list[_HandshakeLink] = []

    def connect() -> _HandshakeLink:
        links.append(_HandshakeLink())
        return links[-1]

    async def asked() -> AsyncIterator[str]:
        yield "Look it up."
        await asyncio.Event().wait()  # (the input stays open: the page is there)

    voice = scripted_agent(connect, "HANDSHAKE").fork(tools=[slow])
    async with asyncio.timeout(WAIT):  # (a hang fails here)
        async with MiniAgents():
            reply = voice.inquire(asked())
            await started.wait()
            (link,) = links
            assert link.session is not None
            reply.cancel()  # (as the voice page does when it leaves)
            await link.closing.wait()
            left: list[set[str]] = []
            link.session.add_done_callback(lambda _: left.append(realtime_tasks()))
            link.session.cancel()  # (again, as the close waits for the API)
            with pytest.raises(asyncio.CancelledError):
                await link.session
            assert left == [set()]  # (none left as the session's task ended: no trace either)
            assert stopped.is_set()
        assert not running_tasks()
    assert len([span for span in traces.spans() if span.name.startswith("chat ")]) == 1


class _AnsweringLink(ScriptedLink):
    """An API that answers the session's text with one reply; made in the session's task."""

    def __init__(self) -> None:
        super().__init__()
        self.session = asyncio.current_task()
        self.asked = asyncio.Event()

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        return None

    async def arespond(self) -> None:
        self.asked.set()

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asked.wait()
        yield ReplyStarted("r1")
        yield TextOut("i1", "Hello.")
        yield ReplyEnded("r1", "completed")
        await self.closed.wait()


class _SlowToEndWatch:
    """An LLM call observer whose watch takes a second (of the loop's clock) after the end
    of a call's events."""

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        return self

    async def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        async for event in events:
            yield event
        await asyncio.sleep(1)

    def call_ended(self, error: BaseException | None) -> None:
        return None


async def test_a_session_ends_once_the_traces_of_its_replies_have() -> None:
    # (was: a reply's trace ran in a task nobody of the session waited for, left running
    # after the session's end)
    links: list[_AnsweringLink] = []
    made = asyncio.Event()

    def connect() -> _AnsweringLink:
        links.append(_AnsweringLink())
        made.set()
        return links[-1]

    llm_call_observers.add(watch := _SlowToEndWatch())
    try:
        with virtual_time() as time:
            async with MiniAgents():
                reply = scripted_agent(connect, "ANSWERING").inquire("Hi.")
                await made.wait()
                (link,) = links
                assert link.session is not None
                await asyncio.wait({link.session})
                assert realtime_tasks() == set()  # (its reply's trace too)
                assert time.elapsed == 1.0  # (the trace's end waited for)
                found = await reply
    finally:
        llm_call_observers.remove(watch)
    assert isinstance(found[-1], SessionEnd)


def realtime_tasks() -> set[str]:
    """The names of the realtime sessions' tasks still running."""
    return {task.get_name() for task in running_tasks() if "realtime" in task.get_name()}
