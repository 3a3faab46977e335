"""A reply far longer than the run bounds, and the bounds the web and A2A tests hold it to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from miniagents import InteractionContext, Message, MessagePromise, MiniAgent, miniagent

TOKEN = "x" * 10_000
TOKENS = 500
"""The reply: 500 tokens of 10 KB (5 MB), far past the bound."""
BOUND = 100_000
PEAK_BYTES = 4_000_000
"""What the process may allocate at most while a cut run streams (it was over 15 MB: the
reply's 5 MB three times over, in its log, its text and its client's events). Below the
reply's 5 MB, so that even one whole copy of it fails; about 2.5 MB on a quiet machine,
and up to 3.3 MB seen on a loaded one (the agent runs further ahead of the cut there)."""


@dataclass
class Sent:
    """How many tokens the agent wrote, and whether its writing was stopped (or ended)."""

    tokens: int = 0
    stopped: bool = False


def writer(sent: Sent) -> MiniAgent[..., Message]:
    """An agent whose reply is ``TOKENS`` tokens of ``TOKEN``, counted in ``sent``."""

    async def tokens() -> AsyncIterator[str]:
        try:
            for _ in range(TOKENS):
                sent.tokens += 1
                yield TOKEN
                await asyncio.sleep(0)  # (a model's stream waits for its next token)
        finally:
            sent.stopped = True

    @miniagent
    async def long_writer(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(tokens()))

    return long_writer
