"""What the realtime tests share: both APIs as a parameter, the user's voice, the reply read.

``api`` (a fixture over both realtime APIs, in ``conftest.py``) gives the agent of one, a
client of the fake server for it, and its input format; :func:`speech` and
:func:`silence` make the user's voice as the fake hears it (a tone is speech, zeros are
quiet); :func:`pieces` reads a reply whole, each piece awaited. A test's own API is a
:class:`ScriptedLink` (each command it does not expect fails the test) served by a
:class:`ScriptedAPI`, and :func:`scripted_agent` is the realtime agent of one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from miniagents import InteractionContext, MessageSequencePromise, MiniAgent, miniagent
from miniagents.ext.realtime import (
    PCM16K,
    PCM24K,
    AudioChunk,
    AudioFormat,
    RealtimeOptions,
    RealtimePiece,
    SessionSetup,
    make_realtime_agent,
)
from miniagents.ext.realtime.gemini import gemini_live_agent
from miniagents.ext.realtime.openai import openai_realtime_agent
from miniagents.ext.realtime.provider import InputEnd, RealtimeEvent, RealtimeLink
from miniagents.messages import ImagePart, Message
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


class ScriptedLink:
    """A realtime API of a test's own: silent until closed, and taking no command.

    A subclass answers the commands its test sends (each one it does not answer fails the
    test with an ``AssertionError`` naming it) and says its events; the input's end finds
    no turn under way, and the close ends the events.
    """

    reports_speech = False
    replies_to_tool_outputs = False
    replayed = False

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def asend_audio(self, audio: bytes) -> None:
        raise _unexpected("audio")

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        raise _unexpected("a text")

    async def asend_images(self, images: Sequence[ImagePart]) -> None:
        raise _unexpected("images")

    async def asend_item(self, role: str, text: str) -> None:
        raise _unexpected("an item carried in")

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        raise _unexpected("a tool's output")

    async def arespond(self) -> None:
        raise _unexpected("an ask for a reply")

    async def atruncate(self, item_id: str, played_ms: int) -> None:
        raise _unexpected("a cut")

    async def aend_input(self) -> InputEnd:
        return "no_turn"

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.closed.wait()
        said: tuple[RealtimeEvent, ...] = ()  # (an async generator of no event)
        for event in said:
            yield event

    async def aclose(self) -> None:
        self.closed.set()


def _unexpected(what: str) -> AssertionError:
    """The failure of a :class:`ScriptedLink` sent what its test does not send."""
    return AssertionError(f"The session sent {what}, which this test's API does not expect.")


@dataclass
class ScriptedAPI:
    """The realtime provider of a test's own API: each session's link is ``link()``."""

    link: Callable[[], RealtimeLink]
    provider_name: str = "scripted"
    price_provider: str | None = None
    input_format: AudioFormat = PCM24K
    output_format: AudioFormat = PCM24K
    default_model: str | None = "scripted-model"

    async def aconnect(self, setup: SessionSetup, options: RealtimeOptions) -> RealtimeLink:
        """The next link (``setup`` and ``options`` say nothing to a test's API)."""
        return self.link()


def scripted_agent(
    link: Callable[[], RealtimeLink], alias: str, summary: str | None = None, **api: Any
) -> MiniAgent[..., RealtimePiece]:
    """The realtime agent ``alias`` of a :class:`ScriptedAPI` (``api``: its other fields).

    Its summary is ``summary``, else its alias as a sentence (``"LATE"``: ``"Late."``).
    """
    return make_realtime_agent(
        RealtimeOptions,
        ScriptedAPI(link, **api),
        alias=alias,
        summary=summary or f"{alias.title()}.",
    )
