"""The pieces of a realtime session: what goes in, what comes out, each a frozen ``Message``.

**In** (the agent's input, any ``MessageType`` that streams them): :class:`AudioChunk` s of
the user's voice, text (a ``str`` or a message: a turn the model answers; an
``AssistantMessage`` or a tool's call and result: conversation carried in, not answered),
images (a message's ``images``), tool results (``ToolResultMessage``: the output of a call
the caller ran) and :class:`PlaybackPosition` (how much of the model's audio was played,
for interruptions).

**Out** (the agent's reply, a :data:`RealtimePiece` each)::

    reply:  Transcript(user) AudioChunk AudioChunk Transcript(assistant, streaming)
            AudioChunk ... LLMToolCallMessage LLMToolResultMessage(streaming) TurnEnd
            ... Interruption ... SessionEnd

:class:`AudioChunk` s of the model's voice (with their format and item), its
:class:`Transcript` (a message whose tokens stream as the model speaks; the user's speech
transcribed is one too, ``role="user"``), tool calls and their results (the results
streaming as the tool produces them: a sub-agent's tokens live), a :class:`TurnEnd` per
reply of the model (its status and usage), an :class:`Interruption` where the user cut the
model short, and a :class:`SessionEnd` with the session's usage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, TypeAlias, TypeGuard, TypeVar, Union

from miniagents.ext.history.storage import add_built_in_message_classes
from miniagents.ext.llm.messages import (
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    TokenUsage,
)
from miniagents.frozen.model import Frozen
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise

__all__ = [
    "PCM16K",
    "PCM24K",
    "AudioChunk",
    "AudioFormat",
    "HandoffResult",
    "Interruption",
    "PlaybackPosition",
    "RealtimePiece",
    "RealtimeUsage",
    "SessionEnd",
    "Transcript",
    "TurnEnd",
    "piece_is",
]

PieceT = TypeVar("PieceT", bound=Message)


class AudioFormat(Frozen):
    """Raw PCM audio: 16-bit little-endian samples, ``channels`` interleaved, at ``rate`` Hz.

    Attributes:
        rate: Samples per second (OpenAI Realtime: 24000 both ways; Gemini Live: 16000
            in, 24000 out).
        channels: Interleaved channels (the realtime APIs take mono, 1).
        encoding: ``"pcm16"``.
    """

    rate: int = 24000
    channels: int = 1
    encoding: Literal["pcm16"] = "pcm16"

    def duration_ms(self, size: int) -> float:
        """How long ``size`` bytes of this audio play, in milliseconds."""
        return size * 1000 / (2 * self.channels * self.rate)

    def size_of(self, ms: float) -> int:
        """The bytes of ``ms`` milliseconds of this audio (whole samples)."""
        return int(ms * self.rate / 1000) * 2 * self.channels

    @property
    def mime_type(self) -> str:
        """Its media type, as Gemini names it: ``audio/pcm;rate=24000``."""
        return f"audio/pcm;rate={self.rate}"


PCM24K = AudioFormat(rate=24000)
"""16-bit mono PCM at 24 kHz: OpenAI Realtime's audio both ways, Gemini Live's output."""

PCM16K = AudioFormat(rate=16000)
"""16-bit mono PCM at 16 kHz: Gemini Live's input."""


class AudioChunk(Message):
    """A piece of audio: the user's voice going in, or the model's coming out.

    Attributes:
        audio: The samples (see ``format``).
        format: How to read them.
        role: ``"user"`` (input) or ``"assistant"`` (the model's voice).
        item_id: The conversation item the model's audio belongs to (what an
            :class:`Interruption` and a :class:`PlaybackPosition` name).
    """

    audio: bytes
    format: AudioFormat = PCM24K
    role: str = "user"
    item_id: str | None = None

    @property
    def duration_ms(self) -> float:
        """How long the chunk plays, in milliseconds."""
        return self.format.duration_ms(len(self.audio))

    def __str__(self) -> str:
        """``[audio 100 ms]``: what it is, not its bytes."""
        return f"[audio {self.duration_ms:.0f} ms]"

    def __repr_args__(self) -> Iterator[tuple[str | None, object]]:
        """The fields, the samples shown by their size."""
        for name, value in super().__repr_args__():
            yield (name, f"<{len(value)} bytes>") if name == "audio" else (name, value)


class Transcript(Message):
    """What was said, as text: the model's words as it speaks them, or the user's speech.

    The model's transcript streams token by token as its audio comes (its message's text is
    everything the model generated for the item; what the user heard of it, after an
    interruption, is the :class:`Interruption`'s ``heard``).

    Attributes:
        role: ``"assistant"`` (the model) or ``"user"`` (the user's speech transcribed).
        item_id: The conversation item it is the transcript of.
        model: The model of the session.
        agent_alias: The realtime agent's alias.
    """

    role: str = "assistant"
    item_id: str | None = None
    model: str | None = None
    agent_alias: str | None = None


