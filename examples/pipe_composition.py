"""Agents as reactive operators: compose them with ``Observable.pipe``.

Run it with ``python examples/pipe_composition.py``. ``agent.as_operator()`` turns an agent
into a ``reactivex`` operator from messages to its reply messages, so agents and the
operators of ``reactivex.operators`` chain in one pipeline. Each subscription to an agent's
operator is one call of the agent with the whole source as its input; to call an agent once
per item, map each item to its own small pipeline (``concat_map`` below). It uses the
offline model unless ``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY`` or
``ANTHROPIC_AUTH_TOKEN``) is set.
"""

from __future__ import annotations

import asyncio

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.ext.llm.from_env import llm_agent_from_env

answerer = llm_agent_from_env(
    system="Answer in five words or fewer.",
    max_tokens=20,
    offline_reply=lambda call: f"A short answer to {call.messages[-1][1]!r}",
    token_delay=0.0,
)


@miniagent
async def shout(ctx: InteractionContext) -> None:
    """Replies with each message it gets, upper-cased."""
    async for message in ctx.message_promises:
        ctx.reply(str(await message).upper())


@miniagent
async def numbered(ctx: InteractionContext, start: int = 1) -> None:
    """Replies with its messages, numbered."""
    for number, message in enumerate(await ctx.messages, start):
        ctx.reply(f"{number}. {message}")


def ask(question: Message) -> Observable[Message]:
    """A pipeline of its own for one question: one call of the answerer."""
    return reactivex.of(question).pipe(answerer.as_operator())


async def main() -> None:
    """Run a pipeline of plain operators and agents over a few questions."""
    questions = [Message(text=text) for text in ("Why agents?", "Why streams?", "Why types?")]
    async with MiniAgents():
        answers = await reactivex.from_iterable(questions).pipe(
            ops.concat_map(ask),  # one LLM call per question, the answers in order
            shout.as_operator(),  # one call, with every answer as its input
            ops.to_list(),
        )
        for answer in answers:
            print(answer)

        listed = await reactivex.from_iterable(answers).pipe(
            numbered.as_operator(start=10), ops.map(str), ops.to_list()
        )
        print("\n".join(listed))


if __name__ == "__main__":
    asyncio.run(main())
