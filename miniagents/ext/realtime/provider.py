"""The realtime provider interface: what a session asks of an API, and what the API tells it.

A realtime provider (OpenAI Realtime, Gemini Live, or yours) is two small things:

- an **options class**, a keyword-only frozen dataclass extending :class:`RealtimeOptions`
  with the provider's own arguments (its client, its voice settings); its fields become the
  agent's exact, typed parameters;
- a **provider object** (:class:`RealtimeProvider`): its audio formats, whose prices it
  pays (``price_provider``), and ``aconnect``, which opens a session described by a
  :class:`SessionSetup` and returns its :class:`RealtimeLink`.

A link speaks the provider's wire in neutral terms, both ways: the session's commands
(``asend_audio``, ``asend_text``, ``asend_tool_output``, ``arespond``, ``atruncate``, ...)
and the API's events (:data:`RealtimeEvent`)::

    session -> link:  asend_audio(chunk) ... arespond() ... asend_tool_output(c1, "21 °C")
    link -> session:  SpeechStarted | SpeechStopped | UserTranscribed("Weather?")
                      | ReplyStarted | AudioOut | TextOut("It ") | ToolCalled(c1, ...)
                      | ToolCancelled(c1)
                      | ReplyEnded("completed", usage) | AudioCut(item, 1200) | ...

:func:`~miniagents.ext.realtime.agent.make_realtime_agent` makes the agent of the two and
does everything else: reading the input, the reply's pieces, tools and handoffs,
interruptions, usage and budgets, tracing, and the call cache's record and replay (a
recording is these events, so it replays with no provider at all).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal, Protocol, TypeAlias, TypeVar

from miniagents.ext.llm.errors import LLMAuthenticationError, LLMConfigurationError, LLMError
from miniagents.ext.llm.usage import Budget
from miniagents.ext.realtime.errors import RealtimeConnectionError, RealtimeServerError
from miniagents.ext.realtime.pieces import AudioFormat, RealtimeUsage
from miniagents.ext.tools.tool import Tool
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.messages.image import ImagePart
from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent
from miniagents.promising.lowlevel import spawn
from miniagents.reexports import resolve_own_annotations

__all__ = [
    "AudioCut",
    "AudioOut",
    "InputEnd",
    "Interrupted",
    "RealtimeEvent",
    "RealtimeLink",
    "RealtimeOptions",
    "RealtimeProvider",
    "ReplyEnded",
    "ReplyStarted",
    "ServerFailed",
    "SessionSetup",
    "SpeechStarted",
    "SpeechStopped",
    "TextOut",
    "ToolCalled",
    "ToolCancelled",
    "UserTranscribed",
    "session_option",
    "session_options",
]

OptionsT = TypeVar("OptionsT", bound="RealtimeOptions", contravariant=True)
T = TypeVar("T")

_SESSION_OPTION = "miniagents.realtime.session_option"
"""The metadata key that marks a field of an options class as a setting the API is sent."""

_NONE_MEANS = "miniagents.realtime.none_means"
"""The metadata key of the value that ``None`` stands for in a session option, if any."""

InputEnd: TypeAlias = Literal["no_turn", "replies", "ask"]
"""What ending the input did (see :meth:`RealtimeLink.aend_input`)."""


# -- what the API tells the session -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The API heard the user start speaking (server VAD); ``item_id``: the user's item."""

    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The API heard the user stop speaking; a reply follows (unless told otherwise)."""

    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserTranscribed:
    """The user's speech of item ``item_id``, transcribed."""

    item_id: str | None
    text: str


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    """The model started a reply (``response_id``: the API's, if it names replies)."""

    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class AudioOut:
    """A piece of the model's audio, of its item ``item_id``."""

    item_id: str | None
    audio: bytes


