"""Static typing tests for ``miniagents.ext.realtime``: the agents, their pieces, the page.

The ``check_*`` functions are never called: mypy checks them (``mypy.ini`` is strict, with
``warn_unused_ignores``); each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_realtime_types_pass_mypy` runs the check.
"""

from __future__ import annotations

from typing import assert_type

from starlette.applications import Starlette

from miniagents import MessagePromise, MessageSequencePromise, MessageTuple
from miniagents.errors import RealtimeError, RealtimeServerError
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.usage import Budget
from miniagents.ext.realtime import (
    AudioChunk,
    AudioFormat,
    Interruption,
    PlaybackPosition,
    RealtimePiece,
    RealtimeUsage,
    Transcript,
    TurnEnd,
    piece_is,
)
from miniagents.ext.realtime.gemini import create_gemini_live_agent, gemini_live_agent
from miniagents.ext.realtime.openai import create_openai_realtime_agent, openai_realtime_agent
from miniagents.ext.realtime.web import voice_app
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings
from miniagents.testing import FakeLLMServer, LiveRecord, LiveUsage
from tests.fakes.typecheck import assert_passes_mypy


async def check_a_sessions_reply_is_typed_by_its_pieces() -> None:
    reply = openai_realtime_agent.inquire([AudioChunk(audio=b"\0\0")], instructions="Hi.")
    assert_type(reply, MessageSequencePromise[RealtimePiece])
    async for piece in reply:
        assert_type(piece, MessagePromise[RealtimePiece])
        if piece_is(piece, AudioChunk):
            assert_type(piece, MessagePromise[AudioChunk])
            chunk = await piece
            assert_type(chunk.audio, bytes)
            assert_type(chunk.format, AudioFormat)
            assert_type(chunk.duration_ms, float)
            assert_type(chunk.item_id, str | None)
        elif piece_is(piece, Transcript):
            async for token in piece:
                assert_type(token, str)
            assert_type((await piece).role, str)
        elif piece_is(piece, TurnEnd):
            turn = await piece
            assert_type(turn.usage, RealtimeUsage | None)
            if turn.usage is not None:
                assert_type(turn.usage.output_audio_tokens, int | None)
                assert_type(turn.usage.cost_usd, float | None)
        elif piece_is(piece, Interruption):
            assert_type((await piece).heard, str)
    whole = await reply
    assert_type(whole, MessageTuple[RealtimePiece])


def check_the_agents_arguments_are_typed() -> None:
    create_openai_realtime_agent(model="gpt-realtime", voice="alloy", budget=Budget())
    create_gemini_live_agent(model="gemini-live-2.5-flash-preview", modality="text")
    create_openai_realtime_agent(model=3)  # type: ignore[arg-type]
    create_openai_realtime_agent(modality="video")  # type: ignore[arg-type]
    create_gemini_live_agent(transcription_model="whisper-1")  # type: ignore[call-arg]
    gemini_live_agent.inquire("Hi.", drain_timeout="soon")  # type: ignore[arg-type]
    PlaybackPosition(item_id="item_1", played_ms=120)


def check_the_page_wants_a_realtime_agent_and_says_who_asks() -> None:
    app = voice_app(
        openai_realtime_agent, authentication=BearerTokenAuth({"token-of-ada-kept-secret": "ada"})
    )
    assert_type(app, Starlette)
    local = NoAuthentication()
    voice_app(openai_realtime_agent, authentication=local, settings=WebSettings(max_live_runs=4))
    voice_app(openai_realtime_agent, authentication=local, settings={})  # type: ignore[arg-type]
    voice_app(offline_agent, authentication=local)  # type: ignore[arg-type]


def check_the_errors_and_the_fake_server_are_typed(error: RealtimeError) -> None:
    if isinstance(error, RealtimeServerError):
        assert_type(error.code, str)
    server = FakeLLMServer()
    server.speak(["Hi."], usage=LiveUsage(output_audio=10), pause_after=1)
    server.speak(usage=(1, 2))  # type: ignore[arg-type]
    assert_type(server.realtime_sessions, list[LiveRecord])
    assert_type(server.realtime_sessions[0].truncations, list[tuple[str, int]])


def test_realtime_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
