"""``create_console_user_agent``: the console user agent, with its arguments bound.

The same agent as ``miniagents.ext.misc_agents.console_user_agent``.
"""

from __future__ import annotations

from miniagents.chat_history import ChatHistory
from miniagents.ext.misc_agents import console_user_agent
from miniagents.miniagents.agent import MiniAgent

__all__ = ["console_user_agent", "create_console_user_agent"]


def create_console_user_agent(
    prompt: str = "USER: ",
    label: str = "ASSISTANT: ",
    chat_history: ChatHistory | None = None,
) -> MiniAgent[...]:
    """The console user agent with arguments bound (``console_user_agent.fork(...)``).

    Args:
        prompt: Printed before the user types.
        label: Printed before each incoming message.
        chat_history: If given, the agent stores the incoming messages and the user's
            messages in it, and replies with the whole history.
    """
    return console_user_agent.fork(prompt=prompt, label=label, chat_history=chat_history)
