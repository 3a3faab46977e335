"""A user's own program: agents, messages and an LLM agent, checked by ``mypy --strict``.

``tests/test_install.py`` and ``.ci/run`` copy it into an empty folder outside the clone,
where only the installed ``miniagents`` can be found, then type-check it there with
``mypy --strict`` (and run it). Each ``assert_type`` pins a type the package gives, and the
line marked ``# type: ignore[arg-type]`` must fail: under ``--strict`` an unused ignore is
an error too, so an agent whose types mypy cannot see (``Any``) fails the check.
"""

from __future__ import annotations

import asyncio
from typing import assert_type

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageTuple,
    MiniAgents,
    miniagent,
)
from miniagents.ext.llm import LLMReply
from miniagents.ext.llm.offline import OfflineMessage, create_offline_agent
from miniagents.ext.llm.openai import OpenAIMessage, create_openai_agent


@miniagent
async def shout(ctx: InteractionContext, suffix: str = "!") -> None:
    """Reply with each incoming message in capitals, followed by ``suffix``."""
    async for promise in ctx.message_promises:
        message = await promise
        assert_type(message, Message)
        ctx.reply(str(message).upper() + suffix)


async def main() -> None:
    """Stream the assistant's reply token by token, then shout it."""
    assistant = create_offline_agent(reply="Hello there.", token_delay=0.0)
    async with MiniAgents():
        replies = assistant.inquire("Hi!")
        assert_type(replies, MessageSequencePromise[LLMReply[OfflineMessage]])
        async for promise in replies:
            assert_type(promise, MessagePromise[LLMReply[OfflineMessage]])
            async for token in promise:
                assert_type(token, str)
                print(token, end="")
        print()
        shouted = await shout.inquire(replies, suffix="!!")
        assert_type(shouted, MessageTuple)
        print(shouted)


def type_checked_only() -> None:
    """Lines for mypy alone: an OpenAI agent (it would need a key), and a wrong argument."""
    agent = create_openai_agent(model="gpt-4o-mini", system="Be brief.")
    assert_type(agent.inquire("Hi!"), MessageSequencePromise[LLMReply[OpenAIMessage]])
    shout.inquire("Hi!", suffix=1)  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
