"""A console chat whose history is kept in a markdown file: stop it, run it again, go on.

Run it with ``python examples/conversation.py [CHAT.md]``. Each message is appended to the
file as soon as it is complete, so the conversation survives a crash; the next run reads the
file back and the assistant sees everything said so far. The assistant is the offline model
unless ``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN``) is set.
"""

from __future__ import annotations

import sys

from miniagents.ext.chat_history_md import ChatHistoryMD
from miniagents.ext.console_user_agent import create_console_user_agent
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.miniagents import MiniAgents
from miniagents.utils import adialog_loop


async def amain(path: str) -> None:
    """Resume the conversation kept in ``path`` and go on until the user ends it."""
    chat_history = ChatHistoryMD(path)
    earlier = await chat_history.load()
    if earlier:
        print(f"Resuming the conversation in {path} ({len(earlier)} messages so far).")
    else:
        print(f"A new conversation, kept in {path}. Type exit or press Ctrl+D to end.")
    await adialog_loop(
        user_agent=create_console_user_agent(chat_history=chat_history),
        assistant_agent=llm_agent_from_env(system="You are a helpful and concise assistant."),
    )
    print(f"The conversation is saved in {path}.")


if __name__ == "__main__":
    MiniAgents().run(amain(sys.argv[1] if len(sys.argv) > 1 else "CHAT.md"))