@dataclass(frozen=True, slots=True)
class TextOut:
    """A piece of the model's words: the transcript of its audio, or its text."""

    item_id: str | None
    text: str


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """The model calls a tool (its arguments complete, as JSON text).

    A call always comes inside a reply: after its :class:`ReplyStarted`, before its
    :class:`ReplyEnded` (the session refuses one outside any reply: the link's defect).
    """

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCancelled:
    """The API withdrew the model's call ``call_id`` (its reply was cut short).

    The call is not to run on, and its output is not to be sent (Gemini's
    ``toolCallCancellation``; OpenAI: the calls of a reply that ended ``cancelled``).
    """

    call_id: str


@dataclass(frozen=True, slots=True)
class ReplyEnded:
    """The model's reply ended: ``completed``, ``cancelled``, ``incomplete`` or ``failed``.

    ``model`` is the model that answered, as the API named it (``None``: the API did not
    say): never the model asked for.
    """

    response_id: str | None
    status: str
    usage: RealtimeUsage | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The API cut the model's reply because the user spoke (Gemini's ``interrupted``)."""


@dataclass(frozen=True, slots=True)
class AudioCut:
    """The API cut the model's item ``item_id`` at ``played_ms`` (a truncation, confirmed)."""

    item_id: str
    played_ms: int


@dataclass(frozen=True, slots=True)
class ServerFailed:
    """The API reported an error; ``fatal``: the session cannot go on.

    One that is not fatal is logged by the session at WARNING (the API's message and
    code: a warning a user should see, such as Gemini's ``go_away``), unless ``expected``:
    a race the session expects (OpenAI's ``response_cancel_not_active``), logged at DEBUG.
    """

    message: str
    code: str = ""
    fatal: bool = True
    expected: bool = False


RealtimeEvent: TypeAlias = (
    SpeechStarted
    | SpeechStopped
    | UserTranscribed
    | ReplyStarted
    | AudioOut
    | TextOut
    | ToolCalled
    | ToolCancelled
    | ReplyEnded
    | Interrupted
    | AudioCut
    | ServerFailed
)
"""What a link tells its session (see the module)."""


class _ToolTurns:
    """When an API that answers tools' outputs by itself answers them (Gemini).

    It answers the calls of one of its replies (one ``toolCall``) in one reply, once each
    has its output; a reply with a call withdrawn was cut short (the user's turn that cut
    it is answered next), so its calls' outputs are answered by none of their own; an
    output of a call of no reply waiting for outputs (a caller's result for a call answered
    already) is answered on its own. The session counts the replies it owes so, and the
    Gemini link which of the model's turns answers what it sent; the record of a call's id
    lasts until its output is sent (or it is withdrawn), so the session refuses a call under
    the id of one whose output is still to come (its tool running, or its output being sent).
    """

    def __init__(self) -> None:
        self._reply_of: dict[str, Hashable] = {}  # each call whose output is to come: its reply
        self._open: dict[Hashable, int] = {}  # each reply of such calls: how many are
        self._cut: set[Hashable] = set()  # those replies with a call withdrawn

    def called(self, call_id: str, reply: Hashable) -> bool:
        """The model's reply ``reply`` called ``call_id``: its output is to come.

        Returns:
            ``False`` (nothing recorded) for a call under the id of one whose output is
            still to come: that call is not to run, the first one's output answers the id.
        """
        if call_id in self._reply_of:
            return False
        self._reply_of[call_id] = reply
        self._open[reply] = self._open.get(reply, 0) + 1
        return True

    def answered(self, call_id: str) -> bool:
        """The output of ``call_id`` is sent: whether a reply of the API answers it now.

        (That reply answers the outputs of the calls of ``call_id``'s reply sent before too.)
        """
        if call_id not in self._reply_of:
            return True  # (a call of no reply waiting for outputs: answered on its own)
        return self._settled(self._reply_of.pop(call_id))

    def withdrawn(self, call_id: str) -> None:
        """The output of ``call_id`` is never sent: no reply answers its reply's calls.

        (The API withdrew the call, or its run was cut short.)
        """
        if call_id in self._reply_of:
            reply = self._reply_of.pop(call_id)
            self._cut.add(reply)
            self._settled(reply)

    def _settled(self, reply: Hashable) -> bool:
        """One call of ``reply`` settled: whether it was the last, and none was withdrawn."""
        self._open[reply] -= 1
        if self._open[reply]:
            return False
        del self._open[reply]
        if reply in self._cut:
            self._cut.discard(reply)
            return False
        return True


