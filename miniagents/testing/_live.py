"""A fake realtime session, whichever API it speaks: its script, its voice detection, its record.

The realtime APIs (OpenAI Realtime, Gemini Live) hold a conversation over a WebSocket: the
client streams the user's audio (and text, images, tool results), the server detects when
the user speaks (*server VAD*) and answers with audio, its transcript and tool calls. The
fake's :class:`LiveSession` is that server, provider-neutral, in one handler thread; a wire
module (``_openai_realtime_wire``, ``_gemini_live_wire``) reads the client's messages into
calls of it and renders what it does as the API's events (:data:`LiveEvent`).

**Voice detection.** Input audio is 16-bit PCM, mono, at the session's input rate. A chunk
whose loudest sample passes :data:`LOUD` is speech: the first one starts the user's turn
(and interrupts the model's reply in progress, if any); once ``silence_ms`` of quiet audio
follow, the turn ends: the audio is committed as a user item, transcribed (the next
:class:`SpokenReply`'s ``heard``, or ``"(N ms of speech)"``), and the model answers (over a
reply the speech did not interrupt: OpenAI refuses a second reply, Gemini answers after it).
Times are audio time (the bytes' length), never the wall clock, so a test that sends its
audio at once gets the same events as one that sends it at real-time pace.

**Replies.** Each reply of the model takes the next :class:`SpokenReply` of the server's
realtime script (``FakeLLMServer.speak``); with none left, it says ``"You said: <what the
user said or typed>"``. A reply streams its transcript pieces, each with its audio (a
tone of ``ms_per_piece`` ms, or the scripted chunks), then its tool calls and its end with
the usage. ``pause_after`` holds it after so many pieces until the user interrupts it or
the test resumes it (``LiveRecord.resume``); ``pace`` sends the audio at real-time pace.

**The record.** Every session is a :class:`LiveRecord` (``FakeLLMServer.realtime_sessions``):
what the client sent (audio payloads left out: ``input_audio`` holds the audio, up to
:data:`MAX_RECORDED_AUDIO` bytes), the events sent back, the truncations, the tool outputs,
and the protocol errors the fake answered (a response asked for while one is active, a
truncation past the audio, the output of a call never made, ...).
"""

from __future__ import annotations

import array
import functools
import json
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from miniagents.testing._script import ToolCall, check_script_count, check_script_seconds
from miniagents.testing.errors import FakeLLMServerError

__all__ = [
    "LOUD",
    "MAX_RECORDED_AUDIO",
    "AudioOut",
    "CallOut",
    "ItemAdded",
    "LiveEvent",
    "LiveRecord",
    "LiveRefusal",
    "LiveSession",
    "LiveUsage",
    "LiveWire",
    "ProtocolError",
    "ReplyEnd",
    "ReplyStart",
    "SpeechEdge",
    "SpokenReply",
    "TakeReply",
    "Transcribed",
    "Truncated",
    "UserTurn",
    "taking",
    "tone",
]

LOUD = 1000
"""The peak (of a 16-bit sample) above which a chunk of input audio is speech."""

MAX_RECORDED_AUDIO = 16 * 1024 * 1024
"""The most input audio a session's record keeps, in bytes (the rest is counted, not kept)."""

_LiveStatus = Literal["completed", "cancelled", "failed"]

TakeReply = Callable[[bool, int], "SpokenReply | None"]
"""How a :class:`LiveSession` takes its scripted replies: ``take(peek, ahead)`` (see there)."""


