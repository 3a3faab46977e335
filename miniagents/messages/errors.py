"""Errors of the messages layer; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = ["MessageTypeError"]


class MessageTypeError(MiniAgentsError, TypeError):
    """Something that is not a ``MessageType`` stood where messages were expected."""