# -- what the session asks ----------------------------------------------------------------------


class RealtimeLink(Protocol):
    """One open session with a realtime API, in neutral terms (see the module).

    The session calls the commands from its own tasks, one at a time each, and reads
    :meth:`events` in one task; a link that speaks over one WebSocket needs no lock. It may
    stop reading the events at any point (it was cancelled: the voice page left), and then
    closes the link (:meth:`aclose`) with the API's messages unread: the close must not wait
    for a reader of the events (see there). An async generator of events left mid-way is
    closed (``aclose``) by the session as it ends, in its own task.

    Attributes:
        reports_speech: Whether the API tells when the user starts and stops speaking
            (OpenAI's VAD events); without, the session cannot tell a turn under way, and
            the link ends and answers the user's last turn itself (``aend_input``).
        replies_to_tool_outputs: Whether the API goes on by itself after a tool's output
            (Gemini: one reply answers the calls of one of its replies, once each has its
            output, and none if it withdrew one; an output of a call of no reply waiting
            for outputs is answered on its own); else the session asks for a reply
            (``arespond``: OpenAI answers each ``response.create``).
        replayed: Whether the events are a call cache's recording given back, not the API's
            (no request is made: the replies cost nothing, and traces say they were
            cached); ``False`` for a provider's own link.
    """

    reports_speech: bool
    replies_to_tool_outputs: bool
    replayed: bool

    async def asend_audio(self, audio: bytes) -> None:
        """Stream a chunk of the user's audio (in the provider's ``input_format``)."""
        ...

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        """A user's turn of text (and images), which the model answers."""
        ...

    async def asend_images(self, images: Sequence[ImagePart]) -> None:
        """Images for the model to see, without a turn of their own (a camera's frames)."""
        ...

    async def asend_item(self, role: str, text: str) -> None:
        """A message carried into the conversation (``assistant``, ``system``), not answered."""
        ...

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        """The output of the model's call ``call_id`` of the tool ``name``."""
        ...

    async def arespond(self) -> None:
        """Ask the model to reply now (after a tool's output, or text carried in)."""
        ...

    async def atruncate(self, item_id: str, played_ms: int) -> None:
        """Tell the API the user heard only ``played_ms`` of the model's item ``item_id``."""
        ...

    async def aend_input(self) -> InputEnd:
        """No more audio comes (the microphone is off): end the user's turn under way, if any.

        It returns once the API's events about the audio sent before have come (OpenAI: a
        ``session.update`` answered; a replay: its recording's events up to there), so
        that the session knows, when it decides to close, whether a turn is pending.

        Returns:
            ``"no_turn"`` (nothing was under way), ``"replies"`` (a turn was, and the API
            answers it by itself) or ``"ask"`` (a turn was, and the session asks for the
            reply).
        """
        ...

    def events(self) -> AsyncIterator[RealtimeEvent]:
        """The API's events, until the session is closed (an error ends it)."""
        ...

    async def aclose(self) -> None:
        """Close the session (doing it again does nothing).

        It must close whether or not a task reads :meth:`events` meanwhile: the session
        stops reading them before it closes when it is cancelled. A connection that stops
        reading its socket once enough of the API's messages wait unread (the
        ``websockets`` library's flow control) would leave the API's answer to the close
        behind them, and the close waiting for its timeout (10 s): such a link reads and
        drops the API's messages until the connection has closed (as the OpenAI and
        Gemini links do).
        """
        ...


