"""An OpenAI stream that ends with an error event lets go of the SDK's generators at once.

The OpenAI SDK raises an error event's ``APIError`` inside its stream's generator, whose
frame holds the httpx generators under it (the SSE decoder's, the response's, the
connection's). Kept by the error's traceback, they waited for the collector, which could
finalize them in any thread (a durable run's SQLAlchemy step: "async generator already
executing", seen in CI). The agent clears those frames where it catches the error.
"""

from __future__ import annotations

import asyncio
import gc
import types

import openai
import pytest

from miniagents import MiniAgents
from miniagents.errors import LLMResponseError
from miniagents.ext.llm.openai import openai_agent
from miniagents.testing import FakeLLMServer


def _httpx_generators() -> list[str]:
    """The async generators of httpx and the SDK's stream still alive, by name."""
    return sorted(
        each.__qualname__
        for each in gc.get_objects()
        if isinstance(each, types.AsyncGeneratorType)
        and each.ag_frame is not None  # (not finished)
    )


async def test_an_error_event_leaves_no_httpx_generator_to_the_collector() -> None:
    gc.collect()
    gc.disable()
    try:
        before = _httpx_generators()
        with FakeLLMServer() as server:
            server.reply(tokens=["Par", "tial ", "never"], error_event_after=2)
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
            kept: list[BaseException] = []
            async with MiniAgents():
                reply = openai_agent.inquire("hi", model="gpt-test", async_client=client)
                with pytest.raises(LLMResponseError) as raised:
                    await reply
                kept.append(raised.value)  # (the error kept, as a durable run records it)
            for _ in range(10):  # (the aclose of each, as the loop runs it)
                await asyncio.sleep(0)
            left = [name for name in _httpx_generators() if name not in before]
            await client.close()
        assert left == []
    finally:
        gc.enable()
