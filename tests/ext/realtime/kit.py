"""What the realtime tests share: both APIs as a parameter, the user's voice, the reply read.

``api`` (a fixture over both realtime APIs, in ``conftest.py``) gives the agent of one, a
client of the fake server for it, and its input format; :func:`speech` and
:func:`silence` make the user's voice as the fake hears it (a tone is speech, zeros are
quiet); :func:`pieces` reads a reply whole, each piece awaited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from miniagents import InteractionContext, MessageSequencePromise, MiniAgent, miniagent
from miniagents.ext.realtime import PCM16K, PCM24K, AudioChunk, AudioFormat, RealtimePiece
from miniagents.ext.realtime.gemini import gemini_live_agent
from miniagents.ext.realtime.openai import openai_realtime_agent
from miniagents.messages import Message
from miniagents.testing import FakeLLMServer, tone

CHUNK_MS = 100
"""The length of each chunk of the user's voice."""


@dataclass(frozen=True)
class Api:
    """One realtime API of the fake server, as a realtime agent sees it."""

    name: str
    agent: MiniAgent[..., RealtimePiece]
    format: AudioFormat

    def client(self, server: FakeLLMServer) -> Any:
        """A client of the SDK, pointed at ``server``."""
        if self.name == "openai":
            import openai

            return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test")
        from google import genai
        from google.genai import types

        options = types.HttpOptions(
            base_url=server.gemini_base_url, async_client_args={"ssl": server.tls_context}
        )
        return genai.Client(api_key="test", http_options=options)

    def voice(self, server: FakeLLMServer, **arguments: Any) -> MiniAgent[..., RealtimePiece]:
        """The API's agent, with a client of ``server`` and ``arguments`` bound."""
        return self.agent.fork(async_client=self.client(server), **arguments)


APIS = [Api("openai", openai_realtime_agent, PCM24K), Api("gemini", gemini_live_agent, PCM16K)]


def speech(api: Api, ms: int = 300, frequency: float = 440.0) -> list[AudioChunk]:
    """``ms`` of the user speaking (a tone), in chunks of :data:`CHUNK_MS`."""
    chunk = tone(CHUNK_MS, frequency, api.format.rate)
    return [AudioChunk(audio=chunk, format=api.format) for _ in range(ms // CHUNK_MS)]


def silence(api: Api, ms: int = 600) -> list[AudioChunk]:
    """``ms`` of quiet, in chunks of :data:`CHUNK_MS` (more than the VAD's 500 ms ends a turn)."""
    chunk = bytes(api.format.size_of(CHUNK_MS))
    return [AudioChunk(audio=chunk, format=api.format) for _ in range(ms // CHUNK_MS)]


def question(api: Api) -> list[AudioChunk]:
    """A spoken question: speech, then the quiet that ends the user's turn."""
    return [*speech(api), *silence(api)]


async def streamed(items: Iterable[Message | str]) -> AsyncIterator[Message | str]:
    """``items`` as an async stream (the input of a session that ends after them)."""
    for item in items:
        yield item


async def pieces(reply: MessageSequencePromise[RealtimePiece]) -> list[RealtimePiece]:
    """Every piece of ``reply``, awaited in order."""
    return [await piece async for piece in reply]


async def pieces_then_error(
    reply: MessageSequencePromise[RealtimePiece],
) -> tuple[list[RealtimePiece], Exception]:
    """The pieces of ``reply`` before its error, and the error.

    Raises:
        AssertionError: if the reply ends without an error.
    """
    found: list[RealtimePiece] = []
    try:
        async for piece in reply:
            found.append(await piece)
    except Exception as error:
        return found, error
    raise AssertionError(f"the reply ended with no error, after {found!r:.300}")


def planner(given: list[list[Message]], answer: str) -> MiniAgent[[]]:
    """A text agent that plans trips: it notes the conversation it is given, and answers."""

    @miniagent
    async def planner(ctx: InteractionContext) -> None:
        """Plans trips, step by step."""
        given.append(list(await ctx.message_promises))
        ctx.reply(answer)

    return planner


def of(kind: type[Any], found: Sequence[object]) -> list[Any]:
    """The pieces of ``kind``."""
    return [piece for piece in found if isinstance(piece, kind)]
