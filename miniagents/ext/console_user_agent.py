"""``create_console_user_agent``: the console user agent, with its arguments bound.

The same agent as ``miniagents.ext.console_agents.console_user_agent``.
"""

from __future__ import annotations

from miniagents.ext.console_agents import console_user_agent

__all__ = ["console_user_agent", "create_console_user_agent"]


create_console_user_agent = console_user_agent.bind
"""The console user agent with arguments bound (``prompt``, ``label``, ``chat_history``).

The same as ``console_user_agent.fork(...)``, with the arguments typed. With a
``chat_history``, the agent stores the incoming messages and the user's messages in it,
and replies with the whole history.
"""
