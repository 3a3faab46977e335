"""Errors of the messages layer; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "AppenderClosedError",
    "ImagePartError",
    "MessageArgumentError",
    "MessageTupleFieldError",
    "MessageTypeError",
    "SyncReadError",
    "UnresolvedMessageError",
]


class MessageArgumentError(ArgumentError, TypeError):
    """A message made with a positional argument: ``Message("hi")`` for ``Message(text="hi")``.

    An ``ArgumentError`` (a ``ValueError``) and a ``TypeError`` both: the ``TypeError`` that
    Python raises for an argument a function does not take, with a sentence that names the
    keyword to write.
    """


class MessageTypeError(MiniAgentsError, TypeError):
    """Something that is not a ``MessageType`` stood where messages were expected."""


class MessageTupleFieldError(MiniAgentsError, AttributeError):
    """A message's field read from a tuple of messages (``(await reply).text``).

    Read it from one of them, ``messages[0].text``; ``str(messages)`` gives their text.
    """


class AppenderClosedError(MiniAgentsError, RuntimeError):
    """Something was appended to a stream that had already ended."""


class ImagePartError(MiniAgentsError, ValueError):
    """An ``ImagePart`` given no source (or two), a URL that is not one, or unknown bytes.

    Raised while pydantic validates the part, so it reaches the caller inside pydantic's
    ``ValidationError`` (its message, and the error itself in the ``ctx`` of the entry), as
    every invalid field of a model does.
    """


class SyncReadError(MiniAgentsError, TypeError):
    """A message or a message sequence read synchronously (``for``, ``list()``, ``in``, ``[0]``).

    Or text looked for with ``in`` in a message or a ``MessageTuple`` (look in
    ``message.text``, or ``str(messages)``). A ``TypeError`` too, as Python's own error for
    something not iterable is.
    """


class UnresolvedMessageError(MiniAgentsError, AttributeError):
    """A message's field read from its ``MessagePromise``, or from a sequence (await it first)."""
