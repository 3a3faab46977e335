"""The MiniAgents demo: agents that stream, run in parallel and compose.

Run it with ``python examples/demo.py``. It runs offline with the offline model (no API
key needed); with ``OPENAI_API_KEY`` set it asks OpenAI instead (``OPENAI_MODEL``, default
"gpt-4o-mini"). A writer (the LLM) streams its answer token by token, three critics read
it in parallel, and an editor gathers everything, in order, into one reply that streams to
the console. Then two agents run as a reactive pipeline.
"""

from __future__ import annotations

import asyncio
import os

import reactivex
from reactivex import operators as ops

from miniagents import InteractionContext, Message, MiniAgent, MiniAgents, miniagent
from miniagents.ext.llm.offline import create_offline_agent
from miniagents.ext.llm.openai import create_openai_agent


def make_writer() -> MiniAgent[...]:
    """OpenAI when a key is set, else the offline model with a scripted answer."""
    if os.environ.get("OPENAI_API_KEY"):
        model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        return create_openai_agent(model=model, max_tokens=200, system="Answer in two sentences.")
    return create_offline_agent(
        reply="Replayable streams keep every token they carry, so every reader, early or "
        "late, gets the whole answer while the model is asked only once.",
        token_delay=0.03,
    )


writer = make_writer()


@miniagent
async def critic(ctx: InteractionContext, aspect: str) -> None:
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
async def shout(ctx: InteractionContext) -> None:
    """Replies with each message it gets, upper-cased."""
    async for message in ctx.messages:
        ctx.reply(str(await message).upper())


async def main() -> None:
    """Run the editor and stream its reply; then run two agents as a reactive pipeline."""
    async with MiniAgents():
        print("Streaming the editor's reply:")
        async for message_promise in editor.inquire("What are replayable streams?"):
            async for token in message_promise:
                print(token, end="", flush=True)
            print()

        pipeline = await reactivex.of(Message(text="Why agents?")).pipe(
            writer.as_operator(), shout.as_operator(), ops.to_list()
        )
        print("As a reactive pipeline:", [message.text for message in pipeline])


if __name__ == "__main__":
    asyncio.run(main())