# -- the script ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveUsage:
    """The tokens a scripted reply reports (see ``FakeLLMServer.speak``).

    Attributes:
        input_text: Prompt tokens of text.
        input_audio: Prompt tokens of audio.
        output_text: Reply tokens of text.
        output_audio: Reply tokens of audio.
        cached: Cached prompt tokens of text.
        cached_audio: Cached prompt tokens of audio.
        by_modality: Whether the reply splits its tokens by modality, as the APIs do
            (OpenAI: ``input_token_details`` and ``output_token_details``; Gemini:
            ``promptTokensDetails`` and ``responseTokensDetails``, listing the modalities
            that had tokens); ``False``: it says its totals only.
    """

    input_text: int = 0
    input_audio: int = 0
    output_text: int = 0
    output_audio: int = 0
    cached: int = 0
    cached_audio: int = 0
    by_modality: bool = True

    def __post_init__(self) -> None:
        """Refuse a count that no API reports: one that is not a whole number of at least 0
        (a bool neither), or more cached tokens of a modality than the prompt has.

        Raises:
            FakeLLMServerError: naming the count and what it takes.
        """
        owner = "LiveUsage()"
        why = "no API reports such a count of tokens"
        counts = ("input_text", "input_audio", "output_text", "output_audio")
        for name in (*counts, "cached", "cached_audio"):
            check_script_count(getattr(self, name), name, owner, why=why)
        for cached, given in (("cached", "input_text"), ("cached_audio", "input_audio")):
            if getattr(self, cached) > getattr(self, given):
                raise FakeLLMServerError(
                    f"{owner} got {cached}={getattr(self, cached)} with {given}="
                    f"{getattr(self, given)}: the cached tokens are the prompt's tokens read "
                    "from the cache, so there are at most as many. Give e.g. "
                    f"{given}={getattr(self, cached)}."
                )
        if not isinstance(self.by_modality, bool):
            raise FakeLLMServerError(
                f"{owner} takes by_modality= as True or False, not {self.by_modality!r:.40}: "
                "pass by_modality=False for a reply that says its totals only."
            )


@dataclass(frozen=True)
class SpokenReply:
    """One scripted reply of the model in a realtime session (see ``FakeLLMServer.speak``)."""

    transcript: tuple[str, ...] | None = None
    audio: tuple[bytes, ...] | None = None
    ms_per_piece: int = 100
    tool_calls: tuple[ToolCall, ...] = ()
    calls_first: bool = False
    heard: str | None = None
    heard_pieces: tuple[str, ...] = ()  # (the transcription told in pieces: ``heard`` joined)
    heard_after: int | None = None
    usage: LiveUsage | None = None
    pace: float = 0.0
    pause_after: int | None = None
    error: str | None = None
    error_code: str = "server_error"
    drop_after: int | None = None
    close_after: int | None = None

    def __post_init__(self) -> None:
        """Refuse a count of pieces, or a pace, that could never happen as scripted."""
        owner = "FakeLLMServer.speak()"
        check_script_count(self.ms_per_piece, "ms_per_piece", owner, least=1)
        for name in ("heard_after", "pause_after", "drop_after"):
            check_script_count(getattr(self, name), name, owner, optional=True)
        check_script_seconds(self.pace, "pace", owner, unit="times real time")


@dataclass(frozen=True)
class LiveRefusal:
    """A scripted refusal of a realtime connection: its HTTP status at the upgrade."""

    status: int
    message: str


# -- what a session does (rendered by a wire) ------------------------------------------------


@dataclass(frozen=True)
class SpeechEdge:
    """The user started (or stopped) speaking, at ``ms`` of the session's input audio."""

    started: bool
    item_id: str
    ms: int


@dataclass(frozen=True)
class UserTurn:
    """A user item was committed (audio: ``transcript`` is what was heard; text: ``text``).

    ``transcribed``: whether the transcription of its audio is told with it (else a
    :class:`Transcribed` tells it later, during the reply); ``pieces``: the transcription's
    pieces, if the script told it in pieces (``transcript`` joined).
    """

    item_id: str
    transcript: str | None = None
    text: str | None = None
    transcribed: bool = True
    pieces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transcribed:
    """The transcription of a user item's audio, told after the item (during the reply);
    ``pieces``: its pieces, if the script told it in pieces."""

    item_id: str
    transcript: str
    pieces: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemAdded:
    """An item the client created was added to the conversation."""

    item_id: str
    item: Mapping[str, Any]
    previous_item_id: str | None


@dataclass(frozen=True)
class ReplyStart:
    """The model started a reply."""

    response_id: str


@dataclass(frozen=True)
class AudioOut:
    """A piece of a reply: its audio and the transcript spoken with it (``first``: of its item)."""

    response_id: str
    item_id: str
    audio: bytes
    transcript: str
    first: bool
    text_only: bool


@dataclass(frozen=True)
class CallOut:
    """A tool call of a reply (``last``: the last of the reply's calls, which come together).

    A reply's calls are sent one after another with nothing between them, so that a wire
    that tells them in one message (Gemini's ``toolCall``) tells them at the last.
    """

    response_id: str
    item_id: str
    call_id: str
    call: ToolCall
    last: bool = True


