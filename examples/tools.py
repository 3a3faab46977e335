"""An assistant with tools: two typed functions, and a sub-agent whose reply streams in place.

Run it with ``python examples/tools.py``. Offline, the offline model calls the tools by its
rules (a pattern of the question per tool); with ``OPENAI_API_KEY`` (or
``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN``) set, a real model decides which tools to
call. The three calls run at once, and the poet's lines reach this program while the poet is
still writing them.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.llm import ToolCallMessage, ToolResultMessage
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.llm.offline import ToolRule

QUESTION = (
    "What is the weather in Paris, what is 6 times 7, and can you write a poem about streams?"
)


def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """Get the current weather in a city.

    Args:
        city: The city, e.g. "Paris".
        unit: The temperature unit.
    """
    return f"Sunny, {21 if unit == 'C' else 70} °{unit} in {city}"


def multiply(a: int, b: int) -> int:
    """Multiply two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a * b


@miniagent
async def poet(ctx: InteractionContext, subject: str) -> None:
    """Write a short poem about a subject.

    Args:
        ctx: The interaction.
        subject: What the poem is about.
    """
    writer = llm_agent_from_env(
        system="Write a poem of two short lines, and nothing else.",
        offline_reply=f"The {subject} run on, token by token; / each word arrives as it is spoken.",
        token_delay=0.05,
    )
    ctx.reply(writer.inquire(f"A poem about {subject}."))


assistant = llm_agent_from_env(
    system="You are a helpful assistant. Use the tools to answer.",
    tools=[get_weather, multiply, poet],
    offline_tool_rules=[
        ToolRule(r"weather in (?P<city>[A-Z]\w+)", "get_weather"),
        ToolRule(r"(?P<a>\d+) times (?P<b>\d+)", "multiply"),
        ToolRule(r"poem about (?P<subject>\w+)", "POET"),
    ],
    token_delay=0.01,
)


async def main() -> None:
    """Ask a question that needs every tool, and print the reply as it streams."""
    print(f"USER: {QUESTION}")
    async with MiniAgents():
        async for message in assistant.inquire(QUESTION):
            if issubclass(message.message_class, ToolCallMessage):
                print(f"CALL {message.metadata['tool_name']}: ", end="")
            elif issubclass(message.message_class, ToolResultMessage):
                print(f"RESULT {message.metadata['tool_name']}: ", end="")
            else:
                print("ASSISTANT: ", end="")
            async for token in message:  # calls, results and the answer all stream
                print(token, end="", flush=True)
            print()


if __name__ == "__main__":
    asyncio.run(main())
