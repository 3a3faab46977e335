"""Agents in parallel: a writer, three critics at once, an editor gathering their replies.

The writer streams a draft, three critics read it at the same time, and an editor gathers
everything, in order, into one reply. Run it with ``python examples/parallel_agents.py``. It
uses the offline model unless ``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY`` or
``ANTHROPIC_AUTH_TOKEN``) is set. Inquiring an agent starts it at once and returns its reply
as a promise, so agents inquired one after the other run at the same time: the three slow
checkers below take about one second together, not three.
"""

from __future__ import annotations

import asyncio
import time

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.ext.llm.from_env import llm_agent_from_env

writer = llm_agent_from_env(
    system="Answer in two sentences.",
    max_tokens=200,
    offline_reply="Replayable streams keep every token they carry, so every reader, early "
    "or late, gets the whole answer while the model is asked only once.",
    token_delay=0.03,
)


@miniagent
async def critic(ctx: InteractionContext, aspect: str = "style") -> None:
    """Reads the draft (waiting for it to complete) and comments on one aspect of it."""
    draft = await ctx.messages
    words = len(str(draft).split())
    ctx.reply(Message(text=f"[{aspect}] {words} words, fine by me.", role="critic"))


@miniagent
async def editor(ctx: InteractionContext) -> None:
    """Asks the writer, has three critics read the draft in parallel, and replies with all."""
    draft = writer.inquire(ctx.messages)
    critics = [critic.inquire(draft, aspect=aspect) for aspect in ("style", "facts", "length")]
    ctx.reply([draft, *critics])


@miniagent
async def slow_checker(ctx: InteractionContext, name: str = "checker") -> None:
    """Takes one second, then says it is done."""
    await asyncio.sleep(1)
    ctx.reply(f"{name}: done")


async def main() -> None:
    """Stream the editor's reply, then run three slow agents at once."""
    async with MiniAgents():
        print("The editor's reply, streamed:")
        async for message_promise in editor.inquire("What are replayable streams?"):
            async for token in message_promise:
                print(token, end="", flush=True)
            print()

        started = time.monotonic()
        replies = [slow_checker.inquire(name=f"checker {n}") for n in (1, 2, 3)]
        for reply in replies:
            print(await reply)
        print(f"Three one-second agents took {time.monotonic() - started:.1f} s together.")


if __name__ == "__main__":
    asyncio.run(main())
