"""The wire protocol between a driver and the Ray workers that run its agents.

What travels, all of it as plain tuples of ints, strings and bytes::

    driver -> worker, the call:      (arguments, input events so far, mailbox, key, settings,
                                      trace carrier, cancel timeout, live links' far ends,
                                      announce the start)
    driver -> worker, the mailbox:   input events, while the inputs resolve
        (INPUT_MESSAGE, message)     a complete input message
        (INPUT_MESSAGE_FAILED, err)  an input message whose tokens failed
        (INPUT_FAILED, err)          the input sequence failed here (its end)
        (INPUT_END, None)            the input sequence ended normally
    worker -> driver, one Ray streaming-generator item per batch of reply events (the
    first one empty, sent at the task's start, if the call asks for it: ``announce``):
        (START, i, header)           reply message i begins: its class and its metadata
        (TOKENS, i, [token, ...])    tokens of message i, in order (consecutive ones merged)
        (END, i, metadata)           message i is complete, with its final metadata
        (WHOLE, i, message)          reply message i, complete from the start
        (MESSAGE_FAILED, i, err)     the tokens of message i failed
        (COMPLETE, 0, None)          the reply sequence ended normally
        (FAILED, 0, err)             the agent failed: the reply sequence ends with err
    (in MESSAGE_FAILED and FAILED, err is the error encoded, or the index j of a message
    whose MESSAGE_FAILED carried the same error object: it is one error on both sides)
        (LINK, l, message)           a message of live link l's far end to its caller's end
    driver -> worker, the link box of the mailbox (only when the call has live links):
        (l, message)                 a message of live link l's caller end to its far end

The live links (``miniagents.miniagents.lowlevel.outgoing_links``) keep state of the caller
live while the worker runs, e.g. the budgets of ``miniagents.ext.llm``; without any (the
common case) the call carries none, and nothing goes through the link box.

Messages, headers, metadata, arguments and errors travel as bytes pickled here, by
:func:`dumps`, with Ray's ``cloudpickle``: classes that the worker can import travel by
reference, classes defined in a script (``__main__``) by value, so custom ``Message`` and
``Frozen`` subclasses arrive as themselves. A value that cannot be pickled raises a
:class:`MessageSerializationError` that names its field. An error travels with its own
type and message (:func:`encode_error`), without the marks this process keeps on it.
"""

from __future__ import annotations

import copy
import logging
import pickle
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NamedTuple

from pydantic import BaseModel

from miniagents.arguments import a_class
from miniagents.ext.ray._worker_loop import CANCEL_TIMEOUT
from miniagents.ext.ray.errors import MessageSerializationError, RemoteError, RemoteTraceback

__all__ = [
    "COMPLETE",
    "END",
    "FAILED",
    "INPUT_END",
    "INPUT_FAILED",
    "INPUT_MESSAGE",
    "INPUT_MESSAGE_FAILED",
    "LINK",
    "LINKS_BOX",
    "MESSAGE_FAILED",
    "START",
    "TOKENS",
    "WHOLE",
    "Call",
    "check_sendable_agent",
    "decode_error",
    "dumps",
    "dumps_arguments",
    "dumps_settings",
    "encode_error",
    "loads",
]

START: Final = 0
TOKENS: Final = 1
END: Final = 2
WHOLE: Final = 3
MESSAGE_FAILED: Final = 4
COMPLETE: Final = 5
FAILED: Final = 6
LINK: Final = 7

LINKS_BOX: Final = "/links"
"""The suffix of the key of an interaction's box of link messages, in the mailbox."""

INPUT_MESSAGE: Final = 0
INPUT_MESSAGE_FAILED: Final = 1
INPUT_FAILED: Final = 2
INPUT_END: Final = 3

ReplyEvent = tuple[int, int, Any]
InputEvent = tuple[int, bytes | None]

_LOCAL_MARKS = "__miniagents_"
"""Attributes the streams layer keeps on an error in this process (e.g. whether a consumer
received it): they say nothing about the error, and stay behind."""


class Call(NamedTuple):
    """What a worker needs to run one interaction."""

    arguments: bytes
    """``(args, kwargs)`` of the agent, pickled."""
    inputs: list[InputEvent]
    """The input events known when the interaction started."""
    mailbox: Any
    """The mailbox actor the further input events come through (``None``: no more come)."""
    key: str
    """The key of this interaction's box in the mailbox."""
    settings: bytes
    """The driver context's extension settings (e.g. the LLM agents'), pickled."""
    carrier: tuple[tuple[str, str], ...] = ()
    """The caller's trace, for tracing to continue it in the worker (e.g. ``traceparent``;
    empty when nothing traces: see ``miniagents.miniagents.lowlevel.outgoing_carrier``)."""
    cancel_timeout: float = CANCEL_TIMEOUT
    """Seconds the worker waits for its agent to end once cancelled (``ray_agent``'s
    ``cancel_timeout``), before it gives up with ``RayCancelTimeoutError``."""
    links: bytes | None = None
    """The far ends of the caller's live links, pickled (``None``: it has none)."""
    announce: bool = False
    """Whether the worker sends an empty batch of events as soon as the task starts (a
    caller that is itself on a worker watches for it: see ``agent.SCHEDULING_WARNING``)."""


