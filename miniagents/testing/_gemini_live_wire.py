"""Gemini Live's messages (``BidiGenerateContent``), for the fake realtime session (``_live``).

The client's first message is its ``setup`` (the model, the generation config, the system
instruction, the tools, whether to transcribe), answered with ``setupComplete``; then
``realtimeInput`` (audio, text, the end of the audio stream, activity marks),
``clientContent`` (turns, ``turnComplete``: either interrupts the model's turn under way,
as google-genai's ``LiveClientContent`` says Gemini does) and ``toolResponse``. The
server's messages are ``serverContent`` (the model's turn: audio as ``inlineData``, text
parts, the transcriptions of input and output, ``interrupted``, ``generationComplete``,
``turnComplete``), ``toolCall`` (a turn's calls, all of them in one), ``toolCallCancellation``
(the calls of an interrupted turn not answered yet) and ``usageMetadata``. The model answers
a turn's calls in a turn of its own once each has its response (a turn whose calls were
withdrawn: never), and a response of a call of no turn waiting for responses (answered
already, or withdrawn) at once. Keys are read in either case (the SDK writes
camelCase, a raw client may write snake_case). The API tells no voice activity to the
client: the user's speech over the model's turn is an ``interrupted`` turn. Without the
API's detection (``automaticActivityDetection.disabled``), the client marks the user's turn
with ``activityStart`` and ``activityEnd``: the start cuts the model's turn in progress
short (``interrupted``), as the setup's ``activityHandling`` says by default
(``START_OF_ACTIVITY_INTERRUPTS``), and the end is the turn the model answers (once its turn
in progress ends, if ``NO_INTERRUPTION`` let it go on); with the detection on, either mark
is refused, as the API takes them only without it. ``NO_INTERRUPTION`` keeps the user's
speech from cutting the model short with the detection on too. A message it would refuse
closes the connection, as Gemini's server does, with code 1007 (or 1011 for a scripted
error) and the reason.

A setup with a field that ``BidiGenerateContentSetup`` does not have (:data:`SETUP_FIELDS`,
in either case: a misspelt ``generationConfg``, a field of another API), or a message in it
with a field its message does not have (``generationConfig.temprature``, a misspelt
``speechConfig.voiceConfig.prebuiltVoiceConfig.voiceNam``, in a tool, in the activity
detection: :data:`_MESSAGES`), is refused so, code 1007. The Live API's documentation does
not say how it refuses one; the fake says it as Gemini's JSON API says an unknown field
(``Invalid JSON payload received. Unknown name "x" at 'setup.generation_config': Cannot
find field.``, the path in the proto's names), and closes as Live closes on an invalid
argument. Free values (a tool's parameters, a response schema, a search tool's options)
are not looked into.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from miniagents.testing._live import (
    AudioOut,
    CallOut,
    LiveEvent,
    LiveSession,
    LiveUsage,
    ProtocolError,
    ReplyEnd,
    ReplyStart,
    Transcribed,
    UserTurn,
)

__all__ = ["SETUP_FIELDS", "GeminiLiveWire"]

_MESSAGES: dict[str, dict[str, str | None]] = {
    "Setup": {
        "model": None,
        "generationConfig": "GenerationConfig",
        "systemInstruction": "Content",
        "tools": "Tool",
        "realtimeInputConfig": "RealtimeInputConfig",
        "sessionResumption": "SessionResumptionConfig",
        "contextWindowCompression": "ContextWindowCompressionConfig",
        "inputAudioTranscription": "AudioTranscriptionConfig",
        "outputAudioTranscription": "AudioTranscriptionConfig",
        "proactivity": "ProactivityConfig",
        "historyConfig": "HistoryConfig",
        "avatarConfig": "AvatarConfig",
        "safetySettings": "SafetySetting",
        "labels": None,
    },
    "GenerationConfig": {
        "stopSequences": None,
        "responseMimeType": None,
        "responseSchema": None,
        "responseJsonSchema": None,
        "responseModalities": None,
        "candidateCount": None,
        "maxOutputTokens": None,
        "temperature": None,
        "topP": None,
        "topK": None,
        "seed": None,
        "presencePenalty": None,
        "frequencyPenalty": None,
        "responseLogprobs": None,
        "logprobs": None,
        "enableEnhancedCivicAnswers": None,
        "speechConfig": "SpeechConfig",
        "thinkingConfig": "ThinkingConfig",
        "imageConfig": None,
        "mediaResolution": None,
        "enableAffectiveDialog": None,
        "translationConfig": None,
    },
    "SpeechConfig": {
        "voiceConfig": "VoiceConfig",
        "multiSpeakerVoiceConfig": "MultiSpeakerVoiceConfig",
        "languageCode": None,
    },
    "VoiceConfig": {"prebuiltVoiceConfig": "PrebuiltVoiceConfig", "replicatedVoiceConfig": None},
    "PrebuiltVoiceConfig": {"voiceName": None},
    "MultiSpeakerVoiceConfig": {"speakerVoiceConfigs": "SpeakerVoiceConfig"},
    "SpeakerVoiceConfig": {"speaker": None, "voiceConfig": "VoiceConfig"},
    "ThinkingConfig": {"includeThoughts": None, "thinkingBudget": None, "thinkingLevel": None},
    "Content": {"parts": "Part", "role": None},
    "Part": {
        "text": None,
        "inlineData": None,
        "fileData": None,
        "functionCall": None,
        "functionResponse": None,
        "executableCode": None,
        "codeExecutionResult": None,
        "thought": None,
        "thoughtSignature": None,
        "videoMetadata": None,
        "mediaResolution": None,
        "partMetadata": None,
    },
    "Tool": {
        "functionDeclarations": "FunctionDeclaration",
        "googleSearch": None,
        "googleSearchRetrieval": None,
        "codeExecution": None,
        "urlContext": None,
        "computerUse": None,
        "fileSearch": None,
        "googleMaps": None,
        "mcpServers": None,
    },
    "FunctionDeclaration": {
        "name": None,
        "description": None,
        "behavior": None,
        "parameters": None,
        "parametersJsonSchema": None,
        "response": None,
        "responseJsonSchema": None,
    },
    "RealtimeInputConfig": {
        "automaticActivityDetection": "AutomaticActivityDetection",
        "activityHandling": None,
        "turnCoverage": None,
    },
    "AutomaticActivityDetection": {
        "disabled": None,
        "startOfSpeechSensitivity": None,
        "endOfSpeechSensitivity": None,
        "prefixPaddingMs": None,
        "silenceDurationMs": None,
    },
    "SessionResumptionConfig": {"handle": None},
    "ContextWindowCompressionConfig": {"triggerTokens": None, "slidingWindow": "SlidingWindow"},
    "SlidingWindow": {"targetTokens": None},
    "AudioTranscriptionConfig": {"languageCodes": None},
    "ProactivityConfig": {"proactiveAudio": None},
    "HistoryConfig": {"initialHistoryInClientContent": None},
    "AvatarConfig": {
        "avatarName": None,
        "customizedAvatar": None,
        "audioBitrateBps": None,
        "videoBitrateBps": None,
    },
    "SafetySetting": {"category": None, "threshold": None},
}
"""The messages of a Gemini Live setup the fake looks into: each field (camelCase, as the
google-genai SDK writes them for the Gemini API) by the message it holds (``None``: a value
not looked into); any other field is refused (see the module)."""

_ACTIVITY_HANDLING = frozenset(
    {"ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"}
)
"""The values of a setup's ``realtimeInputConfig.activityHandling`` (google-genai's
``ActivityHandling``; unspecified is ``START_OF_ACTIVITY_INTERRUPTS``)."""

SETUP_FIELDS = frozenset(_MESSAGES["Setup"])
"""The fields of a Gemini Live setup (camelCase), as the google-genai SDK writes them for the
Gemini API: any other is refused (see the module)."""


def _get(mapping: Mapping[str, Any], name: str) -> Any:
    """``mapping[name]`` in camelCase or snake_case (``name`` is camelCase)."""
    if name in mapping:
        return mapping[name]
    return mapping.get(_snake(name))


def _camel(name: str) -> str:
    """``name`` in camelCase (a snake_case name's words joined)."""
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def _snake(name: str) -> str:
    """``name`` in snake_case (a camelCase name's words, as the proto names its fields)."""
    return "".join("_" + char.lower() if char.isupper() else char for char in name)


def _unknown_fields(given: Mapping[str, Any], message: str, path: str) -> list[tuple[str, str]]:
    """Each field in ``given`` (a ``message`` at ``path``) that it does not have, with where.

    Depth first, in the order given: ``(name, path)``, the name as it was written, the path
    in the proto's names (``setup.tools[0].function_declarations[0]``).
    """
    known = _MESSAGES[message]
    found: list[tuple[str, str]] = []
    for name, value in given.items():
        field = _camel(str(name))
        if field not in known:
            found.append((str(name), path))
            continue
        held = known[field]
        if held is None:
            continue
        inner = f"{path}.{_snake(field)}"
        if isinstance(value, Mapping):
            found += _unknown_fields(value, held, inner)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    found += _unknown_fields(item, held, f"{inner}[{index}]")
    return found


class GeminiLiveWire:
    """Gemini Live's side of a fake session (see the module)."""

    provider = "gemini_live"

    def __init__(self) -> None:
        self._set_up = False
        self._transcribe_input = False
        self._transcribe_output = False
        self._told_calls: list[dict[str, Any]] = []  # (the turn's calls, told at its last)
        self._pending_calls: dict[str, set[str]] = {}  # each turn's calls still unanswered
        self._replying = False  # (a model's turn under way: between its start and its end)

    def close_code(self, error: ProtocolError) -> int:
        """1007 (invalid data) for a message refused, else 1011 (an error of the server)."""
        return 1007 if error.code.startswith("invalid") else 1011

    def opened(self, session: LiveSession) -> list[dict[str, Any]]:
        """Nothing: the client speaks first (its setup)."""
        return []

    def receive(self, session: LiveSession, message: dict[str, Any]) -> None:
        """Read one client message into calls of ``session``."""
        setup = _get(message, "setup")
        if setup is not None:
            self._setup(session, setup)
            return
        if not self._set_up:
            session.error("invalid_argument", "The first message must be the setup.", fatal=True)
            return
        realtime = _get(message, "realtimeInput")
        content = _get(message, "clientContent")
        tools = _get(message, "toolResponse")
        if isinstance(realtime, Mapping):
            self._realtime(session, realtime)
        elif isinstance(content, Mapping):
            self._content(session, content)
        elif isinstance(tools, Mapping):
            self._tool_response(session, tools)
        else:
            session.error(
                "invalid_argument", f"Unknown message with the keys {sorted(message)}.", fatal=True
            )

    def _setup(self, session: LiveSession, setup: Mapping[str, Any]) -> None:
        unknown = _unknown_fields(setup, "Setup", "setup")
        if unknown:
            session.error(
                "invalid_argument",
                "\n".join(
                    f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': "
                    "Cannot find field."
                    for name, path in unknown
                ),
                fatal=True,
            )
            return
        realtime = _get(setup, "realtimeInputConfig") or {}
        handling = _get(realtime, "activityHandling")
        if handling is not None and str(handling).upper() not in _ACTIVITY_HANDLING:
            session.error(
                "invalid_argument",
                "Invalid value at 'setup.realtime_input_config.activity_handling' "
                "(type.googleapis.com/google.ai.generativelanguage.v1beta.ActivityHandling), "
                f'"{handling}"',
                fatal=True,
            )
            return
        record = session.record
        model = _get(setup, "model")

        def note() -> None:
            record.config = dict(setup)
            record.model = model

        record.note(note)
        generation = _get(setup, "generationConfig") or {}
        modalities = _get(generation, "responseModalities") or ["AUDIO"]
        session.text_only = [str(each).upper() for each in modalities] == ["TEXT"]
        detection = _get(realtime, "automaticActivityDetection") or {}
        session.vad = not _get(detection, "disabled")
        session.interrupt_response = str(handling).upper() != "NO_INTERRUPTION"
        session.turn_waits = True  # (a turn ended over a reply let go on: answered after it)
        silence = _get(detection, "silenceDurationMs")
        if silence is not None:
            session.silence_ms = int(silence)
        session.input_rate = 16000
        self._transcribe_input = _get(setup, "inputAudioTranscription") is not None
        self._transcribe_output = _get(setup, "outputAudioTranscription") is not None
        self._set_up = True
        session.raw({"setupComplete": {}})

    def _realtime(self, session: LiveSession, given: Mapping[str, Any]) -> None:
        marks = [name for name in ("activityStart", "activityEnd") if _get(given, name) is not None]
        if marks and session.vad:
            session.error(
                "invalid_argument",
                f"{_snake(marks[0])} can only be sent when automatic activity detection is "
                "disabled (realtime_input_config.automatic_activity_detection.disabled).",
                fatal=True,
            )
            return
        if "activityStart" in marks and self._replying and session.interrupt_response:
            session.cancel_reply()  # (the user barges in: the model's turn is interrupted)
        blobs = []
        audio = _get(given, "audio")
        if isinstance(audio, Mapping):
            blobs.append(audio)
        chunks = _get(given, "mediaChunks")
        if isinstance(chunks, list):
            blobs += [chunk for chunk in chunks if isinstance(chunk, Mapping)]
        for blob in blobs:
            mime = str(_get(blob, "mimeType") or "")
            try:
                data = _decoded(str(_get(blob, "data") or ""))
            except (binascii.Error, ValueError):
                session.error("invalid_argument", "Blob data is not valid base64.", fatal=True)
                return
            if mime.startswith("audio/pcm"):
                rate = mime.partition("rate=")[2]
                if rate:
                    session.input_rate = int(rate)
                session.append_audio(data)
        text = _get(given, "text")
        if isinstance(text, str):
            session.user_text(text)
            session.reply_after()  # (a reply under way: once it ends)
        if _get(given, "audioStreamEnd") and session.speaking:
            session.commit()
            session.reply_after()
        elif "activityEnd" in marks:
            session.commit()
            session.reply_after()  # (NO_INTERRUPTION: once the model's turn ends)

    def _content(self, session: LiveSession, content: Mapping[str, Any]) -> None:
        if self._replying:  # (client content cuts the model's turn short, whatever the handling)
            session.cancel_reply()
        turns = _get(content, "turns") or []
        for turn in turns if isinstance(turns, list) else [turns]:
            if not isinstance(turn, Mapping):
                continue
            parts = _get(turn, "parts") or []
            text = " ".join(
                str(_get(part, "text") or "") for part in parts if isinstance(part, Mapping)
            )
            role = "assistant" if _get(turn, "role") == "model" else "user"
            session.add_item(
                {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}
            )
        if _get(content, "turnComplete"):
            session.reply_after()

    def _tool_response(self, session: LiveSession, given: Mapping[str, Any]) -> None:
        responses = _get(given, "functionResponses") or []
        answers = 0  # (the turns whose calls it answers the last of; 1 for calls of none)
        alone = False
        for response in responses if isinstance(responses, list) else [responses]:
            call_id = str(_get(response, "id"))
            if not session.tool_output(
                call_id, json.dumps(_get(response, "response"), sort_keys=True)
            ):
                return
            turn = next(
                (each for each, calls in self._pending_calls.items() if call_id in calls), None
            )
            if turn is None:
                alone = True
                continue
            self._pending_calls[turn].discard(call_id)
            if not self._pending_calls[turn]:
                del self._pending_calls[turn]
                answers += 1
        for _ in range(answers + alone):
            session.reply_after()  # (a reply under way: once it ends)

    def render(self, session: LiveSession, event: LiveEvent) -> list[dict[str, Any]]:
        """Gemini's server messages for ``event`` (none for what it does not tell)."""
        if isinstance(event, AudioOut):
            out: list[dict[str, Any]] = []
            if event.text_only:
                if event.transcript:
                    out.append(
                        {"serverContent": {"modelTurn": {"parts": [{"text": event.transcript}]}}}
                    )
                return out
            if event.audio:
                blob = {
                    "mimeType": f"audio/pcm;rate={session.output_rate}",
                    "data": base64.b64encode(event.audio).decode(),
                }
                out.append({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
            if event.transcript and self._transcribe_output:
                out.append({"serverContent": {"outputTranscription": {"text": event.transcript}}})
            return out
        if isinstance(event, UserTurn | Transcribed):
            told = isinstance(event, Transcribed) or event.transcribed
            if not told or event.transcript is None or not self._transcribe_input:
                return []
            pieces = event.pieces or (event.transcript,)  # (the script's pieces, else whole)
            told_in: list[dict[str, Any]] = [{"text": piece} for piece in pieces]
            told_in[-1]["finished"] = True  # (the last piece ends the turn's words)
            return [{"serverContent": {"inputTranscription": words}} for words in told_in]
        if isinstance(event, CallOut):
            call = {"id": event.call_id, "name": event.call.name, "args": event.call.input()}
            self._told_calls.append(call)
            self._pending_calls.setdefault(event.response_id, set()).add(event.call_id)
            if not event.last:
                return []
            calls, self._told_calls = self._told_calls, []
            return [{"toolCall": {"functionCalls": calls}}]
        if isinstance(event, ReplyStart):
            self._replying = True
            return []
        if isinstance(event, ReplyEnd):
            self._replying = False
            if event.status == "failed":  # (Gemini tells no failed turn: it closes, 1011)
                return []
            usage = {"usageMetadata": _usage(event.usage)}
            if event.status == "cancelled":
                out = [{"serverContent": {"interrupted": True}}]
                pending = self._pending_calls.pop(event.response_id, set())
                withdrawn = [call.call_id for call in event.calls if call.call_id in pending]
                if withdrawn:  # (its calls not answered yet: not to be run, nor answered)
                    out.append({"toolCallCancellation": {"ids": withdrawn}})
                # (an interrupted turn completes too: interrupted, then turnComplete)
                out.append({"serverContent": {"turnComplete": True}})
                return [*out, usage]
            return [
                {"serverContent": {"generationComplete": True}},
                {"serverContent": {"turnComplete": True}},
                usage,
            ]
        return []  # speech edges, items, the reply's start, truncations: not told


def _decoded(text: str) -> bytes:
    """Base64 in either alphabet (the SDK writes the URL-safe one), padded or not."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _usage(usage: LiveUsage) -> dict[str, Any]:
    """A reply's ``usageMetadata``: its counts by modality (of the prompt, the response and
    the cached tokens) list those that had tokens, as the API's do; a total of 0 and a list
    that would be empty are left out, as protobuf's JSON leaves out zeros."""
    prompt = usage.input_text + usage.input_audio
    response = usage.output_text + usage.output_audio
    totals = (
        ("promptTokenCount", prompt),
        ("responseTokenCount", response),
        ("totalTokenCount", prompt + response),
        ("cachedContentTokenCount", usage.cached + usage.cached_audio),
    )
    told: dict[str, Any] = {name: count for name, count in totals if count}
    if not usage.by_modality:
        return told
    for name, text, audio in (
        ("promptTokensDetails", usage.input_text, usage.input_audio),
        ("responseTokensDetails", usage.output_text, usage.output_audio),
        ("cacheTokensDetails", usage.cached, usage.cached_audio),
    ):
        listed = [
            {"modality": modality, "tokenCount": count}
            for modality, count in (("TEXT", text), ("AUDIO", audio))
            if count
        ]
        if listed:
            told[name] = listed
    return told
