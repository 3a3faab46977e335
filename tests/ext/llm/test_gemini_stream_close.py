"""A Gemini stream stopped part-way lets go of its HTTP connection at once, not at a collection."""

from __future__ import annotations

import gc

import httpx2
from google import genai

from miniagents.ext.llm.gemini import GeminiOptions, GeminiProvider
from miniagents.ext.llm.prompt import PromptText
from miniagents.ext.llm.provider import LLMCall, aclose_events
from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401


async def test_a_gemini_stream_stopped_part_way_closes_its_connection_without_the_collector(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: google-genai's response, kept by its own reading generator, a cycle, held the
    # connection open until the collector ran: the server never saw the close)
    fake_llm.reply(tokens=["one ", "two ", "three"], hang_after=1)
    options = genai.types.HttpOptions(
        base_url=fake_llm.gemini_base_url,
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},  # (not aiohttp's)
    )
    client = genai.Client(api_key="test", http_options=options)
    call = LLMCall("gemini-2.5-flash", True, None, (PromptText("user", "Hi"),))
    gc.collect()
    gc.disable()  # (no collection closes it instead)
    try:
        events = GeminiProvider().reply(call, GeminiOptions(async_client=client))
        assert await anext(events) == "one "
        await aclose_events(events)  # the reader stopped: the stream stops
        await fake_llm.wait_connections_closed_async(WAIT)
        assert fake_llm.requests[-1].client_disconnected
    finally:
        gc.enable()
        await client.aio.aclose()
