"""The MiniAgents streams layer in one minute: runs offline, needs no API key.

Run it with ``python examples/streams_demo.py``. It streams a message token by token
through a reactive pipeline, replays it to a late consumer, and flattens a nested
mix of strings, messages and streams into one ordered message sequence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from reactivex import operators as ops

from miniagents.messages import Message, MessagePromise, MessageSequencePromise


async def scripted_tokens(text: str, delay: float = 0.02) -> AsyncIterator[str]:
    """Yield ``text`` word by word, like an LLM streaming its answer."""
    for word in text.split(" "):
        yield word + " "
        await asyncio.sleep(delay)


async def main() -> None:
    """Show streaming, replay, reactive composition and flattening."""
    answer = MessagePromise.from_async_iterable(
        scripted_tokens("Streams are replayable: every consumer sees every token."),
        role="assistant",
    )

    print("Streaming:  ", end="")
    async for token in answer:
        print(token, end="", flush=True)
    print()

    shouting = MessagePromise.from_observable(
        answer.as_observable().pipe(ops.map(str.upper)), role="assistant"
    )
    print("Piped:      ", await shouting)
    print("Replayed:   ", "".join([token async for token in answer]))

    conversation = MessageSequencePromise(
        [
            "Hello!",
            Message(text="Metadata travels with messages.", role="system"),
            [answer, MessagePromise.from_async_iterable(scripted_tokens("Nested, in order."))],
        ]
    )
    print("Flattened:")
    async for message_promise in conversation:
        message = await message_promise
        print(f"  [{message_promise.metadata.get('role', 'user')}] {message}")


if __name__ == "__main__":
    asyncio.run(main())
