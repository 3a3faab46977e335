"""The OpenAI Realtime API as a realtime agent: ``openai_realtime_agent``.

The session goes over the OpenAI SDK's realtime client (``client.realtime.connect``), a
WebSocket: the agent configures it with ``session.update`` (instructions, tools, voice,
16-bit PCM at 24 kHz both ways, the input's transcription, server VAD), streams the input
as ``input_audio_buffer.append`` and conversation items, and reads the server's events
(``response.output_audio.delta``, ``response.output_audio_transcript.delta``,
``response.function_call_arguments.done``, ``response.done`` with the usage, the VAD's
``speech_started``, ...). An interruption is told back with ``conversation.item.truncate``
(the audio and transcript the user did not hear leave the model's context), which the API
confirms with ``conversation.item.truncated``. The tool calls of a reply that ends
``cancelled`` (the user cut it short) are withdrawn: they stop, and no output is sent.

Each client event carries an ``event_id`` of the link's, which an ``error`` that refuses
that event names: the API keeps the session open after refusing one event (an audio chunk,
an item, a truncation, a later ``session.update``), and so does the session, logging the
error as a warning. The refusal of an event the session waits on (its setup, a reply it
asked for, the turn it committed) ends it, as does an error that names no client event of
the link's (``session_expired``, a server's error), but ``cannot_update_voice``: the
refusal of a ``session.update`` that sets a voice once the model has spoken in the session
(the API keeps the voice of its first reply), which names no event; its warning says to
set the voice before the first reply.

The client comes from ``async_client=`` or, once per ``MiniAgents`` context, from the
environment (``OPENAI_API_KEY``; ``OPENAI_BASE_URL``, whose ``http`` scheme becomes ``ws``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from miniagents.arguments import check_text, refused_argument
from miniagents.ext.llm.errors import LLMConfigurationError, LLMError, LLMRequestError
from miniagents.ext.llm.pricing import reported_count
from miniagents.ext.llm.sdk_calls import check_client
from miniagents.ext.realtime.agent import make_realtime_agent
from miniagents.ext.realtime.pieces import PCM24K, RealtimeUsage
from miniagents.ext.realtime.provider import (
    AudioCut,
    AudioOut,
    InputEnd,
    RealtimeEvent,
    RealtimeOptions,
    ReplyEnded,
    ReplyStarted,
    ServerFailed,
    SessionSetup,
    SpeechStarted,
    SpeechStopped,
    TextOut,
    ToolCalled,
    ToolCancelled,
    UserTranscribed,
    _close_reading_out,
    _closed_error,
    _ended_error,
    _open_error,
    _send_closed_error,
    session_option,
)
from miniagents.messages.image import ImagePart
from miniagents.utils.nested import merged

if TYPE_CHECKING:
    import openai as openai_sdk

__all__ = [
    "OpenAIRealtimeOptions",
    "OpenAIRealtimeProvider",
    "create_openai_realtime_agent",
    "openai_realtime_agent",
]

_BENIGN = frozenset(
    {
        "response_cancel_not_active",  # a reply ended as the session cancelled it
        "input_audio_buffer_commit_empty",  # the input ended right after a turn
    }
)
"""Error codes of races the session expects: said at DEBUG, never fatal."""

_GOES_ON = frozenset(
    {
        "input_audio_buffer.append",
        "conversation.item.create",
        "conversation.item.truncate",
        "response.cancel",
        "session.update",  # (but the setup's)
    }
)
"""Client events whose refusal the session goes on after (it waits for nothing of theirs)."""

_VOICE_FIX = (
    " The voice is set before the model's first reply, for the whole session: give it as "
    "the agent's voice=... (sent as the session starts), or start a new session to speak "
    "with another."
)
"""What the warning of a ``cannot_update_voice`` says to do (after the API's message)."""

_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
"""The model that transcribes the user's speech when ``transcription_model`` names none."""

_SYNC_TIMEOUT = 10.0
"""Seconds (of the event loop's clock) the end of the input waits for the API to have taken
the audio sent (its answer to a ``session.update``); past them, a WARNING."""

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class OpenAIRealtimeOptions(RealtimeOptions):
    """The arguments of ``openai_realtime_agent``: every realtime agent's, and OpenAI's own.

    Attributes:
        async_client: An ``openai.AsyncOpenAI`` client to use instead of the default one.
        transcription_model: The model that transcribes the user's speech (``None``:
            ``"gpt-4o-mini-transcribe"``); only with ``transcribe_input`` (the default),
            refused with ``transcribe_input=False``, which transcribes nothing.
        websocket_options: Options of the WebSocket connection, as the SDK's
            ``realtime.connect(websocket_connection_options=...)`` takes them (e.g.
            ``{"open_timeout": 30}``: the seconds its opening handshake may take).
    """

    async_client: openai_sdk.AsyncOpenAI | None = None
    transcription_model: str | None = session_option(None, none_means=_TRANSCRIPTION_MODEL)
    websocket_options: Mapping[str, object] | None = None

    def check(self, alias: str) -> None:
        """Refuse OpenAI's own arguments of the wrong kind, before connecting.

        Raises:
            LLMConfigurationError: for an ``async_client`` that is not the SDK's async
                client, a ``transcription_model`` that is not a non-empty str (or is
                given with ``transcribe_input=False``), ``websocket_options`` that are not
                a mapping by str names, or an ``extra_session`` that ``session.update``
                cannot send as JSON (a name that is not a str, a value that is no JSON
                value); naming the argument.
        """
        check_client(self.async_client, ("openai.AsyncOpenAI",), "OpenAI", alias)
        owner = f"The agent {alias}"
        if self.transcription_model is not None:
            check_text(
                self.transcription_model,
                "transcription_model",
                owner=owner,
                fix='E.g. transcription_model="gpt-4o-mini-transcribe".',
                error=LLMConfigurationError,
            )
            if not self.transcribe_input:
                raise _transcription_ignored(self.transcription_model, owner)
        options: object = self.websocket_options
        if options is not None and (
            not isinstance(options, Mapping) or not all(isinstance(key, str) for key in options)
        ):
            raise refused_argument(
                options,
                "websocket_options",
                "a mapping of the WebSocket connection's options by their names (str), or None",
                owner=owner,
                fix='E.g. websocket_options={"open_timeout": 30}.',
                error=LLMConfigurationError,
            )
        _check_extra_session(self.extra_session, owner)


def _transcription_ignored(model: object, owner: str) -> LLMConfigurationError:
    """The error of a ``transcription_model`` given with ``transcribe_input=False``."""
    error = LLMConfigurationError(
        f"{owner} got transcription_model={model!r} with transcribe_input=False: the "
        "transcription model transcribes the user's speech, which transcribe_input=False "
        "turns off, so it would be ignored. Drop transcription_model, or keep "
        "transcribe_input=True."
    )
    error.parameter = "transcription_model"
    return error


def _check_extra_session(extra: object, owner: str) -> None:
    """Refuse an ``extra_session`` mapping that ``session.update`` cannot send as JSON.

    Checked as the options are made, not as the session is configured, where a value of
    another kind was the ``TypeError`` of ``json.dumps`` (the other kinds of
    ``extra_session``, not a mapping, are refused for every realtime API).

    Raises:
        LLMConfigurationError: naming the setting and the fix.
    """
    if not isinstance(extra, Mapping):
        return
    for name, value in extra.items():
        if not isinstance(name, str):
            why = f"Its setting {name!r} is not named by a str"
        else:
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as error:
                why = f"Its setting {name!r} cannot be sent as JSON ({error})"
            else:
                continue
        raise refused_argument(
            extra,
            "extra_session",
            "a mapping of the API's session settings by their names (str), with JSON values",
            owner=owner,
            fix=f"{why}: give each setting as the API's JSON (text, finite numbers, "
            "booleans, None, lists, and dicts by str keys), e.g. "
            'extra_session={"max_output_tokens": 512}.',
            error=LLMConfigurationError,
        )


class OpenAIRealtimeProvider:
    """The OpenAI Realtime API (see the module)."""

    provider_name = "openai"
    price_provider: str | None = "openai"
    interrupts_without_vad = False  # (no turn detection: the API cuts no reply short)
    input_format = PCM24K
    output_format = PCM24K
    default_model: str | None = "gpt-realtime"

    async def aconnect(self, setup: SessionSetup, options: OpenAIRealtimeOptions) -> _OpenAILink:
        """Connect, and configure the session (``session.update``).

        Raises:
            LLMSDKMissingError: without the SDK.
            LLMAuthenticationError: if the API refuses the key (HTTP 401 or 403).
            RealtimeConnectionError: if it cannot be reached, or the setup cannot be sent
                (the connection is closed then).
        """
        client = _client(options)
        manager = client.realtime.connect(
            model=setup.model, websocket_connection_options=dict(options.websocket_options or {})
        )
        try:
            connection = await manager.enter()
        except Exception as error:
            raise _connect_error(error) from error
        link = _OpenAILink(connection, setup.vad)
        model = options.transcription_model or _TRANSCRIPTION_MODEL
        try:
            await link.aconfigure(_session(setup, model))
        except BaseException:  # (its send failed, or it was cancelled: no session owns it)
            with contextlib.suppress(Exception):
                await link.aclose()
            raise
        return link


def _client(options: OpenAIRealtimeOptions) -> Any:
    """``async_client``, else the context's, made from the environment (the LLM agents')."""
    given: Any = options.async_client
    if given is not None:
        return given
    from miniagents.ext.llm.openai import OpenAIOptions, OpenAIProvider

    return OpenAIProvider.client(OpenAIOptions())


def _session(setup: SessionSetup, transcription_model: str) -> dict[str, Any]:
    """The ``session`` of ``session.update`` for ``setup``."""
    audio_in: dict[str, Any] = {"format": {"type": "audio/pcm", "rate": PCM24K.rate}}
    if setup.transcribe_input:
        audio_in["transcription"] = {"model": transcription_model}
    if setup.vad:
        detection: dict[str, Any] = {
            "type": "server_vad",
            "create_response": True,
            "interrupt_response": setup.interrupt,
        }
        if setup.silence_ms is not None:
            detection["silence_duration_ms"] = setup.silence_ms
        audio_in["turn_detection"] = detection
    else:
        audio_in["turn_detection"] = None
    audio_out: dict[str, Any] = {"format": {"type": "audio/pcm", "rate": PCM24K.rate}}
    if setup.voice is not None:
        audio_out["voice"] = setup.voice
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": [setup.modality],
        "audio": {"input": audio_in, "output": audio_out},
        "tools": [
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            }
            for tool in setup.tools
        ],
    }
    if setup.instructions is not None:
        session["instructions"] = setup.instructions
    return merged(session, dict(setup.options))


