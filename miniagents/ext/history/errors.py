"""Errors of chat histories; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "ChatHistoryError",
    "ChatHistoryOptionError",
    "MalformedChatHistoryError",
    "TornChatHistoryError",
]


class ChatHistoryError(MiniAgentsError):
    """A chat history could not be read or written."""


class ChatHistoryOptionError(ChatHistoryError, ArgumentError):
    """A chat history was given an option it does not take (the message names the choices)."""


class MalformedChatHistoryError(ChatHistoryError, ValueError):
    """A chat history file is not in the expected format (its file and line are named)."""


class TornChatHistoryError(MalformedChatHistoryError):
    """A chat history file's last section was cut short, e.g. by a crash during an append.

    Raised only when the history was asked to (``ChatHistoryMD(..., on_torn_section="raise")``);
    by default the torn section is dropped with a logged warning.
    """
