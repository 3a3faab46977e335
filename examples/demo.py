"""The MiniAgents demo: agents that stream, run in parallel and compose. Offline, no API key.

Run it with ``python examples/demo.py``. A "writer" agent streams its answer token by
token (a scripted stand-in for an LLM), three "critic" agents read it in parallel, and an
editor agent gathers everything, in order, into one reply that streams to the console.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import reactivex
from reactivex import operators as ops

from miniagents import InteractionContext, Message, MessagePromise, MiniAgents, miniagent


async def scripted_tokens(text: str, delay: float = 0.03) -> AsyncIterator[str]:
    """Yield ``text`` word by word, like an LLM streaming its answer."""
    for word in text.split(" "):
        yield word + " "
        await asyncio.sleep(delay)


@miniagent
async def writer(ctx: InteractionContext) -> None:
    """Streams a short answer to the question it gets."""
    question = await ctx.messages
    answer = f"You asked: {question} Streams carry every token to every reader, once."
    ctx.reply(MessagePromise.from_async_iterable(scripted_tokens(answer), role="writer"))


@miniagent
async def critic(ctx: InteractionContext, aspect: str) -> None:
    """Reads the draft (while it streams) and comments on one aspect of it."""
    draft = await ctx.messages
    words = len(str(draft).split())
    ctx.reply(Message(text=f"[{aspect}] {words} words, fine by me.", role="critic"))


@miniagent
async def editor(ctx: InteractionContext) -> None:
    """Asks the writer, has three critics read the draft in parallel, and replies with all."""
    draft = writer.inquire(ctx.messages)
    critics = [critic.inquire(draft, aspect=aspect) for aspect in ("style", "facts", "length")]
    ctx.reply([draft, *critics])


async def main() -> None:
    """Run the editor and stream its reply; then run two agents as a reactive pipeline."""
    async with MiniAgents():
        print("Streaming the editor's reply:")
        async for message_promise in editor.inquire("What are replayable streams?"):
            async for token in message_promise:
                print(token, end="", flush=True)
            print()

        @miniagent
        async def shout(ctx: InteractionContext) -> None:
            async for message in ctx.messages:
                ctx.reply(str(await message).upper())

        pipeline = await reactivex.of(Message(text="Why agents?")).pipe(
            writer.as_operator(), shout.as_operator(), ops.to_list()
        )
        print("As a reactive pipeline:", [message.text for message in pipeline])


if __name__ == "__main__":
    asyncio.run(main())
