"""Realtime sessions through the call cache: recorded as they go, replayed with no server.

Where a :class:`~miniagents.ext.llm.cache.CallCache` is active (``with cache.active():``,
or the testing kit's pytest plugin), a session is named by its setup (provider, model,
instructions, tools, voice, modality, turn detection, extra options, the provider's own
settings that the API is sent: :func:`session_request`)
and kept in the cache's store as a recorded call whose events are the session's, in order,
each a text: ``<`` and the JSON of an event the API sent (its audio as base64: replayed byte
for byte), or ``>`` and what the session sent (its kind and a digest of it: the input is
checked, not kept), then a ``Finish``::

    ['<{"type": "SpeechStarted", "item_id": "item_1"}', '>audio:5f1c...', ...,
     '<{"type": "AudioOut", "item_id": "item_3", "audio": "AAD..."}', ..., Finish("session")]

A replay gives the recorded events in order, each once the session has sent what it had
sent before it in the recording (so a reply to a tool's output comes after the output);
each thing the session sends must be one the recording holds (else an
``LLMCacheMissError``: the input differs); a truncation's position is the player's and is
not checked. A session that failed, or one of whose sends failed or was cut short (the
drain's close over a tool's output being sent), is not stored: a replay could not give it
back. Replayed replies cost nothing (their tokens are kept). The modes are the
cache's: ``read_through`` records a session it has not, ``record`` records every one,
``replay`` fails a session it has not with an ``LLMCacheMissError`` naming the nearest.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, NoReturn

from miniagents.ext.llm.cache.calls import CallCache
from miniagents.ext.llm.cache.keys import (
    canonical_options,
    request_diff,
    request_key,
    similarity,
)
from miniagents.ext.llm.cache.stores import RecordedCall
from miniagents.ext.llm.errors import LLMCacheMissError, LLMConfigurationError
from miniagents.ext.llm.provider import Finish
from miniagents.ext.llm.routing import llm_routes
from miniagents.ext.realtime import provider as events_module
from miniagents.ext.realtime.pieces import RealtimeUsage
from miniagents.ext.realtime.provider import (
    InputEnd,
    ObservedSession,
    RealtimeEvent,
    RealtimeLink,
    RealtimeOptions,
    RealtimeProvider,
    SessionSetup,
)
from miniagents.messages.image import ImagePart

__all__ = [
    "connect_through_cache",
    "discard_recording",
    "observed_session",
    "session_key",
    "session_request",
]

_CANDIDATES = 50
"""Recorded sessions compared with a missing one, at most, to find the nearest."""


def session_request(
    provider: RealtimeProvider[Any], setup: SessionSetup, *, stable: bool = True
) -> dict[str, Any]:
    """The request that names a session in a call cache (JSON values).

    Its tools' parameters and its extra options are written as a call's are
    (``canonical_options``): a set as its items in a fixed order, a dataclass as its
    fields, the same in every process. The extra options (``extra_session``) are kept apart,
    under ``options.extra_session``, so that one named as a field of the setup (``voice``,
    ``vad``) cannot stand in for that field's value in the key; so are the provider's own
    settings that the API is sent (``provider_options``: OpenAI's ``transcription_model``),
    under ``options.provider_options``, those given (a value that is the same session as
    ``None``, its ``none_means``, is left out: see ``session_options``). The request holds
    every setting that changes what the API answers, and none that only says how to connect
    (the client, the WebSocket's options) or what the session does on its side (its budget,
    its drain timeout); ``interrupt`` where it does nothing (``vad=False``, with a provider
    whose ``interrupts_without_vad`` is ``False``) is keyed as its default, ``True``, so
    that both values have the key a recording made with the default has.

    Args:
        provider: The session's provider.
        setup: The session's setup.
        stable: Refuse a value whose ``repr`` names its address in memory (``False``: the
            request as it is, to show it).

    Raises:
        LLMConfigurationError: with ``stable``, for an option or a tool's parameter whose
            ``repr`` names its address in memory (its key would be another in every
            process: never replayed).
    """
    subject = "a realtime session"
    extra = canonical_options(setup.options, stable=stable, subject=subject, label="session option")
    tools = canonical_options(
        {tool.name: tool.parameters for tool in setup.tools},
        stable=stable,
        subject=subject,
        label="tool",
    )
    options: dict[str, Any] = {
        "voice": setup.voice,
        "modality": setup.modality,
        "transcribe_input": setup.transcribe_input,
        "vad": setup.vad,
        "silence_ms": setup.silence_ms,
        "interrupt": setup.interrupt or not _interrupts(provider, setup),
    }
    if extra:  # (none: the key of a session recorded before they were kept apart)
        options["extra_session"] = extra
    own = canonical_options(
        setup.provider_options, stable=stable, subject=subject, label="session option"
    )
    if own:  # (none: the key of a session recorded before they were keyed)
        options["provider_options"] = own
    return {
        "provider": provider.provider_name,
        "model": setup.model,
        "realtime": True,
        "system": setup.instructions,
        "messages": [],
        "tools": [
            {"name": tool.name, "description": tool.description, "parameters": tools[tool.name]}
            for tool in setup.tools
        ],
        "options": options,
        "output_format": None,
    }


def _interrupts(provider: RealtimeProvider[Any], setup: SessionSetup) -> bool:
    """Whether the user's speech can cut the model's reply short in ``setup``'s session.

    With the API's voice detection, it can; without, only where the provider does not say
    otherwise (its ``interrupts_without_vad``: Gemini's start of the user's audio cuts the
    model short, OpenAI without turn detection cuts nothing).
    """
    return setup.vad or getattr(provider, "interrupts_without_vad", True) is not False


def session_key(
    provider: RealtimeProvider[Any], setup: SessionSetup, namespace: str = ""
) -> tuple[dict[str, Any], str]:
    """The request of a session (:func:`session_request`) and its key in a call cache.

    Raises:
        LLMConfigurationError: for a value whose ``repr`` names its address in memory.
    """
    request = session_request(provider, setup)
    return request, request_key(request, namespace)


def observed_session(provider: RealtimeProvider[Any], setup: SessionSetup) -> ObservedSession:
    """The session as the LLM call observers are given it: its recording's request and key.

    The key is the one the active call cache keeps (or would keep) the session by, in its
    namespace; with no cache active, in a cache of namespace ``""``.
    """
    cache = _active_cache()
    namespace = "" if cache is None else cache.namespace
    try:
        request, key = session_key(provider, setup, namespace)
    except LLMConfigurationError as refused:
        shown = session_request(provider, setup, stable=False)
        return ObservedSession(provider, shown, None, str(refused))
    return ObservedSession(provider, request, key)


def _active_cache() -> CallCache | None:
    """The call cache the calls made here go through, if one is active."""
    return next((route for route in llm_routes() if isinstance(route, CallCache)), None)


async def connect_through_cache(
    provider: RealtimeProvider[Any], setup: SessionSetup, options: RealtimeOptions
) -> RealtimeLink:
    """The session's link: replayed or recorded by the active call cache, else the API's.

    Raises:
        LLMCacheMissError: a replay-only cache has no recording of the session.
    """
    cache = _active_cache()
    if cache is None:
        return await provider.aconnect(setup, options)
    request, key = session_key(provider, setup, cache.namespace)
    if cache.mode != "record":
        recorded = await cache.store.aget(key)
        if recorded is not None and (
            cache.max_age is None or time.time() - recorded.recorded_at <= cache.max_age
        ):
            return _Replay(recorded)
    if cache.mode == "replay":
        await _amiss(cache, key, request)
    return _Recording(await provider.aconnect(setup, options), cache, key, request)


def discard_recording(link: RealtimeLink) -> None:
    """Keep no recording of the session of ``link``: it failed (by a task of its own).

    A link that records nothing (the API's own, a replay) is left as it is. Called before
    the session closes the link: the link's events then end as if the session had ended
    well, and its recording would be stored.
    """
    if isinstance(link, _Recording):
        link.discard()


async def _amiss(cache: CallCache, key: str, request: dict[str, Any]) -> NoReturn:
    """Fail a session that a replay-only cache has no recording of.

    Raises:
        LLMCacheMissError: always, naming the nearest recording and the difference.
    """
    candidates = await cache.store.acandidates(
        str(request["provider"]), str(request["model"]), _CANDIDATES
    )
    nearest = max(candidates, key=lambda each: similarity(each.request, request), default=None)
    diff = "" if nearest is None else request_diff(nearest.request, request)
    found = (
        "It has no recording at all."
        if nearest is None
        else f"The nearest recording ({nearest.key[:12]}) differs so:\n{diff}\n"
    )
    raise LLMCacheMissError(
        f"The call cache replays only, and has no recording of a realtime session with "
        f"{request['model']!r} ({request['provider']}). {found}Record it: run the session "
        "with the cache in mode 'record' or 'read_through', or undo the change of its setup.",
        key,
        None if nearest is None else nearest.key,
        diff,
    )


# -- the events as text ----------------------------------------------------------------------


def encoded(event: RealtimeEvent) -> str:
    """An event as the JSON a recording keeps (bytes as base64)."""
    shown: dict[str, Any] = {"type": type(event).__name__}
    for item in dataclasses.fields(event):
        value = getattr(event, item.name)
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        elif isinstance(value, RealtimeUsage):
            value = value.model_dump(exclude_none=True)
        shown[item.name] = value
    return json.dumps(shown, separators=(",", ":"))


def decoded(text: str) -> RealtimeEvent:
    """The event that :func:`encoded` wrote."""
    shown = json.loads(text)
    kind = getattr(events_module, shown.pop("type"))
    if "audio" in shown:
        shown["audio"] = base64.b64decode(shown["audio"])
    if shown.get("usage") is not None:
        shown["usage"] = RealtimeUsage(**shown["usage"])
    event: RealtimeEvent = kind(**shown)
    return event


def _digest(*parts: object) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part if isinstance(part, bytes) else repr(part).encode())
        hashed.update(b"\0")
    return hashed.hexdigest()[:16]


def _images(images: Sequence[ImagePart]) -> list[str]:
    return [image.data_url if image.data is not None else str(image.url) for image in images]


# -- recording ---------------------------------------------------------------------------------


class _Recording:
    """The API's link, its events and the session's sends written down (see the module)."""

    def __init__(
        self, link: RealtimeLink, cache: CallCache, key: str, request: dict[str, Any]
    ) -> None:
        self._link = link
        self._cache = cache
        self._key = key
        self._request = request
        self.reports_speech = link.reports_speech
        self.replies_to_tool_outputs = link.replies_to_tool_outputs
        self.replayed = False
        flags = {"reports_speech": self.reports_speech, "replies": self.replies_to_tool_outputs}
        self._kept: list[str] = ["#" + json.dumps(flags)]
        self._ended_well = False
        self._closed = False
        self._stored = False
        self._discarded = False

    async def _sent(self, digest: str, send: Awaitable[None]) -> None:
        """Send (``send``), kept as sent where it began, among the events.

        A send that failed, or was cut short (the drain's close over a tool's output, the
        session's end), makes the session one no replay can give back (its send there is
        instant, and done): it is not stored.
        """
        self._kept.append(">" + digest)
        try:
            await send
        except BaseException:
            self._discarded = True
            raise

    async def asend_audio(self, audio: bytes) -> None:
        await self._sent("audio:" + _digest(audio), self._link.asend_audio(audio))

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        digest = "text:" + _digest(text, *_images(images))
        await self._sent(digest, self._link.asend_text(text, images))

    async def asend_images(self, images: Sequence[ImagePart]) -> None:
        await self._sent("images:" + _digest(*_images(images)), self._link.asend_images(images))

    async def asend_item(self, role: str, text: str) -> None:
        await self._sent("item:" + _digest(role, text), self._link.asend_item(role, text))

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        digest = "output:" + _digest(call_id, name, output)
        await self._sent(digest, self._link.asend_tool_output(call_id, name, output))

    async def arespond(self) -> None:
        await self._sent("respond", self._link.arespond())

    async def atruncate(self, item_id: str, played_ms: int) -> None:
        await self._sent("truncate:" + item_id, self._link.atruncate(item_id, played_ms))

    async def aend_input(self) -> InputEnd:
        ended = await self._link.aend_input()
        self._kept.append(">end:" + ended)
        return ended

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        async for event in self._link.events():
            self._kept.append("<" + encoded(event))
            yield event
        self._ended_well = True  # (the session closed it: a failure never gets here)
        await self._store()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._link.aclose()
            await self._store()

    def discard(self) -> None:
        """Never store this session: it failed (see :func:`discard_recording`)."""
        self._discarded = True

    async def _store(self) -> None:
        """Keep the session once it has closed and its events ended well (not if it failed,
        nor if a send of it did)."""
        if self._closed and self._ended_well and not self._stored and not self._discarded:
            self._stored = True
            ended = Finish("session")
            recorded = RecordedCall(self._key, self._request, (*self._kept, ended), time.time())
            await self._cache.store.aput(recorded)


# -- replaying ----------------------------------------------------------------------------------


class _Replay:
    """A recorded session given back, with no server (see the module)."""

    replayed = True

    def __init__(self, recorded: RecordedCall) -> None:
        self._items = [item for item in recorded.events if isinstance(item, str)]
        flags = (
            json.loads(self._items[0][1:]) if self._items[:1] and self._items[0][0] == "#" else {}
        )
        self.reports_speech = bool(flags.get("reports_speech", True))
        self.replies_to_tool_outputs = bool(flags.get("replies", False))
        self._left = Counter(item[1:] for item in self._items if item.startswith(">"))
        self._key = recorded.key
        self._sends = 0
        self._at = 0  # the item the events have come to
        self._changed = asyncio.Event()
        self._closed = False

    def _sent(self, digest: str, *, checked: bool = True) -> None:
        kind = digest.split(":", 1)[0]
        match = digest
        if not checked and self._left[digest] <= 0:  # (any of its kind not used up yet)
            match = next(
                (
                    each
                    for each, left in self._left.items()
                    if left > 0 and each.split(":", 1)[0] == kind
                ),
                digest,
            )
        if self._left[match] <= 0:
            raise LLMCacheMissError(
                f"The realtime session sent what its recording does not hold ({kind}, its "
                f"send number {self._sends + 1}): its input differs from the recorded "
                "session's. Record the session again (the cache in mode 'record').",
                self._key,
                self._key,
                digest,
            )
        self._left[match] -= 1
        self._sends += 1
        self._changed.set()

    async def asend_audio(self, audio: bytes) -> None:
        self._sent("audio:" + _digest(audio))

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        self._sent("text:" + _digest(text, *_images(images)))

    async def asend_images(self, images: Sequence[ImagePart]) -> None:
        self._sent("images:" + _digest(*_images(images)))

    async def asend_item(self, role: str, text: str) -> None:
        self._sent("item:" + _digest(role, text))

    async def asend_tool_output(self, call_id: str, name: str, output: str) -> None:
        self._sent("output:" + _digest(call_id, name, output))

    async def arespond(self) -> None:
        self._sent("respond")

    async def atruncate(self, item_id: str, played_ms: int) -> None:
        self._sent("truncate:" + item_id, checked=False)

    async def aend_input(self) -> InputEnd:
        ended = next((each for each in self._left if each.startswith("end:")), "end:no_turn")
        self._sent(ended)
        position = self._position_of_send(self._sends)
        while self._at < position and not self._closed:  # its events before, taken
            self._changed.clear()
            await self._changed.wait()
        found = ended.split(":", 1)[1]
        return "ask" if found == "ask" else "replies" if found == "replies" else "no_turn"

    def _position_of_send(self, number: int) -> int:
        """Where the ``number``-th send is among the recorded items."""
        seen = 0
        for index, item in enumerate(self._items):
            if item.startswith(">"):
                seen += 1
                if seen == number:
                    return index
        return len(self._items)

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        sends = 0
        for index, item in enumerate(self._items):
            self._at = index  # (the session took every event before: it asks for the next)
            self._changed.set()
            if item.startswith("#"):
                continue
            if item.startswith(">"):
                sends += 1
                while self._sends < sends and not self._closed:
                    self._changed.clear()
                    await self._changed.wait()
            elif not self._closed:
                yield decoded(item[1:])
            if self._closed:
                return
        self._at = len(self._items)
        self._changed.set()
        while not self._closed:  # the recording ends: a quiet API, until the session closes
            self._changed.clear()
            await self._changed.wait()

    async def aclose(self) -> None:
        self._closed = True
        self._changed.set()