@dataclass(frozen=True)
class SessionSetup:
    """What a session is opened with, in neutral terms (also its key in a call cache).

    Attributes:
        model: The model.
        instructions: The system instructions, if any.
        tools: The tools the model may call (their name, description and JSON schema).
        voice: The voice the model speaks with (``None``: the API's default).
        modality: ``"audio"`` (the model speaks, with a transcript) or ``"text"``.
        transcribe_input: Whether the API transcribes the user's speech.
        vad: Whether the API detects the user's turns in the audio (server VAD); without,
            the input's end ends the turn.
        silence_ms: How long a pause ends the user's turn (``None``: the API's default).
        interrupt: Whether the user's speech cuts the model's reply short.
        options: Anything else the provider sends as it is (its ``extra_session``).
        provider_options: The provider's own settings that the API is sent (the fields of
            its options class declared with :func:`session_option`, those given), by name:
            OpenAI's ``transcription_model``.
    """

    model: str
    instructions: str | None = None
    tools: tuple[Tool, ...] = ()
    voice: str | None = None
    modality: Literal["audio", "text"] = "audio"
    transcribe_input: bool = True
    vad: bool = True
    silence_ms: int | None = None
    interrupt: bool = True
    options: Mapping[str, object] = field(default_factory=dict)
    provider_options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedSession:
    """A realtime session as the LLM call observers are given it: its provider, its key.

    Each reply of a session is shown to the observers of model calls (tracing, the studio's
    recorder) as a call of its model, with this as its provider: the realtime provider
    (``wrapped``, which ``innermost_provider`` gives), and the request and key that name the
    session's recording in a call cache (the key in the active cache's namespace), so that
    a recorder keys each reply by the recording it belongs to, not as a call of a model.

    Attributes:
        wrapped: The realtime provider.
        request: The session's request as a call cache names it (JSON values).
        key: Its key in the active call cache (with no cache: in a cache of namespace
            ``""``); ``None``: a call cache cannot key it (see ``unkeyed``).
        unkeyed: Why a call cache cannot key it, if it cannot.
    """

    wrapped: object
    request: Mapping[str, object]
    key: str | None
    unkeyed: str | None = None


class RealtimeProvider(Protocol[OptionsT]):
    """What a realtime provider implements (see :mod:`miniagents.ext.realtime.openai`).

    Attributes:
        provider_name: Its name in traces and recordings (``"openai"``, ``"gcp.gemini"``).
        price_provider: genai-prices' id of whose prices it pays (``None``: found from
            the model's name).
        input_format: The audio it takes.
        output_format: The audio it gives.
        default_model: The model used when none is given (``None``: one must be).

    A provider may also say, with a class attribute ``interrupts_without_vad = False``, that
    ``interrupt`` does nothing with ``vad=False`` (OpenAI: without its voice detection, the
    user's audio cuts no reply short), so that a session's key in a call cache leaves it
    out there; without the attribute, ``interrupt`` is keyed whatever ``vad`` is (Gemini:
    the start of the user's audio cuts the model short, unless ``interrupt=False``).
    """

    provider_name: str
    price_provider: str | None
    input_format: AudioFormat
    output_format: AudioFormat
    default_model: str | None

    async def aconnect(self, setup: SessionSetup, options: OptionsT) -> RealtimeLink:
        """Open a session.

        Raises:
            LLMError: the provider's errors, translated (no SDK, a refused key, no
                connection: ``RealtimeConnectionError``).
        """
        ...


def _open_error(
    error: BaseException, status: object, api: str, session: str, key: str, *, trust: str = ""
) -> LLMError:
    """A provider's error for a session not opened (``status``: the refusal's HTTP one).

    ``trust`` says how the provider's client is given a TLS context that trusts a server,
    for a certificate the client refused.
    """
    if isinstance(error, ssl.SSLCertVerificationError):
        return LLMConfigurationError(
            f"{session} could not be opened: the client did not trust the server's TLS "
            f"certificate ({error}). Give the client an SSL context that trusts it{trust}; "
            "for the testing kit's FakeLLMServer, that context is server.tls_context."
        )
    if status in (401, 403):
        return LLMAuthenticationError(
            f"{api} refused the API key (HTTP {status}): check {key}, or the api_key of the "
            "client given as async_client."
        )
    said = str(error).strip().rstrip(".")
    if isinstance(error, ValueError):
        return LLMConfigurationError(
            f'{session} could not be opened: its client refused the setup ("{said}"). Check '
            "the agent's session settings (its extra_session) against what the API takes."
        )
    return RealtimeConnectionError(
        f'{api} could not be reached ({type(error).__name__}: "{said}"). Check the network '
        "and the client's base URL, then start the session again."
    )


