"""A run's events: the tuples a recorder queues, written in batches, read back as events.

A recorder's watches queue one tuple per event, made of what they hold (numbers, texts,
and the library's own objects); its writer's thread turns a whole batch into one chunk
(:func:`encode_batch`: the tuples pickled, each object written as the JSON value
:func:`_plain` makes of it), so that the program's loop does nothing per event but make a
tuple, and the writer little more than one C call per batch (pickled: a third of what
JSON costs it). A chunk is read back only as plain values (:func:`decode_batch`: its
loader makes nothing but lists, dicts, texts and numbers, and refuses a chunk naming
anything else), and served to the page as JSON. Each tuple is a JSON array, in order::

    ["node", id, parent, kind, name, t, extra]     an interaction (kind "agent") or a tool
                                                    call ("tool"; extra: its arguments, id)
    ["message", node, role, index, entered, t, message, error]
                                                    an input (role "input") or reply message
                                                    of a node, complete at t (entered: when
                                                    it entered, null if complete then);
                                                    message: its text (a plain Message), or
                                                    an object
    ["end", id, t, error, result]                   a node ended (a tool call: its result)
    ["call", id, node, t, request]                  a call of a model: {provider, model,
                                                    key, request}, the key the call cache's
                                                    (null, with "unkeyed": why, for a call
                                                    the cache cannot key); a reply of a
                                                    realtime session: the session's request
                                                    and its recording's key (its request
                                                    says "realtime": true)
    ["token", call, t, piece]                       a piece it streamed: a text, or a tool
                                                    call's start or arguments, a refusal
    ["call_end", id, t, finish, error]              it ended: {finish, cost_usd}
    ["decision", node, t, decision]                 a person decided a tool call

Times (``t``, ``entered``) are nanoseconds since the epoch (ints). A message is
``{"class", "text", "fields"?, "cut"?}`` (``cut``: the text's length, when it was longer
than :data:`MAX_TEXT`), an error ``{"type", "message"}``. :func:`event_of` reads a tuple
back as a :class:`RunEvent` (its times in seconds); the studio's page reads the arrays
themselves.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from miniagents.ext.llm.cache.keys import call_key, canonical_request
from miniagents.ext.llm.cache.stores import events_to_json
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.observing import innermost_provider, observed_options
from miniagents.ext.llm.pricing import finish_usage
from miniagents.ext.llm.provider import Finish, LLMCall, Refusal, ToolCallDelta, ToolCallStart
from miniagents.ext.realtime.provider import ObservedSession
from miniagents.ext.studio.errors import StudioStoreError
from miniagents.ext.tools.approval import ToolDecision
from miniagents.messages.message import Message

__all__ = [
    "MAX_TEXT",
    "CallEnded",
    "CallRequest",
    "RunEvent",
    "batch_json",
    "decode_batch",
    "encode_batch",
    "event_of",
]

MAX_TEXT = 200_000
"""The most characters of a message's text a recording keeps (the rest is cut, and said)."""


@dataclass(frozen=True)
class RunEvent:
    """One event of a run: its number (from 1), its time, its kind and what it holds."""

    seq: int
    t: float
    kind: str
    data: Mapping[str, Any]


class CallRequest:
    """A call's request, as queued: written as its provider, model, full request and key."""

    __slots__ = ("call", "provider")

    def __init__(self, provider: object, call: LLMCall) -> None:
        self.provider = provider
        self.call = call

    def as_json(self) -> dict[str, Any]:
        """The request, canonically, and its key: the call cache's (``call_key``).

        A call the cache cannot key (an option whose ``repr`` names its address in memory)
        is still shown: its request as it is, with no key (a fork cannot replay it) and
        ``unkeyed``, the cache's reason. A reply of a realtime session is written as its
        session, which a call cache records whole: the session's request and the key of its
        recording (``ObservedSession``), not a call's.

        A call's key is its key in a cache of namespace ``""`` whatever the namespace of
        the program's own cache (if any): the studio's key of the call, by which a fork's
        replay (a ``CallCache`` of that namespace over the run's calls) finds it again, and
        one for every call of a run, made under caches of several namespaces or none.
        """
        if isinstance(self.provider, ObservedSession):
            return _session_json(self.provider, self.call.model)
        provider = innermost_provider(self.provider)
        options = observed_options(self.provider)
        unkeyed: str | None = None
        key: str | None = None
        try:
            request, key = call_key(provider, self.call, options)
        except LLMConfigurationError as refused:
            request, unkeyed = canonical_request(provider, self.call, options), str(refused)
        shown: dict[str, Any] = {
            "provider": request["provider"],
            "model": self.call.model,
            "key": key,
            "request": request,
        }
        if unkeyed is not None:
            shown["unkeyed"] = unkeyed
        return shown


