"""A voice session whose tool calls ``sys.exit(3)``: this process must exit with code 3.

Run by ``test_tools_and_handoffs.py`` with ``sys.executable`` (a ``SystemExit`` let out of a
test's own loop would reach pytest's plugins). The session talks to a fake OpenAI Realtime
server of its own; once the tool's result is in the reply, the session is finished, so that
the process ends (with 0) when the ``SystemExit`` is lost.

With the argument ``input``, the session's input stream raises ``SystemExit(4)`` instead,
and no one reads the reply: this process must exit with code 4. With the argument
``output``, the tool returns, but sending its output to the API raises ``SystemExit(5)``
(as a link of the user's own may), and no one reads the reply: it must exit with code 5.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import cast

import openai

from miniagents import MiniAgents
from miniagents.ext.realtime import PCM24K, AudioChunk
from miniagents.ext.realtime.agent import make_realtime_agent
from miniagents.ext.realtime.openai import (
    OpenAIRealtimeOptions,
    OpenAIRealtimeProvider,
    openai_realtime_agent,
)
from miniagents.ext.realtime.provider import RealtimeLink, SessionSetup
from miniagents.ext.tools import ToolResultMessage
from miniagents.testing import FakeLLMServer, ToolCall, tone


def quit_now() -> str:
    """Ends the program."""
    sys.exit(3)


async def main(server: FakeLLMServer) -> None:
    """Ask once; the model calls ``quit_now``; finish the session once its result is in."""
    server.speak(["Bye."], tool_calls=[ToolCall("quit_now", {}, id="call_1")])
    server.speak(["Still here."])
    speech = tone(100, 440.0, PCM24K.rate)
    quiet = bytes(PCM24K.size_of(100))
    question = [AudioChunk(audio=chunk, format=PCM24K) for chunk in [speech] * 3 + [quiet] * 6]
    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test") as client:
        voice = openai_realtime_agent.fork(async_client=client, tools=[quit_now])
        async with MiniAgents():
            call = voice.initiate_inquiry()
            call.send_message(question)
            pieces = aiter(call.reply_sequence(finish_call=False))
            while not issubclass((piece := await anext(pieces)).message_class, ToolResultMessage):
                pass
            await piece
            call.finish()
            async for rest in pieces:
                await rest


async def _said() -> AsyncIterator[str]:
    yield "Hello."
    sys.exit(4)


async def main_input(server: FakeLLMServer) -> None:
    """Start a session whose input exits after its first message; leave its reply unread."""
    server.speak(["Hi."])
    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test") as client:
        voice = openai_realtime_agent.fork(async_client=client)
        async with MiniAgents():
            voice.inquire(_said())  # (its reply, unread, would hide the exit)


class _ExitingLink:
    """An OpenAI link whose sending of a tool's output exits the program (with 5)."""

    def __init__(self, link: RealtimeLink) -> None:
        self.link = link

    def __getattr__(self, name: str) -> object:
        return getattr(self.link, name)

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        sys.exit(5)


class _ExitingProvider(OpenAIRealtimeProvider):
    """OpenAI's provider, its links made :class:`_ExitingLink`."""

    async def aconnect(  # type: ignore[override]
        self, setup: SessionSetup, options: OpenAIRealtimeOptions
    ) -> RealtimeLink:
        return cast(RealtimeLink, _ExitingLink(await super().aconnect(setup, options)))


def still_here() -> str:
    """Says that it is still here."""
    return "here"


async def main_output(server: FakeLLMServer) -> None:
    """Start a session whose tool's output exits as it is sent; leave its reply unread."""
    server.speak(["Checking."], tool_calls=[ToolCall("still_here", {}, id="call_1")])
    server.speak(["Still here."])
    agent = make_realtime_agent(
        OpenAIRealtimeOptions, _ExitingProvider(), alias="EXITING", summary="Exits."
    )
    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test") as client:
        voice = agent.fork(async_client=client, tools=[still_here])
        async with MiniAgents():
            voice.inquire("Are you there?")  # (its reply, unread, would hide the exit)


if __name__ == "__main__":
    mains = {"input": main_input, "output": main_output}
    with FakeLLMServer() as fake:
        asyncio.run(mains.get(sys.argv[1] if sys.argv[1:] else "", main)(fake))