def _closed_error(error: BaseException) -> bool:
    """Whether ``error`` is the WebSocket library's: the connection was found closed."""
    return any(cls.__name__ == "ConnectionClosed" for cls in type(error).__mro__)


def _send_closed_error(api: str, error: BaseException) -> RealtimeConnectionError:
    """A provider's error for a send that found the connection to ``api`` closed.

    Made of what ``error`` (the WebSocket library's ``ConnectionClosed``) knows: who closed
    the connection, its close code and reason (the reason quoted, its own trailing period
    left out), or that it dropped with no close frame; never of the library's own text,
    whose punctuation ends in the middle of a sentence.
    """
    frame = getattr(error, "rcvd", None)
    closer = "the API"
    if frame is None:
        frame = getattr(error, "sent", None)
        closer = "this side"
    code = getattr(frame, "code", None)
    if isinstance(code, int):
        reason = str(getattr(frame, "reason", "") or "").strip().rstrip(".")
        said = f', reason "{reason}"' if reason else ""
        how = f"was closed by {closer} (close code {code}{said})"
    elif hasattr(error, "rcvd"):  # (the library's, with no close frame either way)
        how = "dropped (no close frame)"
    else:
        text = str(error).strip().rstrip(".")
        how = f'was found closed ("{text}")' if text else "was found closed"
    return RealtimeConnectionError(
        f"The connection to {api} {how} as the session sent to it; the session ended. Start "
        "a new session to go on."
    )


def _ended_error(api: str, code: int | None, reason: str, *, ends_one: str = "") -> LLMError:
    """A provider's error for a session ``api`` closed mid-way (``code`` ``None``: it dropped)."""
    if code is None:
        return RealtimeConnectionError(
            f"The connection to {api} dropped (no close frame); the session ended. The "
            "pieces before this error are all that came."
        )
    said = api[:1].upper() + api[1:]
    if code in (1000, 1001):
        return RealtimeServerError(
            f"{said} ended the session itself, mid-conversation (close code {code}: "
            f"{reason}); the pieces before this error are all that came. Start a new "
            f"session to go on (the API ends one at its time limit{ends_one}, among other "
            "reasons).",
            str(code),
        )
    return RealtimeServerError(
        f"{said} closed the session with code {code}: {reason.rstrip('.')}.", str(code)
    )


async def _close_reading_out(
    close: Callable[[], Awaitable[object]], receive: Callable[[], Awaitable[object]], what: str
) -> None:
    """Close a connection (``close()``), reading and dropping its messages until it has closed.

    The connection stops reading from its socket once enough of the API's messages wait
    unread (its flow control), as they do when the session stopped reading them (it was
    cancelled: the page left); the API's answer to the close would wait unread behind them,
    and the close for its timeout (10 s). Read on, it comes: a task (named by ``what``)
    calls ``receive()`` again and again, until it fails (the connection closed, or another
    reads it), and is cancelled once the close is done.
    """
    reading = spawn(_read_out(receive), what)
    try:
        await close()
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)


async def _read_out(receive: Callable[[], Awaitable[object]]) -> None:
    """``receive()`` again and again, what it reads dropped, until it fails."""
    with contextlib.suppress(Exception):  # (closed, or read by another: the end)
        while True:
            await receive()


