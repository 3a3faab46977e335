"""Chat history: where a conversation's messages are kept, to be replayed to a model.

One package for the whole concept:

- :mod:`~miniagents.ext.history.base`: :class:`ChatHistory`, the base to extend (a database,
  a file format of your own): it loads the messages kept so far and appends one more;
- :mod:`~miniagents.ext.history.in_memory`: :class:`InMemoryChatHistory`;
- :mod:`~miniagents.ext.history.markdown`: :class:`ChatHistoryMD`, a history in a markdown
  file (its format, reader and file handling are the private modules beside it);
- :mod:`~miniagents.ext.history.agents`: agents that store what they see in a history and
  reply with the whole conversation;
- :mod:`~miniagents.ext.history.errors`: its errors;
- :mod:`~miniagents.ext.history.storage`: building blocks of stores (the message classes
  known by name, a serial worker), shared with ``ChatHistorySQL`` (an internal API).

The markdown store and the agents are imported at their first use, so that the errors and
the base class (which :mod:`miniagents.errors` and the testing kit read) stay light.
``miniagents.chat_history``, ``miniagents.ext.chat_history_md`` and
``miniagents.ext.history_agents`` are the former homes, kept for compatibility.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from miniagents.ext.history.base import ChatHistory as ChatHistory
from miniagents.ext.history.errors import ChatHistoryError as ChatHistoryError
from miniagents.ext.history.errors import ChatHistoryOptionError as ChatHistoryOptionError
from miniagents.ext.history.errors import MalformedChatHistoryError as MalformedChatHistoryError
from miniagents.ext.history.errors import TornChatHistoryError as TornChatHistoryError
from miniagents.ext.history.in_memory import InMemoryChatHistory as InMemoryChatHistory

if TYPE_CHECKING:  # imported lazily at run time: see _LAZY
    from miniagents.ext.history.agents import history_agent as history_agent
    from miniagents.ext.history.agents import in_memory_history_agent as in_memory_history_agent
    from miniagents.ext.history.agents import markdown_history_agent as markdown_history_agent
    from miniagents.ext.history.markdown import ChatHistoryMD as ChatHistoryMD

_LAZY: dict[str, str] = {
    "ChatHistoryMD": "miniagents.ext.history.markdown",
    "history_agent": "miniagents.ext.history.agents",
    "in_memory_history_agent": "miniagents.ext.history.agents",
    "markdown_history_agent": "miniagents.ext.history.agents",
}

if not TYPE_CHECKING:  # mypy sees the imports above, and no catch-all attribute

    def __getattr__(name: str) -> object:
        """Import the markdown store or an agent at its first use."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})


__all__ = [
    "ChatHistory",
    "ChatHistoryError",
    "ChatHistoryMD",
    "ChatHistoryOptionError",
    "InMemoryChatHistory",
    "MalformedChatHistoryError",
    "TornChatHistoryError",
    "history_agent",
    "in_memory_history_agent",
    "markdown_history_agent",
]
