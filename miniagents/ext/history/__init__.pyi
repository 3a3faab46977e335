# Made from the table of miniagents.ext.history (Reexports.stub): do not edit.

from miniagents.ext.history.agents import history_agent as history_agent
from miniagents.ext.history.agents import in_memory_history_agent as in_memory_history_agent
from miniagents.ext.history.agents import markdown_history_agent as markdown_history_agent
from miniagents.ext.history.base import ChatHistory as ChatHistory
from miniagents.ext.history.errors import ChatHistoryError as ChatHistoryError
from miniagents.ext.history.errors import ChatHistoryOptionError as ChatHistoryOptionError
from miniagents.ext.history.errors import MalformedChatHistoryError as MalformedChatHistoryError
from miniagents.ext.history.errors import TornChatHistoryError as TornChatHistoryError
from miniagents.ext.history.in_memory import InMemoryChatHistory as InMemoryChatHistory
from miniagents.ext.history.markdown import ChatHistoryMD as ChatHistoryMD
from miniagents.ext.roles import role_of as role_of

__all__ = [
    "history_agent", "in_memory_history_agent", "markdown_history_agent",
    "ChatHistory",
    "ChatHistoryError", "ChatHistoryOptionError", "MalformedChatHistoryError",
    "TornChatHistoryError",
    "InMemoryChatHistory",
    "ChatHistoryMD",
    "role_of",
]