class _OpenAILink:
    """An open OpenAI Realtime session, in neutral terms (a ``RealtimeLink``)."""

    reports_speech = True
    replies_to_tool_outputs = False
    replayed = False

    def __init__(self, connection: Any, vad: bool) -> None:
        self._connection = connection
        self._closed = False
        self._vad = vad
        self._speaking = False  # the user, as the API's VAD said
        self._appended = False  # audio since the last turn was committed
        self._updates = 0  # session.update events sent
        self._updated = 0  # session.updated events read
        self._synced = asyncio.Event()
        self._calls: dict[str | None, list[str]] = {}  # the calls of the reply under way
        self._sent = 0  # client events sent (each one's event_id: its number and type)
        self._setup_id: str | None = None  # the event_id of the setup's session.update

    async def aconfigure(self, session: dict[str, Any]) -> None:
        """Set the session up: ``session.update`` (its refusal ends the session)."""
        self._setup_id = await self.send({"type": "session.update", "session": session})

    async def send(self, event: dict[str, Any]) -> str:
        """Send one client event, with an ``event_id`` of its own; return that id.

        Raises:
            RealtimeConnectionError: if the connection has dropped.
        """
        if event["type"] == "session.update":
            self._updates += 1
        self._sent += 1
        event_id = f"{self._sent}:{event['type']}"
        event = {**event, "event_id": event_id}
        try:
            send_raw = getattr(self._connection, "send_raw", None)
            if send_raw is not None:
                await send_raw(json.dumps(event, separators=(",", ":")))
            else:  # (an SDK of before send_raw: its typed send)
                await self._connection.send(event)
        except Exception as error:
            if _closed_error(error):
                raise _send_closed_error("the OpenAI Realtime API", error) from error
            raise
        return event_id

    async def asend_audio(self, audio: bytes) -> None:
        """``input_audio_buffer.append``."""
        self._appended = True
        await self.send(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
        )

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        """A user message item of the text and the images (the session asks for the reply)."""
        content = [{"type": "input_text", "text": text}, *map(_image, images)]
        await self._item({"type": "message", "role": "user", "content": content})

    async def asend_images(self, images: Sequence[ImagePart]) -> None:
        """A user message item of the images alone."""
        await self._item({"type": "message", "role": "user", "content": list(map(_image, images))})

    async def asend_item(self, role: str, text: str) -> None:
        """A message item carried in (an assistant's as ``output_text``)."""
        kind = "output_text" if role == "assistant" else "input_text"
        await self._item(
            {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
        )

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        """A ``function_call_output`` item."""
        await self._item({"type": "function_call_output", "call_id": call_id, "output": output})

    async def _item(self, item: dict[str, Any]) -> None:
        await self.send({"type": "conversation.item.create", "item": item})

    async def arespond(self) -> None:
        """``response.create``."""
        await self.send({"type": "response.create"})

    async def atruncate(self, item_id: str, played_ms: int) -> None:
        """``conversation.item.truncate`` of the item's audio (its only content part)."""
        await self.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": played_ms,
            }
        )

    async def aend_input(self) -> InputEnd:
        """Commit the user's words under way as a turn (``input_audio_buffer.commit``), if any.

        First the API takes the audio sent (a ``session.update``, answered: its VAD's
        events about that audio come before its answer). The wait for that answer lasts at
        most :data:`_SYNC_TIMEOUT` seconds of the event loop's clock; past it, a WARNING
        says so, and the turn is ended on what the API said until then.
        """
        await self.send({"type": "session.update", "session": {"type": "realtime"}})
        wanted = self._updates  # (answered in order: this one's answer comes last)
        try:
            async with asyncio.timeout(_SYNC_TIMEOUT):  # (the loop's clock: a test's virtual one)
                while self._updated < wanted:
                    self._synced.clear()
                    await self._synced.wait()
        except TimeoutError:
            _logger.warning(
                "The OpenAI Realtime API did not answer the session.update that ends the "
                "input within %g s (the wait for it to take the audio sent); the user's "
                "turn under way is ended on the API's events read so far.",
                _SYNC_TIMEOUT,
            )
        if not (self._speaking if self._vad else self._appended):
            return "no_turn"
        await self.send({"type": "input_audio_buffer.commit"})
        self._speaking = self._appended = False
        return "ask"

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        """The server's events, read from the connection as they come.

        Raises:
            RealtimeConnectionError: if the connection dropped.
            RealtimeServerError: if the server closed it before the session did (with an
                error, or a normal close, code 1000, mid-conversation).
        """
        from websockets.exceptions import ConnectionClosed

        connection = self._connection
        while True:
            try:
                data = await connection.recv_bytes()
            except ConnectionClosed as error:
                if self._closed:  # (the session closed it: the end it asked for)
                    return
                raise _dropped_error(error) from error
            raw = json.loads(data)
            event = _event(raw)
            if isinstance(event, SpeechStarted):
                self._speaking = True
            elif isinstance(event, SpeechStopped):
                self._speaking = self._appended = False
            elif event is None and raw.get("type") == "session.updated":
                self._updated += 1
                self._synced.set()
            elif isinstance(event, ReplyStarted):
                # (one reply at a time: one never said the end of, by response.done, is over)
                self._calls.clear()
            elif isinstance(event, ToolCalled):
                self._calls.setdefault(raw.get("response_id"), []).append(event.call_id)
            elif isinstance(event, ReplyEnded):
                made = self._calls.pop(event.response_id, [])
                if event.response_id is not None:  # (and those that named no reply: its)
                    made += self._calls.pop(None, [])
                if event.status == "cancelled":  # (cut short: its calls are not to run on)
                    for call_id in made:
                        yield ToolCancelled(call_id)
            elif isinstance(event, ServerFailed) and event.fatal:
                event = self._refusal(event, raw.get("error") or {})
            if event is not None:
                yield event

    def _refusal(self, failed: ServerFailed, error: dict[str, Any]) -> ServerFailed:
        """``failed``, not fatal if it refuses a client event the session goes on after.

        A refused ``session.update`` (not the setup's) counts as answered for
        :meth:`aend_input`, which waits for the answers of those it sent; so does a
        ``cannot_update_voice``, which names none (the setup's comes before any reply).
        """
        if failed.code == "cannot_update_voice":
            self._updated += 1
            self._synced.set()
            return dataclasses.replace(failed, fatal=False)
        refused = error.get("event_id")
        if not isinstance(refused, str) or refused == self._setup_id:
            return failed
        number, _, kind = refused.partition(":")
        if not (number.isdigit() and int(number) <= self._sent) or kind not in _GOES_ON:
            return failed  # (not an event of the link's, or one the session waits on)
        if kind == "session.update":
            self._updated += 1
            self._synced.set()
        return dataclasses.replace(failed, fatal=False)

    async def aclose(self) -> None:
        """Close the connection, reading what the server still sends until it has closed."""
        if not self._closed:
            self._closed = True
            await _close_reading_out(
                self._connection.close,
                self._connection.recv_bytes,
                "OpenAI Realtime reading to its close",
            )


