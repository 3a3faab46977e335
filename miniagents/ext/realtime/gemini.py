"""Gemini Live as a realtime agent: ``gemini_live_agent``.

The session goes over the google-genai SDK's live client (``client.aio.live.connect``): its
config carries the instructions, the tools (as JSON schemas), the voice, the modality and
the transcriptions of input and output; the input streams as ``send_realtime_input`` (16-bit
PCM at 16 kHz), text and carried messages as ``send_client_content``, tools' outputs as
``send_tool_response``; the model's turns come as ``server_content`` (audio at 24 kHz, its
transcription), ``tool_call`` (withdrawn by ``tool_call_cancellation`` when the user cuts
the turn short: the session stops those calls and sends no output for them) and
``usage_metadata``.

Gemini tells no voice activity, names no item and truncates nothing: the link names each
model turn (``turn_1``, ...), takes the user's transcription as the sign of a turn to
answer if audio came since the model's last turn that could answer it began (else they are
the late words of a turn answered already: told as they come, no answer awaited; a turn
that starts after text or a tool's output was sent answers those, not the audio before
them: of a tool's outputs, the last of one of its turns' calls, as Gemini answers a turn's
calls once each has its output), reads ``interrupted`` as the user cutting the model short,
and a cut is the session's own (the API keeps what it sent; the session's record keeps what
was heard).

The client comes from ``async_client=`` (a ``genai.Client``, or its ``.aio``) or, once per
``MiniAgents`` context, from the environment (``GEMINI_API_KEY``, ...). The SDK opens Live
sessions at ``wss://``: a local server (the testing kit's fake) needs the client's
``http_options.async_client_args={"ssl": ...}`` to trust it.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from miniagents.ext.llm.errors import LLMAuthenticationError, LLMError
from miniagents.ext.llm.pricing import reported_count
from miniagents.ext.llm.sdk_calls import import_sdk
from miniagents.ext.realtime.agent import make_realtime_agent
from miniagents.ext.realtime.pieces import PCM16K, PCM24K, RealtimeUsage
from miniagents.ext.realtime.provider import (
    AudioCut,
    AudioOut,
    InputEnd,
    Interrupted,
    RealtimeEvent,
    RealtimeOptions,
    ReplyEnded,
    ReplyStarted,
    ServerFailed,
    SessionSetup,
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
    _ToolTurns,
)
from miniagents.messages.image import ImagePart
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    from google import genai

__all__ = [
    "GeminiLiveOptions",
    "GeminiLiveProvider",
    "create_gemini_live_agent",
    "gemini_live_agent",
]


@dataclass(frozen=True, kw_only=True)
class GeminiLiveOptions(RealtimeOptions):
    """The arguments of ``gemini_live_agent``: every realtime agent's, and Gemini's own.

    Attributes:
        async_client: A ``google.genai.Client`` (or its ``.aio``) instead of the default one.
    """

    async_client: genai.Client | genai.client.AsyncClient | None = None


class GeminiLiveProvider:
    """Gemini Live (see the module)."""

    provider_name = "gcp.gemini"
    price_provider: str | None = "google"
    input_format = PCM16K
    output_format = PCM24K
    default_model: str | None = "gemini-live-2.5-flash-preview"

    async def aconnect(self, setup: SessionSetup, options: GeminiLiveOptions) -> _GeminiLink:
        """Open the Live session with its config.

        Raises:
            LLMSDKMissingError: without the SDK.
            LLMAuthenticationError: if the API refuses the key.
            RealtimeConnectionError: if it cannot be reached.
        """
        client = _client(options)
        manager = client.live.connect(model=setup.model, config=_config(setup))
        try:
            session = await manager.__aenter__()
        except Exception as error:
            raise _connect_error(error) from error
        return _GeminiLink(manager, session, import_sdk("google.genai.types", "Gemini"), setup.vad)


def _client(options: GeminiLiveOptions) -> Any:
    given: Any = options.async_client
    if given is None:
        genai = import_sdk("google.genai", "Gemini")
        given = MiniAgents.get_current().resource(
            "gemini-live-client", lambda: _client_from_environment(genai), _close
        )
    return getattr(given, "aio", given)


def _client_from_environment(genai: Any) -> Any:
    try:
        return genai.Client()
    except ValueError as error:
        raise LLMAuthenticationError(
            "No Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), or pass "
            f"async_client=genai.Client(...) to the agent ({error})."
        ) from error


async def _close(client: Any) -> None:
    await client.aio.aclose()


def _config(setup: SessionSetup) -> dict[str, Any]:
    """The ``LiveConnectConfig`` of ``setup`` (a dict, as the SDK takes it)."""
    config: dict[str, Any] = {"response_modalities": [setup.modality.upper()]}
    if setup.instructions is not None:
        config["system_instruction"] = setup.instructions
    if setup.tools:
        declarations = []
        for tool in setup.tools:
            declared: dict[str, Any] = {
                "name": tool.name,
                "parameters_json_schema": tool.parameters,
            }
            if tool.description:
                declared["description"] = tool.description
            declarations.append(declared)
        config["tools"] = [{"function_declarations": declarations}]
    if setup.transcribe_input:
        config["input_audio_transcription"] = {}
    if setup.modality == "audio":
        config["output_audio_transcription"] = {}
    if setup.voice is not None:
        config["speech_config"] = {
            "voice_config": {"prebuilt_voice_config": {"voice_name": setup.voice}}
        }
    detection: dict[str, Any] = {"disabled": not setup.vad}
    if setup.silence_ms is not None:
        detection["silence_duration_ms"] = setup.silence_ms
    realtime: dict[str, Any] = {"automatic_activity_detection": detection}
    if not setup.interrupt:
        realtime["activity_handling"] = "NO_INTERRUPTION"
    config["realtime_input_config"] = realtime
    config.update(setup.options)
    return config


_MAX_UNANSWERED_TURNS = 64
"""The most user's turns transcribed whole that a Gemini session keeps for their answers: past
it, the oldest is told at once, as no answer's (as those left at the session's end are)."""

_logger = logging.getLogger(__name__)


class _GeminiLink:
    """An open Gemini Live session, in neutral terms (a ``RealtimeLink``; see the module)."""

    reports_speech = False
    replies_to_tool_outputs = True  # (the outputs sent since its last turn: answered in one)
    replayed = False

    def __init__(self, manager: Any, session: Any, types: Any, vad: bool) -> None:
        self._manager = manager
        self._vad = vad
        self._audio = False  # audio since the model's last turn that could answer it started
        self._told = False  # a user's turn told to the session since then (once each)
        self._other = False  # a tool's output or text sent: the model's next turn answers it
        self._calls = _ToolTurns()  # (which output the model's next turn answers)
        self._unnamed: set[str] = set()  # the ids given to calls the API sent without one
        self._unnamed_count = 0
        self._session = session
        self._types = types
        self._closed = False
        self._turns = 0
        self._turn: str | None = None  # the model's turn under way
        self._heard: list[str] = []  # the user's turn being transcribed (its pieces)
        self._said: deque[str] = deque()  # turns transcribed in full, each until its answer
        self._ended: tuple[str, str] | None = None  # a turn ended, its usage to come
        self._owed = False  # the turn under way (or ended) answers words not told yet
        self._late = False  # words coming after their answer's end (no turn to answer)
        self._made: deque[RealtimeEvent] = deque()  # the session's own events (its cuts)

    # -- what the session sends ----------------------------------------------------------

    async def asend_audio(self, audio: bytes) -> None:
        """``send_realtime_input(audio=...)``, 16 kHz PCM.

        Without VAD, a turn's first chunk follows an ``activity_start``.
        """
        if not self._vad and not self._audio:
            await _sent(self._session.send_realtime_input(activity_start={}))
        self._audio = True
        blob = self._types.Blob(data=audio, mime_type=PCM16K.mime_type)
        await _sent(self._session.send_realtime_input(audio=blob))

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        """A user turn of text and images (the session then asks for the reply)."""
        parts = [{"text": text}, *map(_part, images)]
        await _sent(
            self._session.send_client_content(
                turns=[{"role": "user", "parts": parts}], turn_complete=False
            )
        )

    async def asend_images(self, images: Sequence[ImagePart]) -> None:
        """Images as a user turn's parts, not answered."""
        await _sent(
            self._session.send_client_content(
                turns=[{"role": "user", "parts": list(map(_part, images))}], turn_complete=False
            )
        )

    async def asend_item(self, role: str, text: str) -> None:
        """A message carried in (the model's, or a user's turn), not answered."""
        turn = {"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]}
        await _sent(self._session.send_client_content(turns=[turn], turn_complete=False))

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        """``send_tool_response``: the output as the function's ``{"output": ...}``."""
        unnamed = call_id in self._unnamed  # (its id the link's own: the API is told none)
        self._unnamed.discard(call_id)
        response = self._types.FunctionResponse(
            id=None if unnamed else call_id, name=name, response={"output": output}
        )
        if self._calls.answered(call_id):  # (the last of its turn's calls: answered now)
            self._other = True
        await _sent(self._session.send_tool_response(function_responses=[response]))

    async def arespond(self) -> None:
        """``send_client_content(turn_complete=True)``: the model answers what it has."""
        self._other = True
        await _sent(self._session.send_client_content(turn_complete=True))

    async def atruncate(self, item_id: str, played_ms: int) -> None:
        """No truncation in Gemini: the cut is the session's own (its ``AudioCut``, at once)."""
        self._made.append(AudioCut(item_id, played_ms))

    async def aend_input(self) -> InputEnd:
        """``audio_stream_end`` (without VAD, ``activity_end``): the API ends, and answers, a turn.

        One is under way if audio came since the model's last turn started (one that
        answered a tool's output or text sent after that audio does not count), unless the API
        has told the user's turn of that audio already (its transcription): that turn is
        the session's to wait for, told once; a transcription that comes after this is of
        the turn counted here, and tells it no more. Gemini tells no sure sign here that its
        voice detection heard speech in that audio (its transcription and ``voice_activity``
        come after the detection has run, later than this for audio sent at once), so audio
        of silence counts too: a microphone that streams silence until the input ends has
        the session wait its ``drain_timeout`` for an answer that does not come.
        """
        if not self._audio:
            return "no_turn"
        self._audio = False
        if self._vad:
            await _sent(self._session.send_realtime_input(audio_stream_end=True))
        else:
            await _sent(self._session.send_realtime_input(activity_end={}))
        if self._told:
            return "no_turn"
        self._told = True
        return "replies"

    # -- what the API tells ----------------------------------------------------------------

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        """The API's messages as neutral events, until the session closes.

        The words of a user's turn transcribed after its answer's end are told once whole
        (``finished``), and no answer is awaited for them; words that no reply answered,
        or not told whole, are told as the session closes, last.

        Raises:
            RealtimeConnectionError: if the connection dropped.
            RealtimeServerError: if the API closed it before the session did (with an
                error, or a normal close, code 1000, mid-conversation).
        """
        while True:  # (the SDK's receive() ends after each of the model's turns)
            try:
                async for message in self._session.receive():
                    for event in self._read(message):
                        yield event
                    while self._made:
                        yield self._made.popleft()
            except Exception as error:
                if not self._closed:
                    raise _dropped_error(error) from error
                break  # (the session closed it: the end it asked for)
        # (the turns transcribed that no reply answered, the last one's late words: told last)
        left = [*self._said, "".join(self._heard).strip()]
        self._said.clear()
        self._heard = []
        for words in left:
            if words:
                yield UserTranscribed(None, words)

    def _read(self, message: Any) -> list[RealtimeEvent]:
        out: list[RealtimeEvent] = []
        content = message.server_content
        if content is not None:
            heard = content.input_transcription
            if heard is not None and heard.text:
                if not self._heard and not self._said and self._turn is None and not self._told:
                    if self._audio:  # (audio since the model's last turn began: a new turn)
                        self._told = True
                        out.append(SpeechStopped(None))  # (a turn to answer)
                    else:  # (the words of a turn answered already: no answer to wait for)
                        self._late = True
                self._heard.append(heard.text)
            if heard is not None and getattr(heard, "finished", None) and self._heard:
                if len(self._said) >= _MAX_UNANSWERED_TURNS:  # (told unanswered, as at the end)
                    _logger.debug(
                        "Over %s user's turns wait for their answers: the oldest is told as "
                        "unanswered.",
                        _MAX_UNANSWERED_TURNS,
                    )
                    out.append(UserTranscribed(None, self._said.popleft()))
                self._said.append("".join(self._heard).strip())  # (its turn's words, whole)
                self._heard = []
                if self._late:  # (an answered turn's: told at once, the turn under way's owed on)
                    self._late = False
                    out.append(UserTranscribed(None, self._said.popleft()))
                elif self._owed:  # (transcribed late: told at once, as they come)
                    self._owed = False
                    out.append(UserTranscribed(None, self._said.popleft()))
            turn = content.model_turn
            for part in turn.parts if turn is not None and turn.parts else ():
                data = part.inline_data.data if part.inline_data is not None else None
                if data:
                    out.append(AudioOut(self._started(out), bytes(data)))
                if part.text:
                    out.append(TextOut(self._started(out), part.text))
            said = content.output_transcription
            if said is not None and said.text:
                out.append(TextOut(self._started(out), said.text))
            if content.interrupted:
                out.append(Interrupted())
                self._end(out, "cancelled")
            elif content.turn_complete:
                self._end(out, "completed")
        if message.tool_call is not None:
            for call in message.tool_call.function_calls or ():
                call_id = str(call.id) if call.id else self._unnamed_id(str(call.name))
                self._calls.called(call_id, self._started(out))
                out.append(ToolCalled(call_id, str(call.name), json.dumps(call.args or {})))
        withdrawn = message.tool_call_cancellation  # (the user cut the turn short)
        for call_id in withdrawn.ids or () if withdrawn is not None else ():
            self._calls.withdrawn(str(call_id))
            out.append(ToolCancelled(str(call_id)))
        if message.usage_metadata is not None:
            usage = _usage(message.usage_metadata)
            if self._ended is not None:
                ended, self._ended = self._ended, None
                self._owed = False  # (its words, if they come now, are of no answer yet)
                out.append(ReplyEnded(ended[0], ended[1], usage))
        if message.go_away is not None:
            out.append(_going_away(message.go_away.time_left))
        return out

    def _unnamed_id(self, name: str) -> str:
        """An id of the link's own for a call of ``name`` the API sent without one.

        Each call has its own, though a turn calls one tool twice.
        """
        self._unnamed_count += 1
        call_id = f"{name}#{self._unnamed_count}"
        self._unnamed.add(call_id)
        return call_id

    def _started(self, out: list[RealtimeEvent]) -> str:
        """The model's turn under way (started here, the user's words first, if none is).

        The words are those of the first turn transcribed in full (``finished``) and not
        answered yet, each turn before its own answer; without one, all that was heard; with
        none heard yet, the words owed to this turn are those transcribed in full before it
        ends (a late transcription: told then, before its end). Words still coming of a turn
        answered already (late words not marked whole yet) stay that turn's: told once whole,
        this turn's after them. A turn that starts after a tool's output or text was sent
        answers that: no words are its, and the audio sent before it is still a turn to
        answer.
        """
        if self._turn is None:
            self._flush_end(out)
            self._owed = False
            if self._other:  # (it answers what the session sent: the user's turn waits on)
                self._other = False
            elif self._said:
                out.append(UserTranscribed(None, self._said.popleft()))
                self._audio = self._told = False
            elif self._heard and not self._late:
                out.append(UserTranscribed(None, "".join(self._heard).strip()))
                self._heard = []
                self._audio = self._told = False
            else:  # (its words to come; late words heard, not whole yet, stay an answered turn's)
                self._owed = True
                self._audio = self._told = False
            self._turns += 1
            self._turn = f"turn_{self._turns}"
            out.append(ReplyStarted(self._turn))
        return self._turn

    def _end(self, out: list[RealtimeEvent], status: str) -> None:
        if self._turn is not None:
            self._flush_end(out)
            self._ended = (self._turn, status)
            self._turn = None

    def _flush_end(self, out: list[RealtimeEvent]) -> None:
        if self._ended is not None:
            ended, self._ended = self._ended, None
            self._owed = False
            out.append(ReplyEnded(ended[0], ended[1], None))

    async def aclose(self) -> None:
        """Close the session, reading what the API still sends until it has closed."""
        if not self._closed:
            self._closed = True
            await _close_reading_out(
                lambda: self._manager.__aexit__(None, None, None),
                self._read_turn,
                "Gemini Live reading to its close",
            )

    async def _read_turn(self) -> None:
        """The API's messages of one of the model's turns, dropped (``receive()`` ends there)."""
        async for _ in self._session.receive():
            pass


def _part(image: ImagePart) -> dict[str, Any]:
    if image.data is not None:
        return {"inline_data": {"data": image.data, "mime_type": image.media_type}}
    return {"file_data": {"file_uri": image.url, "mime_type": image.media_type}}


def _usage(usage: Any) -> RealtimeUsage:
    """Gemini's ``usage_metadata``, by modality.

    A count that is no count (negative, a float, a bool) is unknown: ``reported_count``.
    A total the metadata leaves out (``promptTokenCount``, ``responseTokenCount``,
    ``cachedContentTokenCount``) is 0: protobuf's JSON leaves out zeros, so a reply with no
    output says no ``responseTokenCount``. A list of counts by modality
    (``promptTokensDetails``, ...) names the modalities that had tokens: one it leaves out
    had none (0), as one whose ``tokenCount`` is left out (the wire leaves out zeros). A
    list not sent (or empty, the same on the wire) says nothing: each of its modalities is
    unknown (``None``), unless its total is 0.
    """
    prompt_tokens = _total(usage.prompt_token_count)
    response_tokens = _total(usage.response_token_count)
    cached_tokens = _total(usage.cached_content_token_count)
    prompt = (usage.prompt_tokens_details, prompt_tokens)
    made = (usage.response_tokens_details, response_tokens)
    cached = (usage.cache_tokens_details, cached_tokens)
    return RealtimeUsage(
        input_tokens=prompt_tokens,
        output_tokens=response_tokens,
        cached_input_tokens=cached_tokens,
        input_text_tokens=_modality(*prompt, "TEXT"),
        input_audio_tokens=_modality(*prompt, "AUDIO"),
        input_image_tokens=_modality(*prompt, "IMAGE"),
        output_text_tokens=_modality(*made, "TEXT"),
        output_audio_tokens=_modality(*made, "AUDIO"),
        cached_audio_tokens=_modality(*cached, "AUDIO"),
    )


def _total(count: object) -> int | None:
    """A total of a ``usage_metadata`` that was sent: one left out had none (0)."""
    return reported_count(0 if count is None else count)


def _modality(details: Any, total: int | None, modality: str) -> int | None:
    """The tokens of ``modality`` in a list of counts by modality, of ``total`` tokens.

    A modality listed more than once has the sum of its counts (the list splits the total:
    each entry counts tokens of its own). ``None`` if unknown: the list was not sent (and
    the total is not 0), or a count of the modality is no count.
    """
    if total == 0:
        return 0  # (none of no tokens)
    if not details:
        return None  # (not said: not none)
    tokens = 0  # (a modality the list leaves out had no tokens)
    for each in details:
        if str(getattr(each.modality, "value", each.modality)).upper() == modality:
            count = reported_count(0 if each.token_count is None else each.token_count)
            if count is None:
                return None
            tokens += count
    return tokens


def _going_away(time_left: str | None) -> ServerFailed:
    """Gemini's ``go_away``: the API closes the session soon, at its limit.

    Not fatal: the session tells it at WARNING.
    """
    left = f"in {time_left}" if time_left else "soon"
    said = (
        f"Gemini Live is about to close the session (go_away: {left}), as it closes every "
        "session at its time limit: start a new session to go on."
    )
    return ServerFailed(said, "go_away", fatal=False)


async def _sent(sending: Awaitable[object]) -> None:
    """Await a send of the SDK's session.

    Raises:
        RealtimeConnectionError: if the send found the connection closed (the SDK lets the
            WebSocket library's error out).
    """
    try:
        await sending
    except Exception as error:
        if _closed_error(error):
            raise _send_closed_error("Gemini Live", error) from error
        raise


def _dropped_error(error: BaseException) -> LLMError:
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(error)
    closed = None if code == 1006 else code  # (1006: no close frame)
    return _ended_error("Gemini Live", closed, message, ends_one=", after a go_away")


def _connect_error(error: BaseException) -> LLMError:
    status = getattr(getattr(error, "response", None), "status_code", None)
    status = status or getattr(error, "code", None)
    return _open_error(
        error,
        status,
        "Gemini Live",
        "The Gemini Live session",
        "GEMINI_API_KEY",
        trust=" (genai.Client(http_options=types.HttpOptions(base_url=..., "
        'async_client_args={"ssl": context})))',
    )


gemini_live_agent = make_realtime_agent(
    GeminiLiveOptions,
    GeminiLiveProvider(),
    alias="GEMINI_LIVE_AGENT",
    summary="A Gemini Live model: audio, text and images in; audio, its transcript, tool "
    "calls and turns out.",
)
"""A Gemini Live model as an agent: its input streams in, its reply streams out."""

create_gemini_live_agent = gemini_live_agent.bind
"""``gemini_live_agent`` with arguments bound, typed (``fork``, checked by mypy)."""
