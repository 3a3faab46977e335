"""A remote A2A agent run on a Ray worker: the worker calls it, its tokens stream to the driver.

The A2A server (``a2a_app``) runs in the test process under uvicorn on 127.0.0.1; the
``a2a_agent`` of it travels to a Ray worker (it pickles: its card or URL and options), which
calls the server and streams the reply back to the driver token by token; a remote failure
reaches the driver as the same typed error, its fields kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from miniagents import InteractionContext, MessagePromise, MiniAgents, miniagent
from miniagents.ext.a2a import A2AMessage, a2a_agent, a2a_app, afetch_agent_card
from miniagents.ext.a2a.errors import A2ATaskFailedError
from miniagents.ext.ray import ray_agent
from miniagents.ext.web import NoAuthentication, WebSettings
from tests.ext.web.serving import gated, served

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]


async def test_a_remote_a2a_agent_streams_from_a_ray_worker_to_the_driver() -> None:
    tokens: asyncio.Queue[str | None] = asyncio.Queue()
    async with served(a2a_app(gated(tokens), authentication=NoAuthentication())) as web:
        card = await afetch_agent_card(f"{web.base_url}/")
        on_ray = ray_agent(a2a_agent(card, alias="REMOTE"), num_cpus=0.5)
        async with MiniAgents():
            replies = on_ray.inquire("Hi")
            tokens.put_nowait("From ")
            streamed = aiter(await anext(aiter(replies)))
            assert await anext(streamed) == "From "
            tokens.put_nowait("a worker.")  # produced once the token before reached the driver
            assert await anext(streamed) == "a worker."
            tokens.put_nowait(None)
            [answer] = await replies
    assert isinstance(answer, A2AMessage)
    assert (str(answer), answer.agent_alias) == ("From a worker.", "REMOTE")


@miniagent
async def failing(ctx: InteractionContext) -> None:
    """Fails after a word."""

    async def tokens() -> AsyncIterator[str]:
        yield "Hm. "
        raise LookupError("no such river")

    ctx.reply(MessagePromise.from_async_iterable(tokens()))


async def test_a_remote_failure_reaches_the_driver_as_its_typed_error() -> None:
    texts = WebSettings(error_texts=True)  # (its text)
    app = a2a_app(failing, authentication=NoAuthentication(), settings=texts)
    async with served(app) as web:
        on_ray = ray_agent(a2a_agent(f"{web.base_url}/", alias="REMOTE"), num_cpus=0.5)
        async with MiniAgents():
            with pytest.raises(A2ATaskFailedError, match="no such river") as raised:
                await on_ray.inquire("Hi")
    assert raised.value.remote_type == "LookupError"
    assert raised.value.state == "TASK_STATE_FAILED"