def _session_json(session: ObservedSession, model: str) -> dict[str, Any]:
    """A realtime session's reply as a recorded call: its session's request and key."""
    shown: dict[str, Any] = {
        "provider": session.request.get("provider"),
        "model": model,
        "key": session.key,
        "request": dict(session.request),
    }
    if session.unkeyed is not None:
        shown["unkeyed"] = session.unkeyed
    return shown


class CallEnded:
    """A call's ``Finish``, as queued: written with what the call cost."""

    __slots__ = ("finish", "model", "price_provider")

    def __init__(self, finish: Finish, model: str, price_provider: str | None) -> None:
        self.finish = finish
        self.model = model
        self.price_provider = price_provider

    def as_json(self) -> dict[str, Any]:
        """The ``Finish`` as JSON values, and the cost (0: replayed; ``None``: not known).

        The cost is the budgets' (:func:`~miniagents.ext.llm.pricing.finish_usage`).
        """
        cost = finish_usage(self.finish, self.model, self.price_provider).cost_usd
        return {"finish": dataclasses.asdict(self.finish), "cost_usd": cost}


def encode_batch(batch: Sequence[tuple[Any, ...]]) -> bytes:
    """The queued tuples as one chunk (see the module; a third of JSON's cost, measured)."""
    buffer = io.BytesIO()
    _BatchPickler(buffer, protocol=5).dump(batch)
    return buffer.getvalue()


def decode_batch(chunk: bytes | str) -> list[Any]:
    """The events of a chunk, as JSON values (a text: a chunk a store kept as JSON before).

    Raises:
        StudioStoreError: for a chunk that names anything but a plain value's type (it is
            not one a recorder wrote; nothing it names is looked up).
    """
    if isinstance(chunk, str):
        return _checked(json.loads(chunk))
    return _checked(_BatchLoader(io.BytesIO(chunk)).load())


_LENGTHS: Mapping[str, int] = {
    "node": 7,
    "message": 8,
    "end": 5,
    "call": 5,
    "token": 4,
    "call_end": 5,
    "decision": 4,
}
"""How many values each kind of event a recorder writes has."""


def _checked(events: object) -> list[Any]:
    """``events``, a chunk's, if it is shaped as a recorder writes one (see the module).

    Only its shape is checked, cheaply (what is inside an event: by :func:`event_of`).

    Raises:
        StudioStoreError: for a value that is not a list of events, each an array that starts
            with its kind, of that kind's length if this version knows the kind (an event
            of a kind it does not know is read as is).
    """
    if not isinstance(events, list):
        raise StudioStoreError(
            f"A recorded chunk holds {type(events).__name__} where a recorder writes a list "
            "of events."
        )
    length = _LENGTHS.get
    for item in events:
        if type(item) not in (list, tuple) or not item or type(item[0]) is not str:
            raise StudioStoreError(
                f"A recorded chunk holds the event {str(item)[:80]!r}, not an array that "
                "starts with its kind as a recorder writes."
            )
        if length(item[0], len(item)) != len(item):
            raise StudioStoreError(
                f"A recorded chunk holds the event {str(item)[:80]!r} of {len(item)} values; a "
                f"recorder writes one of kind {item[0]!r} as {_LENGTHS[item[0]]}."
            )
    return events


def batch_json(chunk: bytes | str) -> str:
    """A chunk's events as one JSON array of arrays, on one line (what the page reads).

    A chunk kept as text is read and written again, not passed on as stored: a store
    edited by hand may hold one with a line break, which would cut the SSE event it is
    sent in (and what follows the break would be read as events of their own).

    Raises:
        StudioStoreError: for a chunk that names anything but a plain value's type.
    """
    return json.dumps(decode_batch(chunk), ensure_ascii=False, separators=(",", ":"))