def _event(event: dict[str, Any]) -> RealtimeEvent | None:
    """The neutral event of a server event (``None``: one the session needs not)."""
    kind = event.get("type")
    if kind in ("response.output_audio.delta", "response.audio.delta"):
        return AudioOut(event.get("item_id"), base64.b64decode(event["delta"]))
    if kind in _TEXT:
        return TextOut(event.get("item_id"), str(event.get("delta", "")))
    if kind == "input_audio_buffer.speech_started":
        return SpeechStarted(event.get("item_id"))
    if kind == "input_audio_buffer.speech_stopped":
        return SpeechStopped(event.get("item_id"))
    if kind == "conversation.item.input_audio_transcription.completed":
        return UserTranscribed(event.get("item_id"), str(event.get("transcript", "")))
    if kind == "response.created":
        return ReplyStarted((event.get("response") or {}).get("id"))
    if kind == "response.function_call_arguments.done":
        return ToolCalled(
            str(event.get("call_id")), str(event.get("name")), str(event.get("arguments", ""))
        )
    if kind == "response.done":
        response = event.get("response") or {}
        return ReplyEnded(
            response.get("id"),
            str(response.get("status", "completed")),
            _usage(response.get("usage")),
            model if isinstance(model := response.get("model"), str) and model else None,
        )
    if kind == "conversation.item.truncated":
        return AudioCut(str(event.get("item_id")), int(event.get("audio_end_ms", 0)))
    if kind == "error":
        error = event.get("error") or {}
        code = str(error.get("code") or error.get("type") or "")
        benign = code in _BENIGN
        said = str(error.get("message", "")) + (_VOICE_FIX if code == "cannot_update_voice" else "")
        return ServerFailed(said, code, fatal=not benign, expected=benign)
    return None