@dataclass(frozen=True)
class ReplyEnd:
    """A reply ended (``cancelled``: interrupted), with its items' transcripts and its usage.

    ``error``: what failed it (its status ``failed``: a scripted error, said after it).
    """

    response_id: str
    status: _LiveStatus
    transcripts: Mapping[str, str]
    calls: tuple[CallOut, ...]
    usage: LiveUsage
    text_only: bool
    error: ProtocolError | None = None


@dataclass(frozen=True)
class Truncated:
    """An assistant item's audio was cut at ``ms`` (what the user heard of it)."""

    item_id: str
    ms: int


@dataclass(frozen=True)
class ProtocolError:
    """The fake refused a client message, as the API would (``fatal``: it closes the session).

    ``param``: the field of the message refused, if the API names one.
    """

    code: str
    message: str
    event_id: str | None = None
    fatal: bool = False
    param: str | None = None


LiveEvent = (
    SpeechEdge
    | UserTurn
    | Transcribed
    | ItemAdded
    | ReplyStart
    | AudioOut
    | CallOut
    | ReplyEnd
    | Truncated
    | ProtocolError
)
"""What a session tells its client, in the API's words (see :class:`LiveWire`)."""


class LiveWire(Protocol):
    """An API's side of a fake realtime session: its messages read, its events written."""

    provider: str

    def close_code(self, error: ProtocolError) -> int:
        """The WebSocket close code a fatal ``error`` closes the connection with."""
        ...

    def opened(self, session: LiveSession) -> list[dict[str, Any]]:
        """The events sent when the connection opens (none: the client speaks first)."""
        ...

    def receive(self, session: LiveSession, message: dict[str, Any]) -> None:
        """Read one client message into calls of ``session`` (and its ``raw`` answers)."""
        ...

    def render(self, session: LiveSession, event: LiveEvent) -> list[dict[str, Any]]:
        """The API's events for one thing the session did."""
        ...


# -- the record -------------------------------------------------------------------------------