class RealtimeUsage(TokenUsage):
    """The tokens of a realtime reply (or session), text and audio apart, and their cost.

    ``input_tokens`` and ``output_tokens`` count every token (text, audio, images); the
    fields below split them as the API reports them (``None``: not reported).

    Attributes:
        input_text_tokens: Prompt tokens of text (instructions, text turns, transcripts).
        input_audio_tokens: Prompt tokens of audio (the user's voice, the model's earlier
            replies).
        input_image_tokens: Prompt tokens of images.
        output_text_tokens: Reply tokens of text (the transcript, tool calls).
        output_audio_tokens: Reply tokens of audio (the model's voice).
        cached_audio_tokens: Cached prompt tokens of audio (part of
            ``cached_input_tokens``).
    """

    input_text_tokens: int | None = None
    input_audio_tokens: int | None = None
    input_image_tokens: int | None = None
    output_text_tokens: int | None = None
    output_audio_tokens: int | None = None
    cached_audio_tokens: int | None = None


class TurnEnd(Message):
    """The end of one reply of the model (a *response*; OpenAI's ``response.done``).

    Attributes:
        status: ``"completed"``, ``"cancelled"`` (the user interrupted it, or it was
            cancelled), ``"incomplete"`` or ``"failed"``.
        response_id: The API's id of the reply (Gemini: one the session makes).
        usage: The reply's tokens and cost (``None``: not reported).
        model: The model of the session.
        agent_alias: The realtime agent's alias.
    """

    status: str = "completed"
    response_id: str | None = None
    usage: RealtimeUsage | None = None
    model: str | None = None
    agent_alias: str | None = None

    def __str__(self) -> str:
        """``[turn completed]``."""
        return f"[turn {self.status}]"


class Interruption(Message):
    """The user cut the model short: where, and what of its words the user heard.

    The model's audio after ``played_ms`` was not heard: the session tells the API so
    (OpenAI: ``conversation.item.truncate``, which drops the rest of the audio and the
    transcript from the model's context), and its own record of the conversation keeps
    ``heard`` as what the model said, not the whole transcript.

    Attributes:
        item_id: The model's item that was cut.
        played_ms: How much of its audio was played (heard), in milliseconds.
        generated_ms: How much audio the model had produced for it.
        heard: The transcript as far as it was heard (estimated from where each
            transcript piece came in the audio).
        unheard: The rest of the transcript, not heard.
    """

    item_id: str | None = None
    played_ms: int = 0
    generated_ms: int = 0
    heard: str = ""
    unheard: str = ""

    def __str__(self) -> str:
        """``[interrupted at 1200 ms]``."""
        return f"[interrupted at {self.played_ms} ms]"


class PlaybackPosition(Message):
    """In the input: how much of the model's item ``item_id`` the player has played.

    Without it, the session supposes each item plays at real time from when its first
    chunk reached the reply; with it (a player that knows, as the browser page does), an
    interruption cuts the item where the user really stopped hearing it.

    Attributes:
        item_id: The model's item (an ``AudioChunk``'s ``item_id``).
        played_ms: Milliseconds of it played so far.
    """

    item_id: str
    played_ms: int


class SessionEnd(Message):
    """The end of a session that ended well: its turns, and the usage of all of them.

    Attributes:
        turns: The replies of the model.
        usage: Their tokens and cost, summed.
        model: The model of the session.
        agent_alias: The realtime agent's alias.
    """

    turns: int = 0
    usage: RealtimeUsage | None = None
    model: str | None = None
    agent_alias: str | None = None

    def __str__(self) -> str:
        """``[session ended after 3 turns]``."""
        return f"[session ended after {self.turns} turns]"


class HandoffResult(LLMToolResultMessage):
    """The result of handing the conversation to a text agent: that agent's answer.

    Its tokens are the text agent's, streamed as it writes them; the answer then goes back
    into the realtime conversation (see :class:`~miniagents.ext.realtime.Handoff`).

    Attributes:
        handed_to: The alias of the text agent.
    """

    handed_to: str | None = None


add_built_in_message_classes(HandoffResult)
# (chat histories load it back as itself: the history package may not import this one)


RealtimePiece: TypeAlias = Union[  # noqa: UP007 (a runtime alias, as LLMReply)
    AudioChunk,
    Transcript,
    LLMToolCallMessage,
    LLMToolApprovalRequest,
    LLMToolResultMessage,
    TurnEnd,
    Interruption,
    SessionEnd,
]
"""A piece of a realtime agent's reply: ``isinstance`` (or the promise's ``message_class``)
tells which (a :class:`HandoffResult` is an ``LLMToolResultMessage``; an
``LLMToolApprovalRequest`` is a tool call that waits for a person's decision)."""


def piece_is(
    piece: MessagePromise[Message], kind: type[PieceT]
) -> TypeGuard[MessagePromise[PieceT]]:
    """Whether the reply's ``piece`` is a ``kind`` (its promise typed so, for mypy too).

    It reads the promise's ``message_class``, known before the tokens come: a transcript
    can be streamed, a chunk played, as each arrives::

        async for piece in reply:
            if piece_is(piece, AudioChunk):
                play((await piece).audio)          # an AudioChunk, typed
            elif piece_is(piece, Transcript):
                async for token in piece: ...      # the words, as they are spoken
    """
    return issubclass(piece.message_class, kind)