_PLAIN_TYPES = {"dict": dict, "list": list, "str": str, "int": int, "float": float}


class _BatchPickler(pickle.Pickler):
    """Pickles what JSON would write: a value's subclass as the value, an object by ``_plain``.

    (``reducer_override`` is not asked for ``None``, the bools, nor exact ints, floats,
    texts, lists, tuples and dicts: those are written as they are, in C.)
    """

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, type):
            return NotImplemented  # (the plain types that the reductions below name)
        if isinstance(obj, str):  # (an enum's member, say: its text, as JSON writes it)
            return str, (str.__str__(obj),)
        for kind in (int, float):
            if isinstance(obj, kind):
                return kind, (kind(obj),)
        if isinstance(obj, (list, tuple)):
            return list, (list(obj),)
        if isinstance(obj, dict):
            return dict, (dict(obj),)
        plain = _plain(obj)
        return type(plain), (plain,)  # (a dict, a list or a text: made again as loaded)


class _BatchLoader(pickle.Unpickler):
    """Loads a chunk's plain values, and nothing else: no other type or function is found."""

    def find_class(self, module: str, name: str) -> Any:
        found = _PLAIN_TYPES.get(name) if module == "builtins" else None
        if found is None:
            raise StudioStoreError(
                f"A recorded chunk names {module}.{name}; a recorder's chunks hold plain "
                "values only."
            )
        return found


def _plain(value: object) -> dict[str, Any] | list[Any] | str:
    """How an object of a queued tuple is written: a JSON object or array, or its ``repr``."""
    if isinstance(value, Message):
        return message_json(value)
    if isinstance(value, (CallRequest, CallEnded)):
        return value.as_json()
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)[:2_000]}
    if isinstance(value, (ToolCallStart, ToolCallDelta, Refusal)):
        return events_to_json([value])[0]
    if isinstance(value, ToolDecision):
        return {
            "approved": value.approved,
            "decided_by": value.decided_by,
            "reason": value.reason,
            "edited": value.arguments is not None,
        }
    return repr(value)


def message_json(message: Message) -> dict[str, Any]:
    """A message as recorded: its class, its text (cut at :data:`MAX_TEXT`), its fields."""
    text = message.text or ""
    shown: dict[str, Any] = {"class": type(message).__name__, "text": text[:MAX_TEXT]}
    if len(text) > MAX_TEXT:
        shown["cut"] = len(text)
    try:
        fields = message.model_dump(mode="json", exclude={"text"})
    except Exception:  # (a field pydantic cannot write as JSON: its repr)
        fields = {name: repr(value) for name, value in message if name != "text"}
    if fields:
        shown["fields"] = fields
    return shown


def event_of(seq: int, item: Sequence[Any]) -> RunEvent:
    """The event that a written tuple (a JSON array) is, numbered ``seq`` (times in seconds)."""
    kind = item[0]
    if kind == "node":
        _, node, parent, node_kind, name, t, extra = item
        data = {"id": node, "parent": parent, "kind": node_kind, "name": name, **(extra or {})}
        return RunEvent(seq, t / 1e9, kind, data)
    if kind == "message":
        _, node, role, index, entered, t, message, error = item
        data = {"node": node, "index": index, "entered": (t if entered is None else entered) / 1e9}
        if message is not None:
            data["message"] = (
                {"class": "Message", "text": message} if isinstance(message, str) else message
            )
        if error is not None:
            data["error"] = error
        return RunEvent(seq, t / 1e9, role, data)
    if kind == "end":
        _, node, t, error, result = item
        return RunEvent(seq, t / 1e9, kind, {"id": node, "error": error, "result": result})
    if kind == "call":
        _, call, node, t, request = item
        return RunEvent(seq, t / 1e9, kind, {"id": call, "node": node, **request})
    if kind == "token":
        _, call, t, piece = item
        return RunEvent(seq, t / 1e9, kind, {"call": call, "piece": piece})
    if kind == "call_end":
        _, call, t, ended, error = item
        return RunEvent(seq, t / 1e9, kind, {"id": call, **(ended or {}), "error": error})
    if kind == "decision":
        _, node, t, decision = item
        return RunEvent(seq, t / 1e9, kind, {"node": node, **decision})
    return RunEvent(seq, 0.0, str(kind), {"item": list(item)})
