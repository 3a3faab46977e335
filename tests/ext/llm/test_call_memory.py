"""What an LLM call holds while its reply streams: the objects the collector walks.

At 100 concurrent calls the library's CPU over the raw SDK's is the cyclic collector's
(tests/benchmarks/README.md, "Issue 24, ninth pass"): every object a call holds while it
streams is promoted to the oldest generation and walked by each full collection. So a
streaming call keeps no closure, bound method or list it does not need.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from miniagents import MessagePromise, MessageSequencePromise, MiniAgents
from miniagents.ext.llm import LLMCall, LLMEvent, LLMOptions, make_llm_agent
from miniagents.ext.llm.offline import OfflineMessage
from miniagents.ext.llm.provider import Finish

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


@pytest.mark.parametrize("stall_timeout", [None, 60.0])
async def test_a_streaming_call_keeps_no_closure_and_no_list_it_does_not_need(
    stall_timeout: float | None,
) -> None:
    # with a stall timeout (the default), the turn's own loop keeps the watch: no layer of
    # async generator around the events, and no timer of its own (its handle, its callback)
    provider = _HeldProvider()
    held = make_llm_agent(_HeldOptions, provider, alias="HELD", summary="A held model.")
    held = held.fork(extra_options={"user": "u"})  # bound arguments (a dict holding a dict)
    async with MiniAgents(llm_stall_timeout=stall_timeout):
        gc.collect()
        before = Counter(type(item).__name__ for item in gc.get_objects())
        replies = [held.inquire("x") for _ in range(_CALLS)]
        readers = [aiter(await _first_message(reply)) for reply in replies]
        assert [await anext(reader) for reader in readers] == ["first "] * _CALLS
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
        # the call's own dict (LLMCall's); the run's arguments and the agent function's
        # are made into the options before the call, and not held while it streams
        assert made.get("dict", 0) <= 1
        assert "TimerHandle" not in made  # the stall watches of a loop share one timer
        assert made.get("async_generator") == 1  # the provider's reply: no layer around it
        # the text message's record, the reply's record and flow, the charge's budgets,
        # the input's record; a refusal list only for a refusal, and the turn's list of
        # text tokens only for a text sink (a plain call's text is its message's record)
        assert made.get("list", 0) <= 6
        provider.go.set()
        assert [await _rest(reader) for reader in readers] == [["second"]] * _CALLS
