"""The former home of the chat history protocol; kept so that old imports still work.

Chat history is one package now, :mod:`miniagents.ext.history` (the base class, the
in-memory and markdown stores, the history agents and their errors).
"""

from miniagents.ext.history.base import ChatHistory as ChatHistory
from miniagents.ext.history.errors import ChatHistoryError as ChatHistoryError
from miniagents.ext.history.errors import ChatHistoryOptionError as ChatHistoryOptionError
from miniagents.ext.history.errors import MalformedChatHistoryError as MalformedChatHistoryError
from miniagents.ext.history.errors import TornChatHistoryError as TornChatHistoryError
from miniagents.ext.history.in_memory import InMemoryChatHistory as InMemoryChatHistory

__all__ = [
    "ChatHistory",
    "ChatHistoryError",
    "ChatHistoryOptionError",
    "InMemoryChatHistory",
    "MalformedChatHistoryError",
    "TornChatHistoryError",
]