_TEXT = frozenset(
    {
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
        "response.output_text.delta",
        "response.text.delta",
    }
)


def _usage(usage: Any) -> RealtimeUsage | None:
    """The reply's usage as OpenAI reports it (``input_token_details``, ...).

    A count that is no count (negative, a float, a bool) is unknown: ``reported_count``.
    """
    if not isinstance(usage, dict):
        return None
    given = usage.get("input_token_details") or {}
    made = usage.get("output_token_details") or {}
    cached = given.get("cached_tokens_details") or {}
    return RealtimeUsage(
        input_tokens=reported_count(usage.get("input_tokens")),
        output_tokens=reported_count(usage.get("output_tokens")),
        cached_input_tokens=reported_count(given.get("cached_tokens")),
        input_text_tokens=reported_count(given.get("text_tokens")),
        input_audio_tokens=reported_count(given.get("audio_tokens")),
        input_image_tokens=reported_count(given.get("image_tokens")),
        output_text_tokens=reported_count(made.get("text_tokens")),
        output_audio_tokens=reported_count(made.get("audio_tokens")),
        cached_audio_tokens=reported_count(cached.get("audio_tokens")),
    )


def _image(image: ImagePart) -> dict[str, Any]:
    return {
        "type": "input_image",
        "image_url": image.data_url if image.data is not None else image.url,
    }