@dataclass(eq=False)
class LiveRecord:
    """A realtime session the fake server held, as it went (see the module).

    Attributes:
        index: Its place in ``FakeLLMServer.realtime_sessions``.
        provider: ``"openai_realtime"`` or ``"gemini_live"``.
        path: The upgrade request's path, with its query.
        headers: The upgrade request's headers, names lower-cased.
        model: The model asked for (the query's ``model``; Gemini: the setup's).
        config: The session's configuration as the client last gave it (OpenAI: the
            ``session`` of ``session.update``; Gemini: the ``setup``).
        received: The client's messages, in order, as JSON (audio payloads replaced by
            their size, ``"<N bytes>"``).
        sent: The events the fake sent, in order (audio likewise).
        input_audio: The input audio received, decoded (at most
            :data:`MAX_RECORDED_AUDIO` bytes; ``input_audio_bytes`` counts it all).
        truncations: The assistant items cut, as ``(item_id, ms)``.
        tool_outputs: The output sent for each tool call, by call id.
        errors: The protocol errors the fake answered (see :class:`ProtocolError`).
        replies: The replies started (``SpokenReply`` s, the default ones included).
        outcome: ``"open"``, then how it ended: ``"closed"`` (the client closed it),
            ``"dropped"`` (the script cut it), ``"ended"`` (the script closed it, with
            code 1000, as a server ends a session), ``"failed"`` (the fake closed it on an
            error) or ``"stopped"`` (the server stopped). It changes on the server's
            threads: wait for it with ``FakeLLMServer.wait_realtime_async`` (``until=``
            reads the record at each change), not by polling.
    """

    index: int
    provider: str
    path: str
    headers: dict[str, str]
    model: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    input_audio: bytearray = field(default_factory=bytearray)
    input_audio_bytes: int = 0
    truncations: list[tuple[str, int]] = field(default_factory=list)
    tool_outputs: dict[str, str] = field(default_factory=dict)
    errors: list[ProtocolError] = field(default_factory=list)
    replies: list[SpokenReply] = field(default_factory=list)
    outcome: str = "open"
    _resumed: threading.Event = field(default_factory=threading.Event, repr=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def resume(self) -> None:
        """Let a reply held by ``pause_after`` go on."""
        self._resumed.set()

    def sent_types(self) -> list[str]:
        """The types of the events sent, in order (Gemini: each message's first key)."""
        return [str(event.get("type") or next(iter(event), "")) for event in self.sent]

    def received_types(self) -> list[str]:
        """The types of the client's messages, in order (Gemini: each message's first key)."""
        return [str(event.get("type") or next(iter(event), "")) for event in self.received]

    def note(self, change: Callable[[], None]) -> None:
        """Make ``change`` to the record under its lock, and wake those who wait for one.

        How the server's threads (the session, its wire, the server's stop) change a record:
        a test's wait (``FakeLLMServer.wait_realtime_async``) sees the change once it is
        whole.
        """
        with self._changed:
            change()
            self._changed.notify_all()


def shown(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with any long base64 payload (``audio``, ``delta``, ``data``) replaced."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: f"<{len(item) * 3 // 4} bytes>"
                if key in ("audio", "delta", "data") and isinstance(item, str) and len(item) > 64
                else walk(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(message)  # type: ignore[no-any-return]


# -- the session ------------------------------------------------------------------------------


@dataclass
class _Item:
    """An item of the conversation as the fake keeps it."""

    id: str
    role: str
    kind: str  # "audio", "text", "call", "output"
    transcript: str = ""
    audio_ms: int = 0
    call_id: str | None = None


@dataclass
class _Reply:
    """A reply in progress: its script and what it has sent so far."""

    id: str
    script: SpokenReply
    steps: list[AudioOut | CallOut]
    sent: int = 0
    pieces_sent: int = 0
    due: float = 0.0
    transcripts: dict[str, str] = field(default_factory=dict)
    calls: list[CallOut] = field(default_factory=list)
    output_ms: int = 0
    text_only: bool = False


class LiveSession:
    """A fake realtime session: voice detection, replies, the conversation (see the module).

    Args:
        wire: The API it speaks.
        record: Its record.
        take: Gives the next scripted reply (``None``: the default one), taken off the
            script; ``take(True, ahead)`` gives the one ``ahead`` places after it (``0``:
            that one) without taking it.
        ids: Numbers for the ids it makes.
        input_rate: The sample rate of the input audio (the wire may change it).
        output_rate: The sample rate of the output audio.
    """

    def __init__(
        self,
        wire: LiveWire,
        record: LiveRecord,
        take: TakeReply,
        ids: Callable[[], int],
        *,
        input_rate: int,
        output_rate: int,
    ) -> None:
        self.wire = wire
        self.record = record
        self._take = take
        self._ids = ids
        self.input_rate = input_rate
        self.output_rate = output_rate
        self.vad = True
        """Whether the server detects the user's turns (else the client commits them)."""
        self.create_response = True
        """Whether the end of the user's speech starts a reply."""
        self.interrupt_response = True
        """Whether the user's speech cancels the reply in progress."""
        self.turn_waits = False
        """Whether a turn the voice detection ends during a reply is answered once the reply
        ends (Gemini), rather than refused as a second reply (OpenAI)."""
        self.silence_ms = 500
        """How long a quiet stretch ends the user's turn."""
        self.text_only = False
        """Whether the model answers in text only (no audio)."""
        self.items: dict[str, _Item] = {}
        self._order: list[str] = []
        self._speaking = False
        self._speech_id: str | None = None
        self._speech_ms = 0
        self._quiet_ms = 0
        self._buffer_ms = 0
        self._audio_ms = 0  # all the input audio of the session
        self._reply: _Reply | None = None
        self._waiting: deque[str] = deque()  # (turns to answer once the reply ends: their words)
        self._last_user_text = ""
        self._replies = 0  # the replies started so far
        # (transcriptions held back, in order: each told after so many pieces of the reply
        # that answers its turn, that reply's number)
        self._late: deque[tuple[Transcribed, int, int]] = deque()
        self._outbox: list[dict[str, Any]] = []
        self.dropped = False
        self.ended = False
        """Whether the script ends the session (a close of code 1000, mid-reply)."""
        self.failed: ProtocolError | None = None

    # -- ids and output ------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """A new id, e.g. ``item_fake3``."""
        return f"{prefix}_fake{self._ids()}"

    def emit(self, event: LiveEvent) -> None:
        """Have the wire render ``event``, to be sent."""
        self._outbox.extend(self.wire.render(self, event))

    def error(
        self,
        code: str,
        message: str,
        event_id: str | None = None,
        *,
        fatal: bool = False,
        param: str | None = None,
    ) -> None:
        """Refuse a client message as the API would (``fatal``: and close the session)."""
        problem = ProtocolError(code, message, event_id, fatal, param)
        self.record.note(lambda: self.record.errors.append(problem))
        if fatal:
            self.failed = problem
        self.emit(problem)

    def raw(self, event: dict[str, Any]) -> None:
        """Send an event of the API's own (e.g. ``session.updated``)."""
        self._outbox.append(event)

    def take_outbox(self) -> list[dict[str, Any]]:
        """The events to send now."""
        out, self._outbox = self._outbox, []
        return out

    # -- the client's side (called by the wire) ---------------------------------------------

    def append_audio(self, audio: bytes) -> None:
        """Input audio: recorded, then listened to (see "Voice detection")."""
        kept = MAX_RECORDED_AUDIO - len(self.record.input_audio)

        def note() -> None:
            if kept > 0:
                self.record.input_audio.extend(audio[:kept])
            self.record.input_audio_bytes += len(audio)

        self.record.note(note)
        ms = len(audio) * 1000 // (2 * self.input_rate)
        start = self._audio_ms
        self._audio_ms += ms
        self._buffer_ms += ms
        if not self.vad:
            return
        if _peak(audio) > LOUD:
            self._quiet_ms = 0
            if not self._speaking:
                self._speaking = True
                self._speech_id = self.new_id("item")
                self._speech_ms = 0
                self.emit(SpeechEdge(True, self._speech_id, start))
                if self._reply is not None and self.interrupt_response:
                    self._end_reply("cancelled")
            self._speech_ms += ms
        elif self._speaking:
            self._speech_ms += ms
            self._quiet_ms += ms
            if self._quiet_ms >= self.silence_ms:
                self._speaking = False
                item_id = self._speech_id or self.new_id("item")
                self.emit(SpeechEdge(False, item_id, self._audio_ms))
                self._commit(item_id, self._speech_ms - self._quiet_ms)
                if self.create_response:
                    self.reply_after() if self.turn_waits else self.start_reply()

    def commit(self) -> None:
        """The client ends the user's turn itself (without server VAD)."""
        self._speaking = False
        self._commit(self._speech_id or self.new_id("item"), self._buffer_ms)
        self._speech_id = None

    def _commit(self, item_id: str, speech_ms: int) -> None:
        """The user's turn of speech ends: an item, heard as the script of its answer says.

        Its answer is the reply after those the turns waiting already take (each its own
        script), and its transcription held back (``heard_after``) waits for that reply.
        """
        script = self._peek(len(self._waiting))
        heard = (
            script.heard if script is not None and script.heard else f"({speech_ms} ms of speech)"
        )
        self._add(_Item(item_id, "user", "audio", heard))
        self._last_user_text = heard
        self._buffer_ms = 0
        self._speech_id = None
        after = None if script is None else script.heard_after
        pieces = () if script is None or not script.heard else script.heard_pieces
        if after is not None:
            answer = self._replies + len(self._waiting) + 1
            self._late.append((Transcribed(item_id, heard, pieces), after, answer))
        self.emit(UserTurn(item_id, transcript=heard, transcribed=after is None, pieces=pieces))

    def add_item(self, item: Mapping[str, Any], event_id: str | None = None) -> None:
        """A conversation item the client creates (a message, or a tool call's output)."""
        kind = item.get("type", "message")
        item_id = str(item.get("id") or self.new_id("item"))
        previous = self._order[-1] if self._order else None
        if kind == "function_call_output":
            call_id = str(item.get("call_id"))
            if not any(
                each.call_id == call_id and each.kind == "call" for each in self.items.values()
            ):
                self.error(
                    "invalid_value",
                    f"Tool call ID '{call_id}' not found in conversation.",
                    event_id,
                )
                return
            output = str(item.get("output", ""))
            self.record.note(lambda: self.record.tool_outputs.__setitem__(call_id, output))
            self._add(_Item(item_id, "tool", "output", output, call_id=call_id))
        elif kind == "function_call":
            self._add(
                _Item(
                    item_id,
                    "assistant",
                    "call",
                    str(item.get("arguments", "")),
                    call_id=str(item.get("call_id")),
                )
            )
        else:
            role = str(item.get("role", "user"))
            text = " ".join(
                str(part.get("text") or part.get("transcript") or "")
                for part in item.get("content", [])
                if isinstance(part, Mapping)
            ).strip()
            self._add(_Item(item_id, role, "text", text))
            if role == "user":
                self._last_user_text = text
        self.emit(ItemAdded(item_id, item, previous))

    def user_text(self, text: str) -> None:
        """A user's text turn that the model answers at once (Gemini's client content)."""
        item_id = self.new_id("item")
        self._add(_Item(item_id, "user", "text", text))
        self._last_user_text = text
        self.emit(UserTurn(item_id, text=text))

    def tool_output(self, call_id: str, output: str) -> bool:
        """A tool call's output (Gemini's tool response); whether the call was known."""
        if not any(each.call_id == call_id and each.kind == "call" for each in self.items.values()):
            self.error("invalid_argument", f"No function call has the id {call_id!r}.", fatal=True)
            return False
        self.record.note(lambda: self.record.tool_outputs.__setitem__(call_id, output))
        self._add(_Item(self.new_id("item"), "tool", "output", output, call_id=call_id))
        return True

    def truncate(self, item_id: str, ms: int, event_id: str | None = None) -> None:
        """Cut an assistant item's audio at ``ms`` (what the user heard)."""
        item = self.items.get(item_id)
        if item is None or item.role != "assistant" or item.kind != "audio":
            self.error(
                "invalid_value", f"Item '{item_id}' is not an assistant audio item.", event_id
            )
            return
        if ms > item.audio_ms or ms < 0:
            self.error(
                "invalid_value",
                f"Audio content of {item.audio_ms}ms is shorter than {ms}ms.",
                event_id,
            )
            return
        self.record.note(lambda: self.record.truncations.append((item_id, ms)))
        item.transcript = ""  # (the server keeps no text the user did not hear)
        item.audio_ms = ms
        self.emit(Truncated(item_id, ms))

    def start_reply(self, event_id: str | None = None, *, answering: str | None = None) -> None:
        """The model answers (the client asked, or the user's turn ended).

        Args:
            event_id: The client's event that asked (named in a refusal).
            answering: The words of the turn it answers, which a reply not scripted echoes
                (``None``: the user's last words).
        """
        if self._reply is not None:
            self.error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._reply.id}. "
                "Wait until the response is finished before creating a new one.",
                event_id,
            )
            return
        said = self._last_user_text if answering is None else answering
        script = self._take(False, 0) or SpokenReply(transcript=_echo(said))
        self.record.note(lambda: self.record.replies.append(script))
        if script.error is not None:
            self._fail_reply(script)
            return
        reply = _Reply(self.new_id("resp"), script, [], due=time.monotonic())
        reply.text_only = self.text_only
        self._reply = reply
        self._replies += 1
        self.emit(ReplyStart(reply.id))
        self._tell_late(0)
        item_id = self.new_id("item")
        pieces = script.transcript if script.transcript is not None else ()
        audio = script.audio
        count = max(len(pieces), len(audio) if audio is not None else 0)
        for index in range(count):
            text = pieces[index] if index < len(pieces) else ""
            chunk = (
                b""
                if reply.text_only
                else (
                    audio[index]
                    if audio is not None and index < len(audio)
                    else tone(script.ms_per_piece, 220 + 20 * (index % 10), self.output_rate)
                )
            )
            reply.steps.append(
                AudioOut(reply.id, item_id, chunk, text, index == 0, reply.text_only)
            )
        calls: list[AudioOut | CallOut] = []
        for number, call in enumerate(script.tool_calls, 1):
            call_id = call.id or self.new_id("call")
            last = number == len(script.tool_calls)
            calls.append(CallOut(reply.id, self.new_id("item"), call_id, call, last))
        reply.steps = [*calls, *reply.steps] if script.calls_first else [*reply.steps, *calls]

    def _fail_reply(self, script: SpokenReply) -> None:
        """A reply scripted as an error: it starts, fails, and the error closes the session.

        As the APIs say it: the reply's start and its end, ``failed`` with the error (OpenAI:
        ``response.created``, then ``response.done`` of status ``failed``), then the error
        (OpenAI's ``error`` event) and the close. A session's expiry (``session_expired``)
        is no reply's failure: it is the error alone. The turns waiting for their answers,
        and their transcriptions held back, are dropped with the session, none left to
        answer.
        """
        assert script.error is not None
        self._waiting.clear()
        self._late.clear()
        if script.error_code != "session_expired":
            reply_id = self.new_id("resp")
            self._replies += 1
            failed = ProtocolError(script.error_code, script.error, fatal=True)
            self.emit(ReplyStart(reply_id))
            self.emit(ReplyEnd(reply_id, "failed", {}, (), LiveUsage(), self.text_only, failed))
        self.error(script.error_code, script.error, fatal=True)

    def reply_after(self) -> None:
        """The model answers once its reply in progress ends (at once, if none is).

        Each turn ended during a reply waits for its own answer, in order: the first once
        the reply ends, the next once that answer ends, and so on.
        """
        if self._reply is None:
            self.start_reply()
        else:
            self._waiting.append(self._last_user_text)

    def cancel_reply(self, event_id: str | None = None) -> None:
        """The client cancels the reply in progress."""
        if self._reply is None:
            self.error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
                event_id,
            )
            return
        self._end_reply("cancelled")

    # -- time ------------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When the reply in progress sends its next step (``None``: it waits, or none is)."""
        reply = self._reply
        if reply is None:
            return None
        script = reply.script
        paused = script.pause_after is not None and reply.pieces_sent >= script.pause_after
        if paused and not self.record._resumed.is_set():
            return None
        return reply.due

    def step(self, now: float) -> None:
        """Send what is due of the reply in progress."""
        while (due := self.next_due()) is not None and due <= now:
            reply = self._reply
            assert reply is not None
            if reply.sent == len(reply.steps):
                self._end_reply("completed")
                return
            script = reply.script
            if script.drop_after is not None and reply.pieces_sent >= script.drop_after:
                self.dropped = True
                return
            if script.close_after is not None and reply.pieces_sent >= script.close_after:
                self.ended = True
                return
            step = reply.steps[reply.sent]
            reply.sent += 1
            if isinstance(step, AudioOut):
                reply.pieces_sent += 1
                reply.transcripts[step.item_id] = (
                    reply.transcripts.get(step.item_id, "") + step.transcript
                )
                ms = len(step.audio) * 1000 // (2 * self.output_rate)
                reply.output_ms += ms
                item = self.items.get(step.item_id)
                if item is None:
                    item = _Item(step.item_id, "assistant", "text" if step.text_only else "audio")
                    self._add(item)
                item.transcript += step.transcript
                item.audio_ms += ms
                reply.due += ms * script.pace / 1000
            else:
                reply.calls.append(step)
                self._add(
                    _Item(step.item_id, "assistant", "call", step.call.text, call_id=step.call_id)
                )
            self.emit(step)
            self._tell_late(reply.pieces_sent)

    def _tell_late(self, pieces: int) -> None:
        """Tell the transcriptions held back (``heard_after``) that are due, in order.

        Each is due once its answer has sent so many pieces (``pieces``: the reply under
        way's), or at once if its answer came before that reply.
        """
        while self._late:
            late, after, answer = self._late[0]
            if answer > self._replies or (answer == self._replies and pieces < after):
                return
            self._late.popleft()
            self.emit(late)

    def _end_reply(self, status: _LiveStatus) -> None:
        reply = self._reply
        if reply is None:
            return
        self._tell_late(sys.maxsize)  # (those held past the reply's pieces: before its end)
        self._reply = None
        script = reply.script
        usage = script.usage or LiveUsage(
            input_text=sum(
                len(item.transcript.split())
                for item in self.items.values()
                if item.role != "assistant"
            ),
            input_audio=self._audio_ms // 100,
            output_text=sum(len(text.split()) for text in reply.transcripts.values()),
            output_audio=reply.output_ms // 100,
        )
        self.emit(
            ReplyEnd(
                reply.id,
                status,
                dict(reply.transcripts),
                tuple(reply.calls),
                usage,
                reply.text_only,
            )
        )
        if self._waiting:
            self.start_reply(answering=self._waiting.popleft())

    @property
    def waiting(self) -> int:
        """How many of the user's turns wait for their answers (until the reply's end)."""
        return len(self._waiting)

    @property
    def speaking(self) -> bool:
        """Whether the user is speaking (the fake's voice detection heard speech, not its end)."""
        return self._speaking

    def _peek(self, ahead: int) -> SpokenReply | None:
        return self._take(True, ahead)

    def _add(self, item: _Item) -> None:
        self.items[item.id] = item
        self._order.append(item.id)


def _echo(said: str) -> tuple[str, ...]:
    words = f"You said: {said}".split(" ")
    return (*(word + " " for word in words[:-1]), words[-1])


def _peak(audio: bytes) -> int:
    """The loudest sample of 16-bit little-endian PCM."""
    samples = array.array("h")
    samples.frombytes(audio[: len(audio) - len(audio) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return 0
    return max(max(samples), -min(samples))


def taking(*replies: SpokenReply) -> TakeReply:
    """The ``take`` of a :class:`LiveSession` made by hand: ``replies`` in order, then none."""
    script = deque(replies)

    def take(peek: bool, ahead: int) -> SpokenReply | None:
        if peek:
            return script[ahead] if ahead < len(script) else None
        return script.popleft() if script else None

    return take


def tone(ms: int, frequency: float, rate: int) -> bytes:
    """``ms`` of a sine tone, 16-bit PCM mono at ``rate`` (the fake model's voice)."""
    count = rate * ms // 1000
    samples = array.array(
        "h", (int(8000 * math.sin(2 * math.pi * frequency * n / rate)) for n in range(count))
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def loads(message: str | bytes) -> dict[str, Any] | None:
    """A client message as JSON (``None``: not a JSON object)."""
    try:
        parsed = json.loads(message)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


# -- serving one session ------------------------------------------------------------------


class Socket(Protocol):
    """What a session is served over (``_websocket.WebSocket``)."""

    closed: bool

    def receive(self, timeout: float, stopping: threading.Event) -> str | bytes | None: ...

    def send_text(self, text: str) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...

    def cut(self, *, reset: bool = False) -> None: ...


POLL = 0.05
"""Seconds between two looks at a session that waits for nothing but its client (a message
of the client wakes it at once: this is how soon it sees the server stop, or a resume)."""


def serve(socket: Socket, session: LiveSession, stopping: threading.Event) -> None:
    """Hold ``session`` over ``socket`` until either side ends it (see the module).

    Raises:
        ClientGone: when the client closed the connection (or it broke).
        Stopping: when the server stops.
    """
    record = session.record
    _send(socket, record, session.wire.opened(session))
    while True:
        if session.failed is not None:  # (what the API says of it is sent, then the close)
            _send(socket, record, session.take_outbox(), "failed")
            socket.close(session.wire.close_code(session.failed), session.failed.message[:120])
            return
        if session.dropped:  # (what came before the drop goes, then the connection breaks)
            _send(socket, record, session.take_outbox())
            record.note(lambda: setattr(record, "outcome", "dropped"))
            socket.cut()
            return
        if session.ended:
            _send(socket, record, session.take_outbox(), "ended")
            socket.close(1000, "The session has ended.")
            return
        _send(socket, record, session.take_outbox())  # (the last step's: it did not end it)
        due = session.next_due()
        timeout = POLL if due is None else max(0.0, min(POLL, due - time.monotonic()))
        message = socket.receive(timeout, stopping)
        if message is not None:
            parsed = loads(message) if isinstance(message, str) else None
            if parsed is None:
                session.error("invalid_request_error", "The message is not a JSON object.")
            else:
                record.note(functools.partial(record.received.append, shown(parsed)))
                session.wire.receive(session, parsed)
        session.step(time.monotonic())


def _send(
    socket: Socket, record: LiveRecord, events: list[dict[str, Any]], outcome: str | None = None
) -> None:
    """Send ``events`` (the last of the session when its ``outcome`` is given).

    The record notes them (and the outcome) before they go: what the client has seen of
    the session, a test that it wakes finds recorded (was: noted after, a race the test
    could win).
    """

    def note() -> None:
        record.sent.extend(shown(event) for event in events)
        if outcome is not None:
            record.outcome = outcome

    record.note(note)
    for event in events:
        socket.send_text(json.dumps(event, separators=(",", ":")))
