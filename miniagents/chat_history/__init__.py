"""The former home of the chat history protocol; deprecated, it warns when imported.

Chat history is one package now: import from :mod:`miniagents.ext.history` (the base class,
the in-memory and markdown stores, the history agents and their errors). This module goes
in the first release after :data:`miniagents.reexports.FORMER_HOMES_GO_AFTER`.
"""

from miniagents.ext.history.base import ChatHistory as ChatHistory
from miniagents.ext.history.errors import ChatHistoryError as ChatHistoryError
from miniagents.ext.history.errors import ChatHistoryOptionError as ChatHistoryOptionError
from miniagents.ext.history.errors import MalformedChatHistoryError as MalformedChatHistoryError
from miniagents.ext.history.errors import TornChatHistoryError as TornChatHistoryError
from miniagents.ext.history.in_memory import InMemoryChatHistory as InMemoryChatHistory
from miniagents.reexports import warn_former_home

__all__ = [
    "ChatHistory",
    "ChatHistoryError",
    "ChatHistoryOptionError",
    "InMemoryChatHistory",
    "MalformedChatHistoryError",
    "TornChatHistoryError",
]

warn_former_home(__name__, "miniagents.ext.history")
