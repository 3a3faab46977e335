"""The OpenAI Realtime API's events, for the fake realtime session (``_live``).

The client's events (``session.update``, ``input_audio_buffer.append``,
``conversation.item.create``, ``conversation.item.truncate``, ``response.create``,
``response.cancel``, ...) become calls of the session; what the session does is written as
the API's server events (the GA names of openai 2.x and later:
``response.output_audio.delta``, ``response.output_audio_transcript.delta``,
``conversation.item.added``, ...), each with its ``event_id``. A client event the API
would refuse gets its ``error`` event (``invalid_request_error``, with the client event's
``event_id``) and the session goes on, as the API's does. A fatal error (a scripted
``speak(error=...)``) fails its reply (``response.created``, then ``response.done`` of
status ``failed`` with the error in its ``status_details``; not for ``session_expired``,
which is no reply's), then is its ``error`` event and the close of the connection, as the
API closes it after one: code 1001 (going away) for ``session_expired`` (an
``invalid_request_error`` that names no client event), else 1011 (a ``server_error``); the
record's ``outcome`` is then ``"failed"``.

**What a ``session.update`` may set.** The fake refuses the whole update (nothing of it
applied), as the API does, with an ``invalid_request_error`` naming the field (``param``):

- a field the API does not know (``unknown_parameter``, "Unknown parameter:
  'session.temperature'."), at the session's level and in its ``audio`` (``_FIELDS``);
- a value it does not take (``invalid_value``): ``type`` (only ``"realtime"``),
  ``output_modalities`` (``["audio"]`` or ``["text"]``), ``audio.output.voice`` (one of the
  API's built-in voices, ``_VOICES``) and ``audio.input.turn_detection`` (``None``, or of
  the type ``"server_vad"`` or ``"semantic_vad"``);
- a voice once the model has spoken in the session (``cannot_update_voice``: "Cannot
  update a conversation's voice if assistant audio is present."), which the API says
  naming neither the event nor the field, and after which the session goes on.

The values of the fields it knows otherwise are taken as given.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from miniagents.testing._live import (
    AudioOut,
    CallOut,
    ItemAdded,
    LiveEvent,
    LiveSession,
    LiveUsage,
    ProtocolError,
    ReplyEnd,
    ReplyStart,
    SpeechEdge,
    Transcribed,
    Truncated,
    UserTurn,
)
from miniagents.utils.nested import merged

__all__ = ["OpenAIRealtimeWire"]

_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse")
"""The voices the fake takes in ``audio.output.voice`` (the API's built-in voices)."""

_TURN_DETECTIONS = ("server_vad", "semantic_vad")

_FIELDS: dict[str, frozenset[str]] = {
    "session": frozenset(
        {
            "type",
            "model",
            "instructions",
            "output_modalities",
            "audio",
            "include",
            "tracing",
            "tools",
            "tool_choice",
            "max_output_tokens",
            "truncation",
            "prompt",
        }
    ),
    "session.audio": frozenset({"input", "output"}),
    "session.audio.input": frozenset(
        {"format", "noise_reduction", "transcription", "turn_detection"}
    ),
    "session.audio.input.format": frozenset({"type", "rate"}),
    "session.audio.input.noise_reduction": frozenset({"type"}),
    "session.audio.input.transcription": frozenset({"model", "language", "prompt"}),
    "session.audio.input.turn_detection": frozenset(
        {
            "type",
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "idle_timeout_ms",
            "eagerness",
            "create_response",
            "interrupt_response",
        }
    ),
    "session.audio.output": frozenset({"format", "voice", "speed"}),
    "session.audio.output.format": frozenset({"type", "rate"}),
}
"""The fields of a ``session.update``'s ``session`` the fake knows, by where they are (the
API's realtime session: any other is an ``unknown_parameter``)."""

_DEFAULT_SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "instructions": "",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
    },
    "tools": [],
    "tool_choice": "auto",
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class OpenAIRealtimeWire:
    """The OpenAI Realtime API's side of a fake session (see the module)."""

    provider = "openai_realtime"

    def __init__(self) -> None:
        self._events = 0
        self._session = merged(_DEFAULT_SESSION, {})
        self._transcribe = False
        self._outputs: dict[str, int] = {}
        self._cancelling = False  # (the client's response.cancel ends the reply under way)

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._events += 1
        return {"type": kind, "event_id": f"event_fake{self._events}", **fields}

    def _output_item(
        self, kind: str, response_id: str, output_index: int, item: dict[str, Any]
    ) -> dict[str, Any]:
        """A ``response.output_item.added`` or ``.done`` event (``kind``) of ``item``."""
        return self._event(
            f"response.output_item.{kind}",
            response_id=response_id,
            output_index=output_index,
            item=item,
        )

    def close_code(self, error: ProtocolError) -> int:
        """1001 (going away) for ``session_expired``, else 1011 (an error of the server)."""
        return 1001 if error.code == "session_expired" else 1011

    def opened(self, session: LiveSession) -> list[dict[str, Any]]:
        """``session.created``, with the session's defaults."""
        return [
            self._event("session.created", session={"id": session.new_id("sess"), **self._session})
        ]

    # -- the client's events -----------------------------------------------------------------

    def receive(self, session: LiveSession, message: dict[str, Any]) -> None:
        """Read one client event into calls of ``session``."""
        kind = message.get("type")
        event_id = message.get("event_id")
        if kind == "session.update":
            given = message.get("session") or {}
            refused = _refused_session(given)
            if refused is not None:
                code, param, message_text = refused
                session.error(code, message_text, event_id, param=param)
                return
            if _voice_of(given) is not None and _spoken(session):
                session.error(  # (the API names neither the event nor the field)
                    "cannot_update_voice",
                    "Cannot update a conversation's voice if assistant audio is present.",
                )
                return
            self._update(session, given)
        elif kind == "input_audio_buffer.append":
            try:
                audio = base64.b64decode(str(message.get("audio", "")), validate=True)
            except (binascii.Error, ValueError):
                session.error("invalid_value", "The audio is not valid base64.", event_id)
                return
            session.append_audio(audio)
        elif kind == "input_audio_buffer.commit":
            session.commit()
        elif kind == "input_audio_buffer.clear":
            session.raw(self._event("input_audio_buffer.cleared"))
        elif kind == "conversation.item.create":
            item = message.get("item")
            if not isinstance(item, dict):
                session.error(
                    "missing_required_parameter", "Missing required parameter: 'item'.", event_id
                )
                return
            session.add_item(item, event_id)
        elif kind == "conversation.item.truncate":
            session.truncate(
                str(message.get("item_id")), int(message.get("audio_end_ms", -1)), event_id
            )
        elif kind == "conversation.item.delete":
            session.raw(self._event("conversation.item.deleted", item_id=message.get("item_id")))
        elif kind == "response.create":
            session.start_reply(event_id)
        elif kind == "response.cancel":
            self._cancelling = True
            try:
                session.cancel_reply(event_id)
            finally:
                self._cancelling = False
        elif kind == "output_audio_buffer.clear":
            session.raw(self._event("output_audio_buffer.cleared"))
        else:
            session.error(
                "invalid_value",
                f"Invalid value: '{kind}'. Supported values are the client events.",
                event_id,
            )

    def _update(self, session: LiveSession, given: dict[str, Any]) -> None:
        self._session = merged(self._session, given)
        record = session.record
        record.note(lambda: setattr(record, "config", self._session))
        audio_in = self._session.get("audio", {}).get("input", {})
        detection = audio_in.get("turn_detection")
        session.vad = isinstance(detection, dict)
        if isinstance(detection, dict):
            session.create_response = bool(detection.get("create_response", True))
            session.interrupt_response = bool(detection.get("interrupt_response", True))
            session.silence_ms = int(detection.get("silence_duration_ms", 500))
        self._transcribe = bool(audio_in.get("transcription"))
        session.text_only = self._session.get("output_modalities") == ["text"]
        session.raw(self._event("session.updated", session=self._session))

    # -- the session's events ----------------------------------------------------------------

    def render(self, session: LiveSession, event: LiveEvent) -> list[dict[str, Any]]:
        """The API's server events for ``event``."""
        if isinstance(event, AudioOut):
            return self._audio(event)
        if isinstance(event, SpeechEdge):
            if event.started:
                return [
                    self._event(
                        "input_audio_buffer.speech_started",
                        audio_start_ms=event.ms,
                        item_id=event.item_id,
                    )
                ]
            return [
                self._event(
                    "input_audio_buffer.speech_stopped",
                    audio_end_ms=event.ms,
                    item_id=event.item_id,
                )
            ]
        if isinstance(event, UserTurn):
            return self._user_turn(event)
        if isinstance(event, Transcribed):
            return self._transcribed(event.item_id, event.transcript)
        if isinstance(event, ItemAdded):
            return self._added(event)
        if isinstance(event, ReplyStart):
            self._outputs = {}
            response = {
                "id": event.response_id,
                "object": "realtime.response",
                "status": "in_progress",
                "output": [],
            }
            return [self._event("response.created", response=response)]
        if isinstance(event, CallOut):
            return self._call(event)
        if isinstance(event, ReplyEnd):
            return self._end(event)
        if isinstance(event, Truncated):
            return [
                self._event(
                    "conversation.item.truncated",
                    item_id=event.item_id,
                    content_index=0,
                    audio_end_ms=event.ms,
                )
            ]
        assert isinstance(event, ProtocolError)
        error = {
            "type": "invalid_request_error",
            "code": event.code,
            "message": event.message,
            "param": event.param,
            "event_id": event.event_id,
        }
        if event.fatal and event.code != "session_expired":
            error["type"] = "server_error"
        return [self._event("error", error=error)]

    def _user_turn(self, event: UserTurn) -> list[dict[str, Any]]:
        item = {
            "id": event.item_id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        out = [
            self._event(
                "input_audio_buffer.committed", item_id=event.item_id, previous_item_id=None
            ),
            self._event("conversation.item.added", item=item, previous_item_id=None),
            self._event("conversation.item.done", item=item, previous_item_id=None),
        ]
        if event.transcribed:
            out += self._transcribed(event.item_id, event.transcript or "")
        return out

    def _transcribed(self, item_id: str, transcript: str) -> list[dict[str, Any]]:
        """The transcription of a user item's audio (none if the session asked for none)."""
        if not self._transcribe:
            return []
        return [
            self._event(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=0,
                transcript=transcript,
                usage={"type": "duration", "seconds": 1.0},
            )
        ]

    def _added(self, event: ItemAdded) -> list[dict[str, Any]]:
        item = {"id": event.item_id, "status": "completed", **event.item}
        return [
            self._event(
                "conversation.item.added", item=item, previous_item_id=event.previous_item_id
            ),
            self._event(
                "conversation.item.done", item=item, previous_item_id=event.previous_item_id
            ),
        ]

    def _index(self, item_id: str) -> int:
        return self._outputs.setdefault(item_id, len(self._outputs))

    def _audio(self, event: AudioOut) -> list[dict[str, Any]]:
        where = {
            "response_id": event.response_id,
            "item_id": event.item_id,
            "output_index": self._index(event.item_id),
            "content_index": 0,
        }
        out: list[dict[str, Any]] = []
        if event.first:
            item = _message_item(event.item_id, "in_progress", [])
            part = (
                {"type": "text", "text": ""}
                if event.text_only
                else {"type": "audio", "transcript": ""}
            )
            out.append(
                self._output_item("added", event.response_id, self._index(event.item_id), item)
            )
            out.append(self._event("response.content_part.added", **where, part=part))
        if event.text_only:
            if event.transcript:
                out.append(
                    self._event("response.output_text.delta", **where, delta=event.transcript)
                )
            return out
        if event.audio:
            out.append(self._event("response.output_audio.delta", **where, delta=_b64(event.audio)))
        if event.transcript:
            out.append(
                self._event(
                    "response.output_audio_transcript.delta", **where, delta=event.transcript
                )
            )
        return out

    def _call(self, event: CallOut) -> list[dict[str, Any]]:
        index = self._index(event.item_id)
        item = {
            "id": event.item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": event.call.name,
            "call_id": event.call_id,
            "arguments": "",
        }
        where = {
            "response_id": event.response_id,
            "item_id": event.item_id,
            "output_index": index,
            "call_id": event.call_id,
        }
        out = [self._output_item("added", event.response_id, index, item)]
        out += [
            self._event("response.function_call_arguments.delta", **where, delta=delta)
            for delta in event.call.deltas()
        ]
        out.append(
            self._event(
                "response.function_call_arguments.done",
                **where,
                name=event.call.name,
                arguments=event.call.text,
            )
        )
        done = {**item, "status": "completed", "arguments": event.call.text}
        out.append(self._output_item("done", event.response_id, index, done))
        return out

    def _end(self, event: ReplyEnd) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for item_id, transcript in event.transcripts.items():
            where = {
                "response_id": event.response_id,
                "item_id": item_id,
                "output_index": self._index(item_id),
                "content_index": 0,
            }
            if event.text_only:
                part = {"type": "text", "text": transcript}
                out.append(self._event("response.output_text.done", **where, text=transcript))
            else:
                part = {"type": "audio", "transcript": transcript}
                out.append(self._event("response.output_audio.done", **where))
                out.append(
                    self._event(
                        "response.output_audio_transcript.done", **where, transcript=transcript
                    )
                )
            out.append(self._event("response.content_part.done", **where, part=part))
            status = "completed" if event.status == "completed" else "incomplete"
            item = _message_item(item_id, status, [part])
            out.append(self._output_item("done", event.response_id, self._index(item_id), item))
            items.append(item)
        for call in event.calls:
            items.append(
                {
                    "id": call.item_id,
                    "type": "function_call",
                    "status": "completed",
                    "name": call.call.name,
                    "call_id": call.call_id,
                    "arguments": call.call.text,
                }
            )
        response: dict[str, Any] = {
            "id": event.response_id,
            "object": "realtime.response",
            "status": event.status,
            "status_details": _status_details(event, self._cancelling),
            "output": items,
            "usage": _usage(event.usage),
        }
        out.append(self._event("response.done", response=response))
        return out


def _refused_session(given: Any) -> tuple[str, str, str] | None:
    """Why the API refuses the ``session`` of a ``session.update``: its code, param, message.

    ``None`` if it takes it (see the module for the fields checked).
    """
    if not isinstance(given, dict):
        return "invalid_type", "session", "Invalid type for 'session': expected an object."
    unknown = _unknown_field(given, "session")
    if unknown is not None:
        return "unknown_parameter", unknown, f"Unknown parameter: '{unknown}'."
    checked: list[tuple[str, Any, tuple[Any, ...]]] = []
    if "type" in given:
        checked.append(("session.type", given["type"], ("realtime",)))
    if "output_modalities" in given:
        checked.append(
            ("session.output_modalities", given["output_modalities"], (["audio"], ["text"]))
        )
    audio = given.get("audio")
    audio = audio if isinstance(audio, dict) else {}
    output = audio.get("output")
    if isinstance(output, dict) and "voice" in output:
        checked.append(("session.audio.output.voice", output["voice"], _VOICES))
    audio_in = audio.get("input")
    detection = audio_in.get("turn_detection") if isinstance(audio_in, dict) else None
    if isinstance(detection, dict):
        checked.append(
            ("session.audio.input.turn_detection.type", detection.get("type"), _TURN_DETECTIONS)
        )
    elif detection is not None:
        checked.append(("session.audio.input.turn_detection", detection, (None,)))
    for param, value, allowed in checked:
        if value not in allowed:
            supported = ", ".join(json.dumps(each) for each in allowed)
            return (
                "invalid_value",
                param,
                (
                    f"Invalid value for '{param}': {json.dumps(value)}. "
                    f"Supported values are: {supported}."
                ),
            )
    return None


def _unknown_field(given: dict[str, Any], where: str) -> str | None:
    """The first field of ``given`` (at ``where``) the API does not know, with its path."""
    known = _FIELDS.get(where)
    if known is None:
        return None  # (a value the fake does not look into, as a tool's parameters)
    for name, value in given.items():
        path = f"{where}.{name}"
        if name not in known:
            return path
        if isinstance(value, dict):
            unknown = _unknown_field(value, path)
            if unknown is not None:
                return unknown
    return None


def _voice_of(given: dict[str, Any]) -> object:
    """The voice a ``session.update``'s ``session`` sets (``None``: it sets none)."""
    audio = given.get("audio")
    output = audio.get("output") if isinstance(audio, dict) else None
    return output.get("voice") if isinstance(output, dict) else None


def _spoken(session: LiveSession) -> bool:
    """Whether the model has spoken in ``session`` (an assistant item of audio)."""
    return any(item.role == "assistant" and item.kind == "audio" for item in session.items.values())


def _usage(usage: LiveUsage) -> dict[str, Any]:
    given = usage.input_text + usage.input_audio
    made = usage.output_text + usage.output_audio
    if not usage.by_modality:  # (the totals only)
        return {
            "total_tokens": given + made,
            "input_tokens": given,
            "output_tokens": made,
            "input_token_details": {"cached_tokens": usage.cached + usage.cached_audio},
        }
    return {
        "total_tokens": given + made,
        "input_tokens": given,
        "output_tokens": made,
        "input_token_details": {
            "text_tokens": usage.input_text,
            "audio_tokens": usage.input_audio,
            "image_tokens": 0,
            "cached_tokens": usage.cached + usage.cached_audio,
            "cached_tokens_details": {
                "text_tokens": usage.cached,
                "audio_tokens": usage.cached_audio,
                "image_tokens": 0,
            },
        },
        "output_token_details": {
            "text_tokens": usage.output_text,
            "audio_tokens": usage.output_audio,
        },
    }


def _message_item(item_id: str, status: str, content: list[Any]) -> dict[str, Any]:
    """An assistant's message item of a response."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def _status_details(event: ReplyEnd, client_cancelled: bool) -> dict[str, Any] | None:
    """A ``response.done``'s ``status_details``: why it did not complete.

    A failure's error; a cancelled reply's reason, ``client_cancelled`` if the client's
    ``response.cancel`` ended it, else ``turn_detected`` (the user's speech cut it short).
    """
    if event.status == "completed":
        return None
    if event.error is not None:
        error = {"type": "server_error", "code": event.error.code, "message": event.error.message}
        return {"type": event.status, "error": error}
    reason = "client_cancelled" if client_cancelled else "turn_detected"
    return {"type": event.status, "reason": reason}
