"""Errors of the messages layer; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = ["AppenderClosedError", "MessageTypeError"]


class MessageTypeError(MiniAgentsError, TypeError):
    """Something that is not a ``MessageType`` stood where messages were expected."""


class AppenderClosedError(MiniAgentsError, RuntimeError):
    """Something was appended to a stream that had already ended."""
