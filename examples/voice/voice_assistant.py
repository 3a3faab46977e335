"""A voice assistant with a research tool: a spoken question, a sub-agent's notes live, an answer.

``python examples/voice/voice_assistant.py`` runs one spoken exchange offline: the
testing kit's fake OpenAI Realtime API hears a question (a tone stands for the voice),
the assistant calls its research agent (the offline model), whose notes stream into the
reply while it writes them, and the assistant speaks the answer. It prints the session as
a reader of the reply sees it.

``python examples/voice/voice_assistant.py --serve`` serves the voice page
(``voice_app``) at http://127.0.0.1:8000/#token=... (the token is printed): with
``OPENAI_API_KEY`` set, the assistant is OpenAI's realtime model; without, the fake
server answers each turn ("You said: ..."), so that the page, the microphone and the
relay can be tried with no key. Needs ``pip install "miniagents[realtime,web]"``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator

import openai

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.llm.offline import create_offline_agent
from miniagents.ext.realtime import PCM24K, AudioChunk, SessionEnd, Transcript, piece_is
from miniagents.ext.realtime.openai import create_openai_realtime_agent
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage
from miniagents.testing import FakeLLMServer, ToolCall, tone

writer = create_offline_agent(
    reply="Rivers meander because water runs faster on the outside of a bend, wearing it away.",
    token_delay=0.005,
)


@miniagent
async def researcher(ctx: InteractionContext, topic: str) -> None:
    """Look a topic up, and write a short note on it.

    Args:
        ctx: The interaction.
        topic: What to look up.
    """
    ctx.reply(writer.inquire(f"A note on {topic}."))


INSTRUCTIONS = "You are a friendly guide. Be brief; look things up with the researcher."


async def question() -> AsyncIterator[AudioChunk]:
    """A spoken question (a tone, as the fake server hears speech), then quiet."""
    for _ in range(4):
        yield AudioChunk(audio=tone(100, 440, PCM24K.rate))
    for _ in range(6):
        yield AudioChunk(audio=bytes(PCM24K.size_of(100)))


async def one_exchange() -> None:
    """One spoken exchange with the fake server, printed as the reply streams."""
    with FakeLLMServer() as server:
        server.speak(
            ["Good question, ", "let me look."],
            heard="Why do rivers meander?",
            tool_calls=[ToolCall("RESEARCHER", {"topic": "meandering rivers"})],
        )
        server.speak(["Faster water ", "wears the outer bank, ", "so the bend grows."])
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="offline")
        assistant = create_openai_realtime_agent(
            async_client=client, instructions=INSTRUCTIONS, tools=[researcher]
        )
        async with MiniAgents():
            audio_ms = 0.0
            async for piece in assistant.inquire(question()):
                if piece_is(piece, AudioChunk):
                    audio_ms += (await piece).duration_ms
                elif piece_is(piece, Transcript):
                    said = await piece
                    print(f"{said.role}: {said}")
                elif piece_is(piece, ToolCallMessage):
                    print(f"(calls {(await piece).tool_name})")
                elif piece_is(piece, ToolResultMessage):
                    print("(the researcher, live) ", end="")
                    async for token in piece:
                        print(token, end="", flush=True)
                    print()
                elif piece_is(piece, SessionEnd):
                    print(f"{audio_ms:.0f} ms of speech; {await piece}")


def serve() -> None:
    """Serve the voice page (see the module)."""
    from miniagents.ext.realtime.web import voice_app, voice_server
    from miniagents.ext.web import BearerTokenAuth

    token = secrets.token_urlsafe(12)
    server = None
    if os.environ.get("OPENAI_API_KEY"):
        assistant = create_openai_realtime_agent(instructions=INSTRUCTIONS, tools=[researcher])
    else:
        server = FakeLLMServer().start()
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="offline")
        assistant = create_openai_realtime_agent(async_client=client, tools=[researcher])
    app = voice_app(assistant, authentication=BearerTokenAuth({token: "you"}))
    print(f"Open http://127.0.0.1:8000/#token={token}")
    try:
        voice_server(app, host="127.0.0.1", port=8000).run()  # (its messages bounded as the app's)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve()
    else:
        asyncio.run(one_exchange())
