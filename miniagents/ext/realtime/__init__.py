"""Realtime agents: voice (and text) sessions as typed, replayable streams (extra ``realtime``).

A realtime agent holds one session with a realtime API per interaction: OpenAI Realtime
(:data:`~miniagents.ext.realtime.openai.openai_realtime_agent`) or Gemini Live
(:data:`~miniagents.ext.realtime.gemini.gemini_live_agent`). Its input is a stream of
pieces (the user's :class:`AudioChunk` s, text, images, tool results), sent as they come;
its reply a stream of pieces (the model's audio with its format, the transcript as text
tokens, tool calls and their streaming results, turn ends, interruptions), each a
replayable MiniAgents stream that any number of readers consume live or later, and the
whole awaitable like every reply::

    from miniagents.ext.realtime.openai import openai_realtime_agent

    voice = openai_realtime_agent.fork(instructions="Be brief.", tools=[researcher])
    async for piece in voice.inquire(microphone()):     # AudioChunk s, as they are heard
        if piece_is(piece, AudioChunk): play((await piece).audio)

The model calls tools and agents (``tools=[...]``: a sub-agent's tokens stream into the
reply while the session goes on) and hands the conversation to text agents
(``handoffs=[...]``: :class:`Handoff`); the user's speech cuts it short
(:class:`Interruption`: the unheard rest leaves the conversation); every reply's usage has
audio and text apart, with its cost (:class:`RealtimeUsage`), charged to budgets that
stop the session; replies are traced as calls of the model; an active call cache records
sessions and replays them with no server. The page of :func:`voice_app`
(:mod:`miniagents.ext.realtime.web`) talks to an agent from the browser.

Importing this package needs no SDK: ``openai`` (``miniagents[realtime]``, with
``websockets``) or ``google-genai`` is imported when a session starts, and a missing one
is an ``LLMSDKMissingError`` with the ``pip install`` command.
"""

from miniagents.ext.realtime.agent import make_realtime_agent as make_realtime_agent
from miniagents.ext.realtime.errors import RealtimeConnectionError as RealtimeConnectionError
from miniagents.ext.realtime.errors import RealtimeError as RealtimeError
from miniagents.ext.realtime.errors import RealtimeInputError as RealtimeInputError
from miniagents.ext.realtime.errors import RealtimeServerError as RealtimeServerError
from miniagents.ext.realtime.handoff import Handoff as Handoff
from miniagents.ext.realtime.pieces import PCM16K as PCM16K
from miniagents.ext.realtime.pieces import PCM24K as PCM24K
from miniagents.ext.realtime.pieces import AudioChunk as AudioChunk
from miniagents.ext.realtime.pieces import AudioFormat as AudioFormat
from miniagents.ext.realtime.pieces import HandoffResult as HandoffResult
from miniagents.ext.realtime.pieces import Interruption as Interruption
from miniagents.ext.realtime.pieces import PlaybackPosition as PlaybackPosition
from miniagents.ext.realtime.pieces import RealtimePiece as RealtimePiece
from miniagents.ext.realtime.pieces import RealtimeUsage as RealtimeUsage
from miniagents.ext.realtime.pieces import SessionEnd as SessionEnd
from miniagents.ext.realtime.pieces import Transcript as Transcript
from miniagents.ext.realtime.pieces import TurnEnd as TurnEnd
from miniagents.ext.realtime.pieces import piece_is as piece_is
from miniagents.ext.realtime.provider import RealtimeLink as RealtimeLink
from miniagents.ext.realtime.provider import RealtimeOptions as RealtimeOptions
from miniagents.ext.realtime.provider import RealtimeProvider as RealtimeProvider
from miniagents.ext.realtime.provider import SessionSetup as SessionSetup
from miniagents.ext.realtime.provider import session_option as session_option

__all__ = [
    "PCM16K",
    "PCM24K",
    "AudioChunk",
    "AudioFormat",
    "Handoff",
    "HandoffResult",
    "Interruption",
    "PlaybackPosition",
    "RealtimeConnectionError",
    "RealtimeError",
    "RealtimeInputError",
    "RealtimeLink",
    "RealtimeOptions",
    "RealtimePiece",
    "RealtimeProvider",
    "RealtimeServerError",
    "RealtimeUsage",
    "SessionEnd",
    "SessionSetup",
    "Transcript",
    "TurnEnd",
    "make_realtime_agent",
    "piece_is",
    "session_option",
]
