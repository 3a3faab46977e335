"""Sorting a ``MessageType`` value into segments: ready messages, errors and async parts.

Synchronous parts (strings, dicts, messages, lists, finished streams) are flattened at
once by :func:`collect`, so bad input fails where it is given; asynchronous parts (async
iterables, observables, streams still running) become segments that a
:class:`~miniagents.messages._flatten.Flattener` streams in their place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, MutableSequence
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from reactivex import Observable

from miniagents.arguments import a_class
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.promising.lowlevel import core_of
from miniagents.promising.streamed_promise import StreamedPromise

__all__ = ["AsyncPart", "Segment", "collect", "is_message"]


class AsyncPart:
    """An async iterable of ``MessageType`` items, pulled (with backpressure) where it stands."""

    __slots__ = ("source",)

    def __init__(self, source: AsyncIterable[object]) -> None:
        self.source = source


Segment = Union[
    MessagePromise, BaseException, "Observable[object]", StreamedPromise[Any, Any], AsyncPart
]
"""A piece of flattened input: a ready message, an error, or an async part still to flatten."""

_ACCEPTED = (
    "str, dict, Message, a pydantic model, MessagePromise, MessageSequencePromise, "
    "an exception, or an (async) iterable or Observable of these"
)


_MESSAGE_CLASSES: dict[type, bool] = {}

known_message_class: Callable[[type], bool | None] = _MESSAGE_CLASSES.get
"""``is_message``'s answer for a class, if it was asked before (``None`` if not): the hot
paths look it up without a call of ``is_message`` (the dict's ``get``, bound once, so that
other modules call it by a plain name instead of reaching into the private dict)."""


def is_message(item: object) -> bool:
    """``isinstance(item, Message)``, remembered per class.

    ``Message`` is a pydantic model, whose metaclass is an ``ABCMeta``: a negative
    ``isinstance`` check goes through its slow path, and most items are not messages.
    """
    kind = type(item)
    known = _MESSAGE_CLASSES.get(kind)
    if known is None:
        known = _MESSAGE_CLASSES[kind] = issubclass(kind, Message)
    return known


def collect(item: object, out: MutableSequence[Segment]) -> None:
    """Append the segments of ``item`` to ``out``, flattening synchronous parts at once.

    Raises:
        MessageTypeError: if ``item`` (or something nested in a synchronous part) is not
            a ``MessageType``.
    """
    if isinstance(item, MessagePromise):
        out.append(item)
    elif isinstance(item, str):
        out.append(MessagePromise.of_text(item))
    elif isinstance(item, StreamedPromise):  # (before the ABCs: their misses are slow;
        _collect_stream(item, out)  # before is_message: a call and its lookup less per stream)
    elif is_message(item):
        out.append(MessagePromise.of_message(item))  # type: ignore[arg-type]
    elif isinstance(item, (list, tuple)):
        for sub_item in item:
            collect(sub_item, out)
    elif isinstance(item, BaseException):
        out.append(item)
    elif isinstance(item, Mapping):
        out.append(MessagePromise.of_message(_message_from_mapping(item)))
    elif isinstance(item, BaseModel):
        model = f"{a_class(type(item))} (a pydantic model)"
        out.append(MessagePromise.of_message(_validated(dict(item), model)))
    elif isinstance(item, Observable):
        out.append(item)
    elif isinstance(item, AsyncIterable):
        out.append(AsyncPart(item))
    elif isinstance(item, (bytes, bytearray)):
        raise MessageTypeError(
            f"Got {a_class(type(item))} where messages were expected; "
            "decode it to str first, e.g. data.decode('utf-8')."
        )
    elif isinstance(item, asyncio.Future):  # (iterable, for `yield from`: not its result)
        raise MessageTypeError(
            f"Got an asyncio task or future ({item!r:.80}) where messages were expected; "
            "await it first, and pass its result."
        )
    elif isinstance(item, Iterable):
        for sub_item in item:
            collect(sub_item, out)
    elif item is None:
        raise MessageTypeError(
            "Got None where messages were expected: None is no message. Leave the reply out "
            'when there is nothing to say, or pass "" for an empty text.'
        )
    else:
        raise MessageTypeError(
            f"Got {a_class(type(item))} ({item!r:.80}) where messages were expected. "
            f"Pass {_ACCEPTED}."
        )


def _message_from_mapping(data: Mapping[Any, object]) -> Message:
    bad_keys = [key for key in data if not isinstance(key, str)]
    if bad_keys:
        raise MessageTypeError(
            f"A dict given as a message must have str keys (its fields), but it has "
            f"{bad_keys[0]!r}. Use field names as keys, e.g. {{'text': 'Hi', 'role': 'user'}}."
        )
    if "content" in data and "text" not in data:  # the OpenAI chat format's, not ours
        raise MessageTypeError(
            "A dict given as a message has a 'content' and no 'text' (the shape of an OpenAI "
            "chat message), which would make a message without text. A message's text is "
            "its 'text' field: pass {'text': ..., 'role': ...} instead, e.g. "
            "{'text': 'Hi', 'role': 'user'}."
        )
    return _validated(dict(data), "a dict")


def _validated(fields: dict[str, object], given: str) -> Message:
    """The message of ``fields`` (``given``: "a dict", ...); a wrong field is refused.

    Raises:
        MessageTypeError: naming the first field pydantic refuses (its error is the cause).
    """
    try:
        return Message.model_validate(fields)
    except ValidationError as invalid:
        problems = invalid.errors()
        first = problems[0]
        field = ".".join(str(part) for part in first["loc"]) or "(the message)"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise MessageTypeError(
            f"The message given as {given} has a field that a Message refuses: "
            f"{field!r}: {first['msg']} (got {first['input']!r:.80}){more}. Give the field "
            "a value of its type (e.g. {'text': 'Hi'}: text is a str), or make the Message "
            "yourself to see every problem."
        ) from invalid


def _collect_stream(stream: StreamedPromise[Any, Any], out: MutableSequence[Segment]) -> None:
    core = core_of(stream)
    if not core.done or core.released():  # running, or past its window: followed in place
        out.append(stream)  # (the stream itself: a handle of it, and no observable made)
        return
    for piece in core.record():  # a finished stream is flattened without waiting
        collect(piece, out)
    if core.error is not None:
        core.handed_over = True  # the new stream's consumers get it, or it reports it lost
        out.append(core.error)
