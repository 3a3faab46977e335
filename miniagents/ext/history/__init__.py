"""Chat history: where a conversation's messages are kept, to be replayed to a model.

One package for the whole concept:

- :mod:`~miniagents.ext.history.base`: :class:`ChatHistory`, the base to extend (a database,
  a file format of your own): it loads the messages kept so far and appends one more;
- :mod:`~miniagents.ext.history.in_memory`: :class:`InMemoryChatHistory`;
- :mod:`~miniagents.ext.history.markdown`: :class:`ChatHistoryMD`, a history in a markdown
  file (its format, reader and file handling are the private modules beside it);
- :mod:`~miniagents.ext.history.agents`: agents that store what they see in a history and
  reply with the whole conversation;
- :func:`~miniagents.ext.roles.role_of`: a history's message's role, typed (re-exported
  from :mod:`miniagents.ext.roles`, which the LLM agents use too);
- :mod:`~miniagents.ext.history.errors`: its errors;
- :mod:`~miniagents.ext.history.storage`: building blocks of stores (the message classes
  known by name, a serial worker), shared with ``ChatHistorySQL`` (an internal API).

The markdown store and the agents are imported at their first use, so that the errors and
the base class (which :mod:`miniagents.errors` and the testing kit read) stay light.
``miniagents.ext.chat_history_md`` and ``miniagents.ext.history_agents`` are former homes
that the seeds import (supported); ``miniagents.chat_history`` is a deprecated one.
"""

from __future__ import annotations

from miniagents.reexports import Reexports

_REEXPORTS = Reexports(
    __name__,
    {
        "miniagents.ext.history.base": "ChatHistory",
        "miniagents.ext.history.errors": (
            "ChatHistoryError ChatHistoryOptionError MalformedChatHistoryError TornChatHistoryError"
        ),
        "miniagents.ext.history.in_memory": "InMemoryChatHistory",
        "miniagents.ext.roles": "role_of",
        "miniagents.ext.history.markdown": "ChatHistoryMD",
        "miniagents.ext.history.agents": (
            "history_agent in_memory_history_agent markdown_history_agent"
        ),
    },
)
"""The package's names by module; the markdown store and the agents are imported at their
first use (type checkers read ``__init__.pyi``, made of this table)."""

__all__ = _REEXPORTS.names
__getattr__ = _REEXPORTS.attribute
__dir__ = _REEXPORTS.dir
