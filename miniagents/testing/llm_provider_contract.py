"""``LLMProviderContract``: the checks every ``LLMProvider`` must pass, for your own to run.

An LLM provider (:class:`~miniagents.ext.llm.provider.LLMProvider`) turns a call into a
stream of events; ``make_llm_agent`` does the rest. The checks make the agent of your
provider (wrapped, to watch it) and hold it to what every LLM agent promises: the reply's
metadata (role, model, agent alias) is known before its first token; the tokens stream
as they come, one event each (and as one token when ``stream=False``); one ``Finish``
comes last, and gives the reply its finish reason and usage; a failed call is an
``LLMError`` (the provider's own error kept as its ``__cause__``); a consumer giving up
closes the call; a stalled call ends with an ``LLMTimeoutError`` and is closed.

Make a test class that extends :class:`LLMProviderContract`, names your provider and its
options class, and scripts your service (a fake server, say) in three hooks (the docs page
"Testing your agents", its section on contract tests, has a whole example)::

    class TestMyProvider(LLMProviderContract[MyOptions]):
        def provider(self) -> LLMProvider[MyOptions]:
            return MyProvider()

        def options_class(self) -> type[MyOptions]:
            return MyOptions

        def script_reply(self, tokens: Sequence[str]) -> Mapping[str, object]:
            ...  # the next call answers these tokens

        def script_failure(self) -> Mapping[str, object]:
            ...  # the next call fails

        def script_hang(self) -> Mapping[str, object]:
            ...  # the next call sends nothing

A script hook may also return arguments for the agent of that call (an in-process model
is scripted so). Each check runs in a new event loop (:meth:`LLMProviderContract.run`);
a failed check raises a :class:`~miniagents.testing.errors.ContractViolationError` that
says what went wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import ClassVar, TypeVar

from miniagents.arguments import a_class
from miniagents.ext.llm.errors import LLMError, LLMTimeoutError
from miniagents.ext.llm.llm_agent import make_llm_agent
from miniagents.ext.llm.messages import AssistantMessage, TokenUsage
from miniagents.ext.llm.provider import Finish, LLMOptions
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.testing._checks import expect, give_up, raised_by, within
from miniagents.testing._provider_hooks import ProviderHooks
from miniagents.testing._spy import SpiedCall, SpyProvider
from miniagents.testing.errors import ContractViolationError
from miniagents.testing.virtual_time import manual_time

__all__ = ["CONTRACT_TOKENS", "LLMProviderContract"]

OptionsT = TypeVar("OptionsT", bound=LLMOptions)
T = TypeVar("T")

CONTRACT_TOKENS = ("Streams ", "are ", "replayable.")
"""The tokens the checks script (words with the space after them, as most models send)."""

_ALIAS = "CONTRACT_AGENT"


class LLMProviderContract(ProviderHooks[OptionsT]):
    """The checks of an LLM provider: extend it in a test class (see the module).

    Implement its hooks: ``provider``, ``options_class``, ``script_reply``,
    ``script_failure``, ``script_hang`` and, if you need them, ``agent_arguments``,
    ``call_sent``, ``call_closed`` and ``run``.

    Attributes:
        stall_timeout: The stall timeout of the stall check, in seconds of a stopped
            virtual clock (the check moves it on once the call has been sent).
        wait: The most seconds (real time) a check waits for what should come at once:
            longer, and it fails instead of hanging.
    """

    stall_timeout: ClassVar[float] = 30.0
    wait: ClassVar[float] = 10.0

    # -- the checks ------------------------------------------------------------------------

    def test_the_metadata_is_known_before_the_first_token(self) -> None:
        """Role, model and agent alias are there while the provider has sent nothing.

        The model is the call's, which must name one (a call without a model fails the
        check, rather than pass it for a metadata without one).
        """

        async def check() -> None:
            async with self._asking(self.script_hang) as (spy, reply):
                promise = await self._within(anext(aiter(reply)), "the reply's first message")
                call = await self._started(spy)
                metadata = dict(promise.metadata)
                model: object = call.call.model  # (typed str: a broken wrapper may not)
                expect(
                    isinstance(model, str) and bool(model),
                    f"the provider got a call whose model is {model!r}, so the reply's "
                    "metadata cannot be checked against it: an LLMCall names its model (a "
                    "non-empty str, the agent's model= argument); give the agent one in "
                    "agent_arguments(), and pass the call on as the agent made it",
                )
                role = spy.message_class.model_fields["role"].default
                wanted = {"role": role, "model": model, "agent_alias": _ALIAS}
                expect(
                    {name: metadata.get(name) for name in wanted} == wanted,
                    f"the reply's metadata before its first token is {metadata}, not {wanted}",
                )
                expect(not promise.done, "the reply of a call that sends nothing is complete")
                await self._give_up(reply, call)

        self.run(check())

    def test_the_tokens_stream_as_they_come(self) -> None:
        """Each token reaches the consumer at once, one event each, in order."""

        async def check() -> None:
            async with self._asking(self._script_tokens, hold=True) as (spy, reply):
                promise = await self._within(anext(aiter(reply)), "the reply's first message")
                tokens = aiter(promise)
                first = await self._within(anext(tokens), "the first token")
                expect(
                    first == CONTRACT_TOKENS[0],
                    f"the first token is {first!r}, not {CONTRACT_TOKENS[0]!r}",
                )
                call = spy.calls[-1]
                expect(
                    not call.closed.is_set() and not promise.done,
                    "the first token came only after the provider's stream had ended",
                )
                spy.release()
                rest = await self._within(_all(tokens), "the rest of the tokens")
                message = await promise
            got = [first, *rest]
            expect(got == list(CONTRACT_TOKENS), f"the tokens are {got}, not {CONTRACT_TOKENS}")
            expect(message.text == "".join(CONTRACT_TOKENS), f"the text is {message.text!r}")

        self.run(check())

    def test_a_call_without_streaming_gives_the_whole_text_as_one_token(self) -> None:
        """With ``stream=False``, the reply's one token is the whole text."""

        async def check() -> None:
            async with self._asking(self._script_tokens, stream=False) as (spy, reply):
                promise = await anext(aiter(reply))
                tokens = await self._within(_all(aiter(promise)), "the reply")
            expect(not spy.calls[-1].call.stream, "the call asked for a stream")
            whole = "".join(CONTRACT_TOKENS)
            expect(tokens == [whole], f"without streaming, the tokens are {tokens}")

        self.run(check())

    def test_one_finish_comes_last_and_ends_the_reply(self) -> None:
        """The provider's stream ends with one ``Finish``; its reason and usage are the reply's."""

        async def check() -> None:
            async with self._asking(self._script_tokens) as (spy, reply):
                messages = await self._within(reply.aresolve(), "the reply")
            events = spy.calls[-1].events
            finishes = [event for event in events if isinstance(event, Finish)]
            expect(len(finishes) == 1, f"the provider sent {len(finishes)} Finish events")
            expect(isinstance(events[-1], Finish), f"the last event is {events[-1]!r}")
            finish = finishes[0]
            expect(len(messages) == 1, f"the reply is {len(messages)} messages: {messages!r}")
            message = messages[0]
            expect(
                type(message) is spy.message_class,
                f"the reply is {a_class(type(message))}, not the provider's message class",
            )
            if not isinstance(message, AssistantMessage):
                raise ContractViolationError("the provider's message class is no AssistantMessage")
            expect(
                message.finish_reason == finish.reason,
                f"the reply's finish reason is {message.finish_reason!r}, not {finish.reason!r}",
            )
            usage = TokenUsage(
                input_tokens=finish.input_tokens,
                output_tokens=finish.output_tokens,
                cached_input_tokens=finish.cached_input_tokens,
                cache_write_tokens=finish.cache_write_tokens,
                reasoning_tokens=finish.reasoning_tokens,
            )
            counted = (
                None
                if message.usage is None
                else message.usage.model_copy(
                    update={"cost_usd": None}  # the price table's, not the provider's
                )
            )
            expect(counted == usage, f"the reply's usage is {message.usage!r}, not {usage}")

        self.run(check())

    def test_a_failed_call_is_an_llm_error(self) -> None:
        """A failed call ends the reply with an ``LLMError``, the provider's error its cause."""

        async def check() -> None:
            async with self._asking(self.script_failure) as (spy, reply):
                failure = await raised_by(reply.aresolve(), self.wait, "the error")
            raised = spy.calls[-1].raised
            expect(
                isinstance(failure, LLMError),
                f"a failed call gave {failure or 'no error'!r}, not an LLMError: translate() "
                "the provider's errors into LLMError subclasses",
            )
            if failure is not None and raised is not None and not isinstance(raised, LLMError):
                expect(
                    failure.__cause__ is raised,
                    f"the LLMError's __cause__ is {failure.__cause__!r}, not the provider's "
                    f"error {raised!r}",
                )

        self.run(check())

    def test_giving_up_on_a_reply_closes_the_call(self) -> None:
        """When every consumer of the reply gives up, the provider's call is closed."""

        async def check() -> None:
            async with self._asking(self.script_hang) as (spy, reply):
                await self._give_up(reply, await self._started(spy))

        self.run(check())

    def test_a_stalled_call_ends_with_an_llm_timeout_error_and_is_closed(self) -> None:
        """A call that sends nothing for ``stall_timeout`` seconds is stopped, and closed."""

        async def check() -> None:
            with manual_time() as clock:
                asking = self._asking(self.script_hang, stall_timeout=self.stall_timeout)
                async with asking as (spy, reply):
                    waiting = asyncio.ensure_future(reply.aresolve())
                    call = await self._started(spy)
                    await self._sent()
                    while True:  # an event that comes after the clock moved (the rest of
                        # a preamble, say) gives the reply stall_timeout more: move it again
                        call.arrived.clear()
                        clock.advance(self.stall_timeout)
                        arrived = asyncio.ensure_future(call.arrived.wait())
                        either = asyncio.wait(
                            {waiting, arrived}, return_when=asyncio.FIRST_COMPLETED
                        )
                        await self._within(either, "the stall timeout")
                        arrived.cancel()
                        if waiting.done():
                            break
                    stopped = await raised_by(waiting, self.wait, "the stall timeout")
                    expect(
                        isinstance(stopped, LLMTimeoutError),
                        f"a stalled call gave {stopped or 'no error'!r}, not an LLMTimeoutError",
                    )
                    await self._closed(call)

        self.run(check())

    # -- helpers ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _asking(
        self, script: Callable[[], Mapping[str, object]], *, hold: bool = False, **given: object
    ) -> AsyncIterator[tuple[SpyProvider[OptionsT], MessageSequencePromise]]:
        """The provider, watched, and its agent's reply, in ``MiniAgents``.

        The agent is asked with the arguments of ``script`` (a hook, called once in
        ``MiniAgents``) and ``given``; with ``hold``, the provider's events wait for
        ``spy.release()``.
        """
        spy = SpyProvider(self.provider(), hold=hold)
        async with MiniAgents():
            arguments = {**self.agent_arguments(), **script(), **given}
            agent: MiniAgent[...] = make_llm_agent(
                self.options_class(), spy, alias=_ALIAS, summary="The agent the contract checks."
            )
            yield spy, agent.inquire("Hi!", **arguments)

    def _script_tokens(self) -> Mapping[str, object]:
        return self.script_reply(CONTRACT_TOKENS)

    async def _within(self, awaitable: Awaitable[T], what: str) -> T:
        return await within(awaitable, self.wait, what)

    async def _started(self, spy: SpyProvider[OptionsT]) -> SpiedCall:
        return await spy.started_call(self.wait)

    async def _give_up(self, reply: MessageSequencePromise, call: SpiedCall) -> None:
        """Give up on ``reply`` once the call is sent; check that the call gets closed."""
        await give_up(reply, self._sent())
        await self._closed(call)

    async def _closed(self, call: SpiedCall) -> None:
        await self._within(call.closed.wait(), "the closing of the provider's reply iterator")
        closed = self.call_closed()
        if closed is not None:
            result = await self._within(closed, "call_closed()")
            expect(result is not False, "the call given up on stayed open at the service")

    async def _sent(self) -> None:
        sent = self.call_sent()
        if sent is not None:
            await self._within(sent, "call_sent()")


async def _all(tokens: AsyncIterator[str]) -> list[str]:
    return [token async for token in tokens]
