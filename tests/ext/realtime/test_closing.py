"""A realtime session's close: it ends however much of the API's events the session left unread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from miniagents import MiniAgents
from miniagents.promising.lowlevel import running_tasks
from miniagents.testing import FakeLLMServer
from tests.ext.realtime.kit import APIS
from tests.ext.web.serving import WAIT, until


async def test_a_session_cancelled_with_the_apis_events_unread_closes_at_once(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the connection stopped reading its socket once 16 of the API's messages waited
    # unread, as they do when the session stops reading them, cancelled (the voice page
    # left); the API's answer to the close waited behind them, and the close for its timeout,
    # here none: forever; by default 10 s, the agent's context held as long)
    fake_llm.speak([f"word {number} " for number in range(200)])
    ended = asyncio.Event()

    async def asked() -> AsyncIterator[str]:
        yield "Talk a lot."
        await ended.wait()  # (the input stays open: the page is there, until it leaves)

    voice = APIS[0].voice(fake_llm, websocket_options={"close_timeout": None})
    async with asyncio.timeout(WAIT):  # (a hang fails here)
        async with MiniAgents():
            reply = voice.inquire(asked())
            await until(lambda: "response.done" in sent(fake_llm))
            # (the whole reply sent, none of it read: the session waits for room in the
            # replies, which nobody reads)
            reply.cancel()  # (as the voice page does when it leaves)
        assert not running_tasks()
    assert fake_llm.realtime_sessions[-1].outcome == "closed"


def sent(server: FakeLLMServer) -> list[str]:
    """The types of the events the fake sent in its last realtime session (none before it)."""
    sessions = server.realtime_sessions
    return sessions[-1].sent_types() if sessions else []