def dumps(value: object, what: str) -> bytes:
    """Pickle ``value`` for another process.

    Args:
        value: A message, metadata, arguments, an item...
        what: What ``value`` is, for the error, e.g. "a reply message of the agent ECHO".

    Raises:
        MessageSerializationError: naming the field that holds what cannot be pickled.
    """
    try:
        return _pickle(value)
    except Exception as error:
        raise _serialization_error(value, what, error) from error


def check_sendable_agent(alias: str, agent: object) -> None:
    """Check at once that Ray can send ``agent`` (or a chain of agents) to its workers.

    Raises:
        MessageSerializationError: naming the agent and why it cannot be pickled.
    """
    try:
        _pickle(agent)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise MessageSerializationError(
            f"The agent {alias} cannot be sent to a Ray worker: pickling it failed "
            f"({type(error).__name__}: {reason:.200}). A Ray worker runs a copy of the "
            "agent, so its function and everything it refers to must be picklable. A "
            "durable agent (miniagents.ext.dbos) never is, since its runs are recovered by "
            "the process that made it: run it on the driver."
        ) from error


def dumps_arguments(args: tuple[object, ...], kwargs: Mapping[str, object], alias: str) -> bytes:
    """Pickle an agent's arguments; the error names the argument that cannot be pickled.

    Raises:
        MessageSerializationError: naming the argument (and its field, if it has fields).
    """
    try:
        return dumps((args, dict(kwargs)), f"the arguments of the agent {alias}")
    except MessageSerializationError:
        named = [(f"argument {name!r}", value) for name, value in kwargs.items()]
        for place, value in [*((f"argument {i + 1}", v) for i, v in enumerate(args)), *named]:
            dumps(value, f"the {place} of the agent {alias}")  # raises for the culprit
        raise


def dumps_settings(settings: Mapping[str, object]) -> bytes:
    """Pickle a context's extension settings; those that cannot be pickled stay behind.

    A setting left behind (e.g. a logger agent that holds a lock) is logged once per call,
    and the worker's context uses its default.
    """
    kept: dict[str, object] = {}
    for name, value in settings.items():
        try:
            _pickle(value)
        except Exception as error:
            logging.getLogger("miniagents").warning(
                "The setting %s of the MiniAgents context cannot be sent to a Ray worker "
                "(%s); the worker uses its default.",
                name,
                error,
            )
        else:
            kept[name] = value
    return dumps(kept, "the settings of the MiniAgents context")


def _pickle(value: object) -> bytes:
    from ray import cloudpickle

    pickle_value: Callable[..., bytes] = cloudpickle.dumps
    return pickle_value(value, protocol=5)


def loads(data: bytes) -> Any:
    """Unpickle what :func:`dumps` made (in this or another process)."""
    return pickle.loads(data)


def _serialization_error(value: object, what: str, error: Exception) -> MessageSerializationError:
    found = _culprit(value, "")
    if found is None:
        place, culprit = "", value
    else:
        place, culprit = found
    subject = f"The field {place!r} of {what}" if place else what[:1].upper() + what[1:]
    return MessageSerializationError(
        f"{subject} ({type(value).__name__}) cannot be sent to or from a Ray worker: it "
        f"holds {a_class(type(culprit))} ({culprit!r:.60}), which cannot be pickled "
        f"({error}). Messages cross processes as data: keep only values that can be "
        "pickled in them (str, numbers, lists, dicts, Message and Frozen models), and send "
        "an identifier instead of a live object such as a lock, a client or an open file."
    )


def _children(value: object) -> Iterator[tuple[str, object]]:
    if isinstance(value, BaseModel):
        for name, field in value:  # declared and extra fields
            yield f".{name}", field
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield f"[{key!r}]", item
    elif isinstance(value, (tuple, list, set, frozenset)):
        for index, item in enumerate(value):
            yield f"[{index}]", item


def _culprit(value: object, path: str) -> tuple[str, object] | None:
    """The deepest ``(path, value)`` inside ``value`` that cannot be pickled, if one is found."""
    for step, child in _children(value):
        try:
            _pickle(child)
        except Exception:
            place = f"{path}{step}"
            return _culprit(child, place) or (place.lstrip("."), child)
    return None


def encode_error(error: BaseException) -> bytes:
    """Pickle ``error`` with its type, message and formatted traceback.

    An error that cannot make the round trip through pickle becomes a :class:`RemoteError`
    that names its type and message.
    """
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        travelling = copy.copy(error)  # the same type and arguments, and no traceback
        for name in [name for name in vars(travelling) if name.startswith(_LOCAL_MARKS)]:
            delattr(travelling, name)
        data = dumps(travelling, "an error")
        loads(data)  # an exception whose constructor needs other arguments fails here
    except Exception:
        replacement = RemoteError(
            f"{type(error).__qualname__}: {error} (raised in a Ray worker; the error itself "
            "could not be sent back, as it cannot be pickled)"
        )
        data = dumps(replacement, "an error")
    return dumps((data, text), "an error")


def decode_error(data: bytes) -> BaseException:
    """The error :func:`encode_error` pickled, with its remote traceback as its cause."""
    pickled, text = loads(data)
    error: object
    try:
        error = loads(pickled)
    except Exception as problem:  # e.g. its class cannot be imported here
        error = RemoteError(
            f"An error raised in a Ray worker could not be unpickled here ({problem!r}); "
            f"its traceback:\n{text}"
        )
    if not isinstance(error, BaseException):
        error = RemoteError(f"A Ray worker sent {error!r} as an error.")
    error.__cause__ = RemoteTraceback(text)
    return error
