"""Chat history: where a conversation's messages are kept, to be replayed to a model.

:class:`ChatHistory` is the base to extend (a database, a file format of your own): it
loads the messages kept so far and appends one more. :class:`InMemoryChatHistory` keeps
them in memory; ``miniagents.ext.chat_history_md.ChatHistoryMD`` keeps them in a markdown
file. The history agents of ``miniagents.ext.history_agents`` and the console user agent
store what they see in one and reply with the whole conversation. Its errors are in
:mod:`miniagents.chat_history.errors`.
"""

from miniagents.chat_history.base import ChatHistory as ChatHistory
from miniagents.chat_history.errors import ChatHistoryError as ChatHistoryError
from miniagents.chat_history.errors import ChatHistoryOptionError as ChatHistoryOptionError
from miniagents.chat_history.errors import MalformedChatHistoryError as MalformedChatHistoryError
from miniagents.chat_history.errors import TornChatHistoryError as TornChatHistoryError
from miniagents.chat_history.in_memory import InMemoryChatHistory as InMemoryChatHistory

__all__ = [
    "ChatHistory",
    "ChatHistoryError",
    "ChatHistoryOptionError",
    "InMemoryChatHistory",
    "MalformedChatHistoryError",
    "TornChatHistoryError",
]
