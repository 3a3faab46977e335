"""What an LLM call holds while its reply streams: the objects the collector walks.

At 100 concurrent calls the library's CPU over the raw SDK's is the cyclic collector's
(docs/benchmarks-history.md, "Issue 24, ninth pass"): every object a call holds while it
streams is promoted to the oldest generation and walked by each full collection. So a
streaming call keeps no closure, bound method or list it does not need.
"""

from __future__ import annotations

import asyncio
import gc
import types
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import anthropic
import openai
import pytest

from miniagents import MessagePromise, MessageSequencePromise, MiniAgents
from miniagents.ext.llm import LLMCall, LLMEvent, LLMOptions, make_llm_agent
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.offline import OfflineMessage
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.provider import Finish
from miniagents.promising.lowlevel import parked
from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import fake_llm  # noqa: F401

_CALLS = 100


@dataclass(frozen=True, kw_only=True)
class _HeldOptions(LLMOptions):
    model: str | None = "held"


class _HeldProvider:
    """Streams one token, waits for ``go``, then another: a reply caught mid-stream."""

    message_class = OfflineMessage

    def __init__(self) -> None:
        self.go = asyncio.Event()

    async def reply(self, call: LLMCall, options: _HeldOptions) -> AsyncIterator[LLMEvent]:
        yield "first "
        await self.go.wait()
        yield "second"
        yield Finish("stop")

    def translate(self, error: BaseException) -> BaseException:
        return error


async def _first_message(reply: MessageSequencePromise) -> MessagePromise:
    async for message in reply:
        return message
    raise AssertionError("The reply had no message.")


async def _rest(reader: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in reader]


@pytest.mark.parametrize(("stall_timeout", "limit"), [(None, None), (60.0, None), (None, _CALLS)])
async def test_a_streaming_call_keeps_no_closure_and_no_list_it_does_not_need(
    stall_timeout: float | None, limit: int | None
) -> None:
    # with a stall timeout (the default), the turn's own loop keeps the watch: no layer of
    # async generator around the events, and no timer of its own (its handle, its callback);
    # an agent with a concurrency limit holds no more than one without
    provider = _HeldProvider()
    held = make_llm_agent(_HeldOptions, provider, alias="HELD", summary="A held model.")
    # bound arguments (a dict holding a dict)
    held = held.fork(extra_options={"user": "u"}, max_concurrency=limit)
    async with MiniAgents(llm_stall_timeout=stall_timeout):
        gc.collect()
        before = Counter(type(item).__name__ for item in gc.get_objects())
        replies = [held.inquire("x") for _ in range(_CALLS)]
        readers = [aiter(await _first_message(reply)) for reply in replies]
        assert [await anext(reader) for reader in readers] == ["first "] * _CALLS
        # each reader now waits for the second token (what a call holds most of its life)
        waits = [asyncio.ensure_future(anext(reader)) for reader in readers]
        await asyncio.sleep(0)  # one turn of the loop: each wait's first step, in order
        assert len(parked(asyncio.get_running_loop())) == _CALLS  # each parked on its message
        gc.collect()
        after = Counter(type(item).__name__ for item in gc.get_objects())
        made = {name: n // _CALLS for name, n in (after - before).items() if n >= _CALLS}
        # a closure per call (e.g. the text message's on-abandoned callback, a comprehension
        # reading the call's locals) would show as function and cell, and a bound method of
        # the charge's (needed only when a budget has a limit: a quiet call's tokens are
        # counted in the turn's loop) as method
        assert "function" not in made
        assert "cell" not in made
        assert "method" not in made
        # no dict: the call (LLMCall) has slots, and the run's arguments and the agent
        # function's are made into the options before the call, and not held while it
        # streams
        assert "dict" not in made
        assert "TimerHandle" not in made  # the stall watches of a loop share one timer
        assert made.get("async_generator") == 1  # the provider's reply: no layer around it
        # the text message's record, the reply's record and flow, the input's record; the
        # charge's budgets are the context's tuple, a stream's one waiter is its future; a
        # refusal list only for a refusal, and the turn's list of text tokens only for a
        # text sink (a plain call's text is its message's record)
        assert made.get("list", 0) <= 5
        provider.go.set()
        assert [await wait for wait in waits] == ["second"] * _CALLS
        assert [await _rest(reader) for reader in readers] == [[]] * _CALLS


_REQUEST = {"api", "create", "arguments", "messages", "request"}
"""What a provider's reply builds for the request (the client, its bound ``create``, the
arguments and the prompt in the SDK's terms): the SDK has sent it once the stream is open."""


@pytest.mark.parametrize("api", ["chat_completions", "responses", "anthropic"])
async def test_a_provider_s_reply_does_not_hold_its_request_while_it_streams(
    fake_llm: FakeLLMServer,  # noqa: F811
    api: str,
) -> None:
    fake_llm.reply(["first ", "second"], pause_after=1)
    anthropic_client = anthropic.AsyncAnthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test"
    )
    openai_client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
    async with anthropic_client, openai_client, MiniAgents():
        reply: MessageSequencePromise
        if api == "anthropic":
            agent = anthropic_agent.fork(model="claude-test", async_client=anthropic_client)
            reply = agent.inquire("x")
        else:
            chosen: Literal["chat_completions", "responses"]
            chosen = "responses" if api == "responses" else "chat_completions"
            reply = openai_agent.inquire(
                "x", model="gpt-test", api=chosen, async_client=openai_client
            )
        reader = aiter(await _first_message(reply))
        assert await anext(reader) == "first "
        frames = [
            frame
            for item in gc.get_objects()
            if isinstance(item, types.AsyncGeneratorType)
            and item.ag_code.co_name in ("reply", "chat_reply", "responses_reply")
            and (frame := item.ag_frame) is not None
        ]
        assert len(frames) == 1  # the provider's, parked mid-stream
        held = frames[0].f_locals
        assert "stream" in held  # (the frame is the streaming one)
        assert _REQUEST.isdisjoint(held)
        (await fake_llm.wait_paused_async(0, 10.0)).resume()
        assert await _rest(reader) == ["second"]
