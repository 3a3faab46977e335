"""Token streaming from an LLM agent: print the answer as it is written, then replay it.

Run it with ``python examples/llm_example.py``. It uses the offline model unless
``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN``) is set.
"""

from __future__ import annotations

import asyncio

from miniagents import MiniAgents
from miniagents.ext.llm import AssistantMessage, SystemMessage, UserMessage
from miniagents.ext.llm.from_env import llm_agent_from_env

OFFLINE_ANSWER = (
    "A replayable stream keeps every token it has carried, so a reader that comes late "
    "still gets the whole answer, while the model is asked only once."
)


async def main() -> None:
    """Stream one answer token by token, then read it again from the replay."""
    llm = llm_agent_from_env(offline_reply=OFFLINE_ANSWER, max_tokens=200)
    async with MiniAgents():
        reply = llm.inquire(
            [
                SystemMessage(text="Answer in one or two sentences."),
                UserMessage(text="What is a replayable stream?"),
            ]
        )
        async for message_promise in reply:
            async for token in message_promise:
                print(token, end="", flush=True)  # each token as soon as it arrives
            print()

        answer = (await reply)[0]  # the same reply again, replayed: no second call
        if isinstance(answer, AssistantMessage):
            print(f"model: {answer.model}, finish reason: {answer.finish_reason}")
            if answer.usage is not None:
                print(f"tokens: {answer.usage.input_tokens} in, {answer.usage.output_tokens} out")


if __name__ == "__main__":
    asyncio.run(main())