def _dropped_error(error: Any) -> LLMError:
    """The error of a connection the server closed (or that dropped) mid-session."""
    received = getattr(error, "rcvd", None)
    code, reason = (None, "") if received is None else (received.code, received.reason)
    return _ended_error("the OpenAI Realtime API", code, reason or "no reason given")


def _connect_error(error: BaseException) -> LLMError:
    """The error of a connection that could not be opened."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int) and status not in (401, 403):
        return LLMRequestError(f"The OpenAI Realtime API refused the session (HTTP {status}).")
    api, session = "The OpenAI Realtime API", "The OpenAI Realtime session"
    trust = ' (websocket_options={"ssl": context})'
    return _open_error(error, status, api, session, "OPENAI_API_KEY", trust=trust)


openai_realtime_agent = make_realtime_agent(
    OpenAIRealtimeOptions,
    OpenAIRealtimeProvider(),
    alias="OPENAI_REALTIME_AGENT",
    summary="An OpenAI realtime model: audio, text and images in; audio, its transcript, "
    "tool calls and turns out.",
)
"""An OpenAI Realtime model as an agent: its input streams in, its reply streams out."""

create_openai_realtime_agent = openai_realtime_agent.bind
"""``openai_realtime_agent`` with arguments bound, typed (``fork``, checked by mypy)."""
