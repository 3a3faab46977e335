"""A provider that wraps another, for the LLM provider contract: it records and can hold.

:class:`SpyProvider` passes every event of the provider it wraps on, as it comes, and
records what happened to each call: the events, the error raised, when the provider
started and when its reply iterator was closed. It can hold a reply after its first
token until the check releases it, to see the token reach the consumer meanwhile. And
:func:`within` waits for something with a limit in real time, whatever the loop's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMOptions, LLMProvider, aclose_events
from miniagents.testing._checks import within

__all__ = ["SpiedCall", "SpyProvider"]

OptionsT = TypeVar("OptionsT", bound=LLMOptions)


@dataclass(eq=False)
class SpiedCall:
    """One call of the wrapped provider, as it went.

    Attributes:
        call: The call the provider got.
        events: The events it streamed, in order.
        raised: What its reply iterator raised (its error, or the cancellation).
        started: Set once the provider is asked for its first event.
        closed: Set once its reply iterator has ended: finished, failed or closed.
        arrived: Set at each event (a check clears it to wait for the next one).
    """

    call: LLMCall
    events: list[LLMEvent] = field(default_factory=list)
    raised: BaseException | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def tokens(self) -> list[str]:
        """The text tokens streamed (empty ones left out: the agent drops them)."""
        return [event for event in self.events if isinstance(event, str) and event]


class SpyProvider(Generic[OptionsT]):
    """``provider``, recorded; with ``hold``, each reply waits after its first text token.

    Args:
        provider: The provider under the check.
        hold: Whether a reply waits for :meth:`release` after its first text token.
    """

    def __init__(self, provider: LLMProvider[OptionsT], *, hold: bool = False) -> None:
        self._provider = provider
        self._hold = hold
        self._released = asyncio.Event()
        self.calls: list[SpiedCall] = []
        self.called = asyncio.Event()

    @property
    def message_class(self) -> type[AssistantMessage]:
        """The wrapped provider's message class."""
        return self._provider.message_class

    async def started_call(self, seconds: float) -> SpiedCall:
        """The last call, once the provider was asked for its first event (within ``seconds``).

        Raises:
            ContractViolationError: if the call did not start in time.
        """
        await within(self.called.wait(), seconds, "a call of the provider")
        call = self.calls[-1]
        await within(call.started.wait(), seconds, "the provider's reply")
        return call

    def release(self) -> None:
        """Let the held replies go on."""
        self._released.set()

    async def reply(self, call: LLMCall, options: OptionsT) -> AsyncIterator[LLMEvent]:
        """The wrapped provider's events, recorded (and held, if told)."""
        spied = SpiedCall(call)
        self.calls.append(spied)
        self.called.set()
        events = self._provider.reply(call, options)
        iterator = aiter(events)
        try:
            spied.started.set()
            while True:
                try:
                    event = await anext(iterator)
                except StopAsyncIteration:
                    return
                spied.events.append(event)
                spied.arrived.set()
                yield event
                if self._hold and spied.tokens() == [event] and isinstance(event, str):
                    await self._released.wait()
        except BaseException as error:
            spied.raised = error
            raise
        finally:
            await aclose_events(events)
            spied.closed.set()

    def translate(self, error: BaseException) -> BaseException:
        """The wrapped provider's translation."""
        return self._provider.translate(error)