def session_option(default: T, *, none_means: object = None) -> T:
    """Declare a field of a realtime options class as a setting the API is sent.

    Such a field changes what the API answers (OpenAI's ``transcription_model``), so the
    session's setup holds it when it is given (``SessionSetup.provider_options``), and so
    does the session's key in a call cache: a recording is replayed only for the same
    setting. The other fields of a provider's options only say how to connect
    (``async_client``, ``websocket_options``) and key nothing.

    Args:
        default: The field's default.
        none_means: The value the provider sends when the field is ``None`` (OpenAI's
            ``transcription_model``: ``"gpt-4o-mini-transcribe"``), if any: given so, the
            setting is the same session as ``None``, and is left out of the setup as
            ``None`` is (one key in a call cache for the same session).

    Example:
        >>> @dataclass(frozen=True, kw_only=True)
        ... class MyRealtimeOptions(RealtimeOptions):
        ...     noise_reduction: str | None = session_option(None, none_means="near_field")
    """
    return field(default=default, metadata={_SESSION_OPTION: True, _NONE_MEANS: none_means})


def session_options(options: RealtimeOptions) -> dict[str, object]:
    """The settings of ``options`` declared with :func:`session_option`, those given.

    Those ``None``, or the value that ``None`` stands for (its ``none_means``), are left out:
    each is the session the provider opens without the setting.
    """
    return {
        each.name: value
        for each in fields(options)
        if each.metadata.get(_SESSION_OPTION)
        and (value := getattr(options, each.name)) is not None
        and value != each.metadata.get(_NONE_MEANS)
    }


@dataclass(frozen=True, kw_only=True)
class RealtimeOptions:
    """The arguments every realtime agent takes; a provider's options class adds its own.

    Attributes:
        model: The realtime model, e.g. "gpt-realtime" (default: the provider's).
        instructions: The system instructions.
        voice: The voice the model speaks with (``None``: the API's default).
        modality: ``"audio"`` (the default: the model speaks, and its transcript streams
            as text) or ``"text"`` (the model writes: a realtime text agent).
        tools: What the model may call: agents, typed functions and ``Tool`` objects, as
            for the LLM agents. Each call runs in the background while the session goes
            on (the user and the model keep talking); its result streams into the reply
            (a sub-agent's tokens live) and, once complete, goes back to the model, which
            answers it as soon as it is not speaking.
        handoffs: Text agents the model may hand the conversation to: each is a tool
            ``transfer_to_<alias>``; the agent gets the whole conversation so far as its
            input, its answer streams into the reply, and goes back into the realtime
            conversation, which the model then speaks on from.
        transcribe_input: Whether the user's speech is transcribed (a ``Transcript`` of
            ``role="user"`` per turn).
        vad: Whether the API detects the user's turns (server VAD, the default); without,
            each turn ends where the input ends.
        silence_ms: How long a pause ends the user's turn (``None``: the API's default).
        interrupt: Whether the user's speech cuts the model's reply short (the default).
        budget: A ``Budget`` charged for every reply of the model and everything the
            session causes (its tools, their agents); once a limit is crossed the session
            stops with a ``BudgetExceededError`` (after the reply that crossed it: a reply's
            audio is counted when the API reports it, at the reply's end).
        drain_timeout: Seconds to wait, once the input has ended, for the model to answer
            what is pending (the last turn, the tools running) before the session closes.
        extra_session: Anything else of the API's session configuration, by its names,
            sent as it is (OpenAI: merged into ``session.update``'s ``session``; Gemini:
            into the connection's ``config``).
    """

    model: str | None = None
    instructions: str | None = None
    voice: str | None = None
    modality: Literal["audio", "text"] = "audio"
    tools: Sequence[ToolLike] | None = None
    handoffs: Sequence[MiniAgent[..., Message]] | None = None
    transcribe_input: bool = True
    vad: bool = True
    silence_ms: int | None = None
    interrupt: bool = True
    budget: Budget | None = None
    drain_timeout: float = 10.0
    extra_session: Mapping[str, object] | None = None


# A provider's options class, in its own module, makes an __init__ that reads these fields'
# types there (which does not import what they name): give it the types themselves.
resolve_own_annotations(RealtimeOptions)
