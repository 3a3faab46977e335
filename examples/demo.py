"""The MiniAgents demo: chat with an assistant in your terminal.

Run it with ``python examples/demo.py``. With no API key it talks with the offline model
(no network needed); with ``OPENAI_API_KEY`` set it talks with OpenAI, else, with
``ANTHROPIC_API_KEY`` (or ``ANTHROPIC_AUTH_TOKEN``, a bearer token) set, with Anthropic.
The assistant's reply streams token by token, and a history agent gives it the whole
conversation each turn. Type ``exit``, press Ctrl+D or Ctrl+C to end.
An LLM error (a wrong key, no network) is shown in one line, and the chat goes on.

Installed, the same chat is a command with options: ``miniagents chat --help``.
"""

from __future__ import annotations

import asyncio

from miniagents import MiniAgents
from miniagents.ext.history_agents import in_memory_history_agent
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.misc_agents import console_user_agent
from miniagents.utils import adialog_loop

MODEL_NAMES = {
    "OPENAI_AGENT": "OpenAI",
    "ANTHROPIC_AGENT": "Anthropic",
    "OFFLINE_AGENT": "the offline model (set OPENAI_API_KEY to talk with OpenAI)",
}
"""Who the user talks with, by the alias of the agent ``llm_agent_from_env`` chose."""


async def main() -> None:
    """Run the dialog until the user ends it."""
    assistant = llm_agent_from_env(system="You are a helpful and concise assistant.")
    print(f"Chatting with {MODEL_NAMES[assistant.alias]}. Type exit or press Ctrl+D to end.")
    async with MiniAgents():
        await adialog_loop(console_user_agent, assistant, history_agent=in_memory_history_agent)
    print("Bye!")


if __name__ == "__main__":
    asyncio.run(main())
