"""MiniAgents tools served as an MCP server over stdio: ``python -m tests.ext.mcp.served``."""

from __future__ import annotations

import asyncio

from miniagents import InteractionContext, miniagent
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.mcp import serve_stdio
from miniagents.ext.tools import ToolCallError


@miniagent
async def poet(ctx: InteractionContext, subject: str) -> None:
    """Write a one-line poem about a subject.

    Args:
        ctx: The interaction.
        subject: What the poem is about.
    """
    ctx.reply(offline_agent.inquire(subject, reply=f"Streams flow, {subject} glow.", token_delay=0))


def divide(a: float, b: float) -> float:
    """Divide a by b."""
    if b == 0:
        raise ToolCallError("Cannot divide by zero.")
    return a / b


if __name__ == "__main__":
    asyncio.run(serve_stdio([poet, divide], name="poetry"))
