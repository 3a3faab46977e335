"""The agents layer: @miniagent, MiniAgent, InteractionContext, AgentCall and MiniAgents."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, cast
from unittest.mock import AsyncMock

import pytest

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageTuple,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.errors import (
    AgentArgumentError,
    AgentDefinitionError,
    AgentFinishedError,
    ArgumentError,
    ContextArgumentError,
    LoopAlreadyRunningError,
    MessageTypeError,
    MiniAgentsError,
    NoActiveContextError,
    StreamCancelledError,
)
from miniagents.ext.llm.offline import offline_agent
from miniagents.messages import MessageTokenAppender
from miniagents.miniagents import AgentCall, MessageHandler
from miniagents.miniagents.lowlevel import at_exit, enclosing_contexts, start_task
from miniagents.promising.lowlevel import running_tasks
from miniagents.testing import VirtualClock
from tests.fakes.reading import texts
from tests.fakes.reading import texts_until_error as read_until_error

# -- helpers -------------------------------------------------------------------------------


WAIT = 10.0  # seconds: far more than anything here takes, so a hang fails instead of blocking


class Boom(Exception):
    """An error raised by an agent."""


async def texts_until_error(
    sequence: MessageSequencePromise,
) -> tuple[list[str | None], BaseException | None]:
    """The texts before the error that ends ``sequence`` (if any, Ctrl+C too), and that error."""
    return await read_until_error(sequence, (Exception, KeyboardInterrupt))


def texts_of(messages: MessageTuple) -> list[str | None]:
    return [message.text for message in messages]


async def within(awaitable: Awaitable[Any]) -> Any:
    """Await with a generous timeout, so that a bug makes the test fail instead of hang."""
    return await asyncio.wait_for(awaitable, WAIT)


def loose(agent: MiniAgent[...]) -> Any:
    """The agent without static argument checks, to call it with wrong arguments."""
    return agent


def untyped_miniagent(func: object, **kwargs: object) -> MiniAgent[...]:
    """``@miniagent(**kwargs)`` on something the type checker would refuse."""
    return cast(MiniAgent[...], cast(Any, miniagent)(**kwargs)(func))


def agent_error_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "miniagents" and r.levelno >= logging.ERROR]


class HandlerLog:
    """A message handler that records what it is called with."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[MessagePromise, Message]] = []
        self.delay = delay

    async def __call__(self, promise: MessagePromise, message: Message) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.calls.append((promise, message))

    @property
    def messages(self) -> list[Message]:
        return [message for _, message in self.calls]

    @property
    def texts(self) -> list[str | None]:
        return [message.text for _, message in self.calls]


def replying(*replies: str) -> MiniAgent[[]]:
    """An agent that replies with ``replies``, one by one."""

    @miniagent
    async def replier(ctx: InteractionContext) -> None:
        for reply in replies:
            ctx.reply(reply)

    return replier


def timed_agent(events: list[tuple[str, str]], delay: float) -> MiniAgent[[]]:
    """An agent that records its start and end in ``events`` (by alias) around a sleep."""

    @miniagent
    async def timed(ctx: InteractionContext) -> None:
        events.append(("start", ctx.this_agent.alias))
        await asyncio.sleep(delay)
        ctx.reply(f"{ctx.this_agent.alias} done")
        events.append(("end", ctx.this_agent.alias))

    return timed


async def tokens(*pieces: str, delay: float = 0.01) -> AsyncIterator[str]:
    for piece in pieces:
        await asyncio.sleep(delay)
        yield piece


async def slow_strings(*items: str, delay: float = 0.03) -> AsyncIterator[str]:
    """Messages (each a str) from an async generator, one every ``delay`` seconds."""
    for item in items:
        await asyncio.sleep(delay)
        yield item


# -- @miniagent ------------------------------------------------------------------------------


def test_bare_decorator_makes_an_agent_named_after_the_function() -> None:
    async def my_helper_agent(ctx: InteractionContext) -> None:
        """Helps.

        In many ways.
        """

    agent = miniagent(my_helper_agent)
    assert isinstance(agent, MiniAgent)
    assert agent.alias == "MY_HELPER_AGENT"
    assert agent.description == "Helps.\n\nIn many ways."
    assert agent.func is my_helper_agent


def test_an_agent_of_a_partial_or_an_object_is_named_and_described_by_its_function() -> None:
    async def greet(ctx: InteractionContext, who: str, times: int) -> None:
        """Greet someone a few times."""

    class Greeter:
        """Greets."""

        async def __call__(self, ctx: InteractionContext) -> None:
            pass

    of_partial = miniagent(functools.partial(functools.partial(greet, times=2), who="Ada"))
    # (was: "FUNCTOOLS.PARTIAL(<FUNCTION ...GREET AT 0X7F...>, ...)", and partial's docstring)
    assert (of_partial.alias, of_partial.description) == ("GREET", "Greet someone a few times.")
    of_object = miniagent(Greeter())
    assert (of_object.alias, of_object.description) == ("GREETER", "Greets.")  # (was: its repr)


def test_an_agent_without_docstring_has_no_description() -> None:
    @miniagent
    async def quiet(ctx: InteractionContext) -> None:
        pass

    assert quiet.alias == "QUIET"
    assert quiet.description is None


async def test_decorator_arguments_set_alias_description_and_bound_arguments() -> None:
    @miniagent(alias="Greeter-1", description="Says hello.", greeting="Hey")
    async def greet(ctx: InteractionContext, greeting: str = "Hello", name: str = "you") -> None:
        """Not the description."""
        ctx.reply(f"{greeting}, {name}!")

    assert greet.alias == "Greeter-1"
    assert greet.description == "Says hello."
    async with MiniAgents():
        assert texts_of(await greet.inquire()) == ["Hey, you!"]
        assert texts_of(await greet.inquire(name="Ann")) == ["Hey, Ann!"]
        assert texts_of(await greet.inquire(greeting="Yo")) == ["Yo, you!"]


def test_decorator_with_arguments_but_no_alias_still_defaults_to_the_function_name() -> None:
    @miniagent(description="Described.")
    async def described(ctx: InteractionContext) -> None:
        """Docstring."""

    assert described.alias == "DESCRIBED"
    assert described.description == "Described."


@pytest.mark.parametrize("alias", ["", "  ", 5, b"W"])
def test_an_alias_that_names_nothing_is_refused_where_it_is_given(alias: object) -> None:
    # (was: taken, an empty alias naming the agent nowhere and an int failing later with an
    # AttributeError, as an LLM agent's check wrote alias.lower())
    async def writer(ctx: InteractionContext) -> None:
        ctx.reply("draft")

    for make in (
        lambda: cast(Any, miniagent)(alias=alias)(writer),
        lambda: miniagent(writer).fork(alias=cast(Any, alias)),
        lambda: offline_agent.fork(alias=cast(Any, alias)),
    ):
        with pytest.raises(ArgumentError, match=r"needs alias to be a non-empty str") as raised:
            make()
        assert 'alias="WRITER"' in str(raised.value)
        assert raised.value.parameter == "alias"
    assert miniagent(writer).fork(alias="EDITOR").alias == "EDITOR"


@pytest.mark.parametrize("with_arguments", [False, True])
def test_a_non_async_function_is_an_agent_definition_error(with_arguments: bool) -> None:
    def sync_agent(ctx: InteractionContext) -> None:
        pass

    decorator = cast(Any, miniagent)(alias="SYNC") if with_arguments else cast(Any, miniagent)
    with pytest.raises(AgentDefinitionError) as raised:
        decorator(sync_agent)
    error = raised.value
    assert isinstance(error, TypeError)
    assert isinstance(error, MiniAgentsError)
    assert "'sync_agent'" in str(error)
    assert "async def sync_agent(ctx: InteractionContext" in str(error)


async def _called_by_mistake(ctx: InteractionContext) -> None:
    ctx.reply("never")


@pytest.mark.parametrize("what", ["number", "coroutine", "agent"])
def test_something_not_callable_is_an_agent_definition_error_naming_the_fix(what: str) -> None:
    # a plausible slip: the function called (a coroutine), an agent decorated again
    given: object = 42
    if what == "coroutine":
        given = _called_by_mistake(cast(InteractionContext, None))
    elif what == "agent":
        given = untyped_miniagent(_called_by_mistake)
    try:
        with pytest.raises(AgentDefinitionError) as raised:
            untyped_miniagent(given)
    finally:
        if inspect.iscoroutine(given):
            given.close()
    assert isinstance(raised.value, TypeError)
    message = str(raised.value)
    assert "@miniagent takes an agent function" in message
    named = {"number": "an int", "coroutine": "a coroutine", "agent": "a MiniAgent"}[what]
    assert f"but got {named} (" in message  # (on main: "a int")
    hint = {
        "number": "async def agent(ctx: InteractionContext, ...)",
        "coroutine": "without calling it",
        "agent": "an agent already",
    }[what]
    assert hint in message


def test_an_async_generator_function_is_an_agent_definition_error_at_decoration() -> None:
    async def yielding(ctx: InteractionContext) -> AsyncIterator[str]:
        yield "a reply"

    with pytest.raises(AgentDefinitionError) as raised:
        untyped_miniagent(yielding)  # (on main: accepted, and each inquiry failed later)
    assert isinstance(raised.value, TypeError)
    message = str(raised.value)
    assert "'yielding' is an async generator function" in message
    assert "ctx.reply(" in message


@miniagent
async def _greeter(ctx: InteractionContext, greeting: str = "Hello") -> None:
    ctx.reply(f"{greeting}, {(await ctx.message_promises)[0]}")


def _plain_greeter(ctx: InteractionContext, greeting: str = "Hello") -> Awaitable[None]:
    """A plain function (no ``async``) that returns an awaitable: an agent function too."""
    return _greeter.func(ctx, greeting)


class _AwaitableReply:
    """An awaitable that is no coroutine: what a plain agent function may return too."""

    def __init__(self, ctx: InteractionContext) -> None:
        self.ctx = ctx

    def __await__(self) -> Generator[Any, None, None]:
        self.ctx.reply("from an awaitable")
        yield from asyncio.sleep(0).__await__()


@pytest.mark.parametrize("max_concurrency", [None, 1])
async def test_a_plain_function_that_returns_an_awaitable_is_an_agent_as_its_type_says(
    max_concurrency: int | None,
) -> None:
    # issue 62, item 9: mypy took it (an AgentFunction returns an Awaitable), the run
    # refused it ("@miniagent needs an async function"), as message handlers did (ae31a94)
    plain = miniagent(max_concurrency=max_concurrency)(_plain_greeter)
    by_lambda = untyped_miniagent(lambda ctx: _AwaitableReply(ctx), alias="LAMBDA")
    async with MiniAgents():
        assert texts_of(await plain.inquire("Ann", greeting="Hi")) == ["Hi, Ann"]
        assert texts_of(await by_lambda.inquire()) == ["from an awaitable"]
    assert plain.alias == "_PLAIN_GREETER"
    assert plain.description == _plain_greeter.__doc__


async def test_a_plain_function_that_returns_no_awaitable_fails_its_interaction() -> None:
    # (what it returns cannot be told before the call: an unannotated lambda)
    broken = untyped_miniagent(lambda ctx: ctx.reply("too soon"), alias="BROKEN")
    async with MiniAgents():
        texts, error = await texts_until_error(broken.inquire())
    assert texts == ["too soon"]
    assert isinstance(error, AgentDefinitionError)
    assert str(error) == (
        "The agent function of BROKEN must return an awaitable (the agent awaits it), but "
        "it returned NoneType: make it `async def agent(ctx: InteractionContext, ...) -> None`."
    )


async def test_the_input_given_by_keyword_is_refused_naming_its_place() -> None:
    # on main: "Check the spelling, or add a parameter 'messages' to the agent function"
    async with MiniAgents():
        with pytest.raises(AgentArgumentError) as raised:
            loose(_greeter).inquire(messages="Ann")
    assert str(raised.value) == (
        "The agent _GREETER got an unexpected keyword argument 'messages' in inquire(); it "
        "takes: greeting. Pass the input messages first, by position: inquire(messages, ...)."
    )


async def _returns_its_reply(ctx: InteractionContext) -> str:
    ctx.reply("replied")
    return "returned"  # a slip: the value is no reply


@pytest.mark.parametrize("max_concurrency", [None, 2])
async def test_an_agent_that_returns_a_value_fails_its_interaction_naming_ctx_reply(
    max_concurrency: int | None,
) -> None:
    # on main the value was dropped without a word and the replies ended as if complete
    returning = untyped_miniagent(_returns_its_reply, max_concurrency=max_concurrency)
    by_lambda = untyped_miniagent(lambda ctx: _returns_its_reply(ctx), alias="LAMBDA")
    async with MiniAgents():
        for agent in (returning, by_lambda):
            texts, error = await texts_until_error(agent.inquire())
            assert texts == ["replied"]
            assert isinstance(error, AgentDefinitionError)
            assert isinstance(error, TypeError)
            assert str(error) == (
                f"The agent {agent.alias} returned a value other than None, but an agent's "
                "return value is dropped: reply it instead, with ctx.reply(...), and return "
                "nothing."
            )


async def _no_parameters() -> None:
    pass


async def _keyword_only_context(*, ctx: InteractionContext) -> None:
    pass


async def _only_var_keywords(**kwargs: object) -> None:
    pass


@pytest.mark.parametrize("func", [_no_parameters, _keyword_only_context, _only_var_keywords])
def test_a_function_without_a_context_parameter_is_an_agent_definition_error(
    func: Callable[..., Awaitable[None]],
) -> None:
    with pytest.raises(AgentDefinitionError) as raised:
        untyped_miniagent(func)
    assert isinstance(raised.value, TypeError)
    message = str(raised.value)
    assert func.__name__.upper() in message
    assert "first positional parameter" in message
    assert "async def agent(ctx: InteractionContext, ...)" in message


def test_a_positional_only_parameter_after_the_context_is_an_agent_definition_error() -> None:
    async def counted(ctx: InteractionContext, times: int, /) -> None:
        pass

    with pytest.raises(
        AgentDefinitionError, match=r"'times' of the agent COUNTED is positional-only"
    ):
        untyped_miniagent(counted)

    async def context_only(ctx: InteractionContext, /, times: int = 1) -> None:
        pass

    untyped_miniagent(context_only)  # the context itself may be positional-only


def test_an_agent_repr_shows_alias_and_bound_arguments() -> None:
    @miniagent(alias="R", x=1)
    async def with_x(ctx: InteractionContext, x: int) -> None:
        pass

    assert repr(with_x) == "<MiniAgent R bound={'x': 1}>"


# -- inquire: streaming, awaiting, flattening -------------------------------------------------


async def test_inquire_returns_a_sequence_that_awaits_to_a_message_tuple() -> None:
    async with MiniAgents():
        replies = replying("one", "two").inquire()
        assert isinstance(replies, MessageSequencePromise)
        resolved = await replies
    assert isinstance(resolved, MessageTuple)
    assert resolved == (Message(text="one"), Message(text="two"))
    assert str(resolved) == "one\n\ntwo"


async def test_the_first_reply_arrives_before_the_agent_finishes() -> None:
    release = asyncio.Event()
    finished: list[bool] = []

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        ctx.reply("first")
        await release.wait()
        ctx.reply("second")
        finished.append(True)

    async with MiniAgents():
        replies = slow.inquire()
        iterator = aiter(replies)
        first = await within(anext(iterator))
        assert (await first).text == "first"
        assert not finished
        assert not replies.done
        release.set()
        second = await within(anext(iterator))
        assert (await second).text == "second"
        with pytest.raises(StopAsyncIteration):
            await within(anext(iterator))
    assert finished == [True]


async def test_a_reply_list_mixing_strings_messages_and_other_agents_is_flattened_in_order(
    virtual_clock: VirtualClock,
) -> None:
    events: list[tuple[str, str]] = []
    timed = timed_agent(events, 0.05)
    first, second = timed.fork(alias="B"), timed.fork(alias="C")

    @miniagent
    async def mixer(ctx: InteractionContext) -> None:
        ctx.reply(["a", Message(text="b"), first.inquire(), [second.inquire(), "z"]])

    async with MiniAgents():
        replies = mixer.inquire()
        assert await within(texts(replies)) == ["a", "b", "B done", "C done", "z"]
    assert {events[0], events[1]} == {("start", "B"), ("start", "C")}
    assert {events[2], events[3]} == {("end", "B"), ("end", "C")}


async def test_an_async_generator_in_a_reply_streams_in_place(virtual_clock: VirtualClock) -> None:
    @miniagent
    async def generating(ctx: InteractionContext) -> None:
        ctx.reply(["a", slow_strings("g1", "g2"), "z"])

    async with MiniAgents():
        assert await within(texts(generating.inquire())) == ["a", "g1", "g2", "z"]


async def test_a_slow_earlier_agent_keeps_its_place_before_a_fast_later_one(
    virtual_clock: VirtualClock,
) -> None:
    events: list[tuple[str, str]] = []
    slow = timed_agent(events, 0.1).fork(alias="SLOW")
    fast = timed_agent(events, 0.0).fork(alias="FAST")

    @miniagent
    async def ordered(ctx: InteractionContext) -> None:
        ctx.reply([slow.inquire(), fast.inquire()])

    async with MiniAgents():
        assert texts_of(await within(ordered.inquire())) == ["SLOW done", "FAST done"]
    assert events.index(("end", "FAST")) < events.index(("end", "SLOW"))


# -- parallelism -------------------------------------------------------------------------------


async def test_two_agents_inquired_together_both_start_before_either_ends(
    virtual_clock: VirtualClock,
) -> None:
    events: list[tuple[str, str]] = []
    timed = timed_agent(events, 0.05)
    async with MiniAgents():
        first = timed.fork(alias="ONE").inquire()
        second = timed.fork(alias="TWO").inquire()
        assert texts_of(await within(second)) == ["TWO done"]
        assert texts_of(await within(first)) == ["ONE done"]
    assert [kind for kind, _ in events] == ["start", "start", "end", "end"]
    assert events[:2] == [("start", "ONE"), ("start", "TWO")]


async def test_gathered_inquiries_run_in_parallel(virtual_clock: VirtualClock) -> None:
    @miniagent
    async def sleeper(ctx: InteractionContext) -> None:
        await asyncio.sleep(0.2)
        ctx.reply("Done!")

    async with MiniAgents():
        results = await within(asyncio.gather(*[sleeper.inquire() for _ in range(5)]))
    assert [texts_of(result) for result in results] == [["Done!"]] * 5
    assert virtual_clock.elapsed == pytest.approx(
        0.2
    )  # five sleeps of 0.2 s at once, not one after another


async def test_a_reply_is_started_as_a_task_with_ensure_future_as_the_agents_page_says() -> None:
    # docs/concepts/agents.md: a reply is awaitable, not a coroutine, so asyncio's
    # create_task refuses it; ensure_future (or create_task of reply.aresolve()) starts it
    @miniagent
    async def echo(ctx: InteractionContext) -> None:
        ctx.reply("Done!")

    async with MiniAgents():
        reply = echo.inquire()
        with pytest.raises(TypeError, match="a coroutine was expected"):
            asyncio.create_task(cast(Any, reply))  # noqa: RUF006  # (refused: no task)
        task = asyncio.ensure_future(reply)
        assert not task.done()
        assert texts_of(await within(task)) == ["Done!"]
        resolved = asyncio.create_task(echo.inquire().aresolve())
        assert texts_of(await within(resolved)) == ["Done!"]


async def test_an_agent_starts_without_anyone_consuming_its_replies() -> None:
    started = asyncio.Event()

    @miniagent
    async def eager(ctx: InteractionContext) -> None:
        started.set()

    async with MiniAgents():
        eager.inquire()
        await within(started.wait())


# -- exceptions as messages --------------------------------------------------------------------


async def test_an_agent_exception_reaches_the_consumer_after_the_replies_before_it(
    virtual_clock: VirtualClock,
) -> None:
    raised: list[Boom] = []

    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply(["a", "b"])
        await asyncio.sleep(0.01)
        error = Boom("it broke")
        raised.append(error)
        raise error

    async with MiniAgents():
        replies = failing.inquire()
        seen, error = await within(texts_until_error(replies))
        assert seen == ["a", "b"]
        assert type(error) is Boom
        assert str(error) == "it broke"
        assert error is raised[0]
        with pytest.raises(Boom, match=r"^it broke$"):
            await replies  # awaiting gives the same error again


async def test_an_error_of_a_nested_agent_reaches_the_outer_consumer_at_its_position(
    virtual_clock: VirtualClock,
) -> None:
    @miniagent
    async def inner(ctx: InteractionContext) -> None:
        ctx.reply("b1")
        await asyncio.sleep(0.02)
        raise Boom("inner failed")

    @miniagent
    async def outer(ctx: InteractionContext) -> None:
        ctx.reply(["a1", inner.inquire(), "a2"])

    async with MiniAgents():
        seen, error = await within(texts_until_error(outer.inquire()))
    assert seen == ["a1", "b1"]
    assert isinstance(error, Boom)
    assert str(error) == "inner failed"


async def test_an_agent_exception_nobody_consumes_is_logged_at_the_end_of_the_context(
    virtual_clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    raised: list[Boom] = []

    @miniagent
    async def unheard(ctx: InteractionContext) -> None:
        error = Boom("nobody listens")
        raised.append(error)
        raise error

    async with MiniAgents():
        unheard.inquire()
        await asyncio.sleep(0.02)
        assert agent_error_logs(caplog) == []  # not before the end of the context
    records = agent_error_logs(caplog)
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.ERROR
    assert "UNHEARD" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[1] is raised[0]
    caplog.clear()


async def test_a_consumed_agent_exception_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        raise Boom("heard")

    async with MiniAgents():
        with pytest.raises(Boom):
            await failing.inquire()
    assert agent_error_logs(caplog) == []


@miniagent
async def failing_inside(ctx: InteractionContext) -> None:
    raise Boom("inner")


async def test_an_agent_error_after_replying_a_failed_sequence_is_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @miniagent
    async def agent(ctx: InteractionContext) -> None:
        replies = failing_inside.inquire()
        with contextlib.suppress(Boom):
            await replies
        ctx.reply(replies)  # the replies end here, with the inner error
        raise KeyError("the agent's own error")

    async with MiniAgents():
        with pytest.raises(Boom, match="inner"):  # consumers get the first error
            await agent.inquire()
    records = agent_error_logs(caplog)
    assert len(records) == 1  # and the agent's own one is logged, not lost
    assert "AGENT" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], KeyError)
    caplog.clear()


@pytest.mark.parametrize("when", ["in its run", "after its run"])
async def test_an_error_nobody_read_in_an_agents_replies_is_logged_at_the_exit(
    caplog: pytest.LogCaptureFixture, when: str
) -> None:
    # The context is told of an agent's replies by the agent's run, at its end: replies
    # failed then are kept; replies still streaming (another agent's, passed on) are
    # followed, and kept if they fail later. Either way the error is logged at the exit.
    gate = asyncio.Event()

    @miniagent
    async def fails_later(ctx: InteractionContext) -> None:
        await gate.wait()
        raise Boom("later")

    @miniagent
    async def unread(ctx: InteractionContext) -> None:
        if when == "in its run":
            raise Boom("now")
        ctx.reply(fails_later.inquire())  # it returns while these still stream

    async with MiniAgents():
        unread.inquire()
        for _ in range(3):
            await asyncio.sleep(0)  # the agent's run ends
        gate.set()
    lost = [r for r in caplog.records if "no consumer ever received" in r.getMessage()]
    assert [r.getMessage().split(" ended")[0] for r in lost] == ["The replies of the agent UNREAD"]
    assert lost[0].exc_info is not None
    assert isinstance(lost[0].exc_info[1], Boom)
    caplog.clear()


async def test_an_agent_re_raising_the_error_of_its_replies_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @miniagent
    async def agent(ctx: InteractionContext) -> None:
        replies = failing_inside.inquire()
        ctx.reply(replies)
        await replies  # raises the same error the replies end with

    async with MiniAgents():
        with pytest.raises(Boom, match="inner"):
            await agent.inquire()
    assert agent_error_logs(caplog) == []


async def test_an_error_forwarded_by_an_agent_and_then_consumed_logs_nothing(
    virtual_clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply("partial")
        raise Boom("forwarded")

    @miniagent
    async def passer(ctx: InteractionContext) -> None:
        ctx.reply(failing.inquire())

    async with MiniAgents():
        reply = passer.inquire()
        await asyncio.sleep(0.01)  # the inner replies failed and were passed on
        gc.collect()
        with pytest.raises(Boom):
            await reply
    gc.collect()
    assert agent_error_logs(caplog) == []


async def test_a_keyboard_interrupt_in_an_agent_reaches_the_consumer_only() -> None:
    @miniagent
    async def interrupted(ctx: InteractionContext) -> None:
        ctx.reply("before")
        raise KeyboardInterrupt

    async with MiniAgents():
        seen, error = await within(texts_until_error(interrupted.inquire()))
        assert seen == ["before"]
        assert isinstance(error, KeyboardInterrupt)
        with pytest.raises(KeyboardInterrupt):
            await interrupted.inquire()
        # the loop goes on: other agents still run
        assert texts_of(await within(replying("still alive").inquire())) == ["still alive"]


async def test_an_agent_that_catches_an_error_replies_normally() -> None:
    @miniagent
    async def careful(ctx: InteractionContext) -> None:
        try:
            raise Boom("risky")
        except Boom as error:
            ctx.reply(f"An error occurred: {error}")

    async with MiniAgents():
        assert texts_of(await careful.inquire()) == ["An error occurred: risky"]


# -- replay ---------------------------------------------------------------------------------


async def test_two_consumers_one_late_see_the_same_replies_and_the_agent_runs_once(
    virtual_clock: VirtualClock,
) -> None:
    runs: list[int] = []

    @miniagent
    async def once(ctx: InteractionContext) -> None:
        runs.append(1)
        ctx.reply("r1")
        await asyncio.sleep(0.02)
        ctx.reply("r2")

    async with MiniAgents():
        replies = once.inquire()
        early = [promise async for promise in replies]
        late = [promise async for promise in replies]
        assert late == early  # the very same promises, replayed
        assert await within(texts(replies)) == ["r1", "r2"]
        assert texts_of(await replies) == ["r1", "r2"]
    assert runs == [1]


async def test_an_early_and_a_late_consumer_running_concurrently_see_the_same_replies(
    virtual_clock: VirtualClock,
) -> None:
    runs: list[int] = []

    @miniagent
    async def ticking(ctx: InteractionContext) -> None:
        runs.append(1)
        for tick in ("t1", "t2", "t3"):
            ctx.reply(tick)
            await asyncio.sleep(0.02)

    async def late_reader(replies: MessageSequencePromise) -> list[str | None]:
        await asyncio.sleep(0.03)  # joins after the first reply or two
        return await texts(replies)

    async with MiniAgents():
        replies = ticking.inquire()
        early, late = await within(asyncio.gather(texts(replies), late_reader(replies)))
    assert early == late == ["t1", "t2", "t3"]
    assert runs == [1]


# -- arguments, fork -------------------------------------------------------------------------


@miniagent
async def greeter(ctx: InteractionContext, greeting: str = "Hello", name: str = "world") -> None:
    """Greets someone."""
    ctx.reply(f"{greeting}, {name}!")


@miniagent
async def needs_name(ctx: InteractionContext, name: str) -> None:
    ctx.reply(f"Hi {name}")


@miniagent
async def takes_anything(ctx: InteractionContext, /, **kwargs: object) -> None:
    # `/` is needed for mypy: Concatenate[InteractionContext, P] refuses a named `ctx`
    # next to **kwargs (the kwargs could hold "ctx")
    ctx.reply(", ".join(f"{key}={value}" for key, value in sorted(kwargs.items())))


async def test_fork_binds_arguments_that_inquire_overrides() -> None:
    hi = greeter.fork(greeting="Hi")
    assert hi.func is greeter.func
    assert hi.alias == "GREETER"
    assert hi.description == "Greets someone."
    async with MiniAgents():
        assert texts_of(await hi.inquire()) == ["Hi, world!"]
        assert texts_of(await hi.inquire(name="Bob")) == ["Hi, Bob!"]
        assert texts_of(await hi.inquire(greeting="Yo")) == ["Yo, world!"]
        assert texts_of(await greeter.inquire()) == ["Hello, world!"]  # the original is intact


async def test_positional_arguments_of_inquire_override_bound_ones() -> None:
    """By position as by keyword (by position it was "multiple values for 'greeting'")."""
    hi = greeter.fork(greeting="Hi")
    hi_bob = greeter.bind("Hi", "Bob")
    async with MiniAgents():
        assert texts_of(await hi.inquire(None, "Yo")) == ["Yo, world!"]
        assert texts_of(await hi.inquire(None, "Yo", "Ann")) == ["Yo, Ann!"]
        assert texts_of(await hi_bob.inquire(None, "Hey")) == ["Hey, Bob!"]
        with pytest.raises(AgentArgumentError, match="multiple values for argument 'greeting'"):
            hi.inquire(None, "Yo", greeting="Hey")  # type: ignore[misc]
        with pytest.raises(AgentArgumentError, match="too many positional arguments"):
            loose(hi).inquire(None, "a", "b", "c")


async def test_fork_of_a_fork_adds_and_overrides_bindings() -> None:
    hi = greeter.fork(greeting="Hi")
    hi_ann = hi.fork(name="Ann", alias="HI_ANN", description="Greets Ann.")
    hey_ann = hi_ann.fork(greeting="Hey")
    assert hi_ann.alias == hey_ann.alias == "HI_ANN"
    assert hi_ann.description == "Greets Ann."
    async with MiniAgents():
        assert texts_of(await hi_ann.inquire()) == ["Hi, Ann!"]
        assert texts_of(await hey_ann.inquire()) == ["Hey, Ann!"]
        assert texts_of(await hi.inquire()) == ["Hi, world!"]


async def test_fork_can_bind_a_required_argument() -> None:
    async with MiniAgents():
        # statically, a fork still asks for the bound argument (P is unchanged by fork)
        assert texts_of(await loose(needs_name.fork(name="Zoe")).inquire()) == ["Hi Zoe"]


async def test_an_agent_taking_var_keywords_accepts_any_argument() -> None:
    bound = untyped_miniagent(takes_anything.func, alias="ANY", colour="red")
    async with MiniAgents():
        assert texts_of(await takes_anything.fork(x=1).inquire(y=2)) == ["x=1, y=2"]
        assert texts_of(await takes_anything.inquire(anything="goes")) == ["anything=goes"]
        assert texts_of(await loose(bound).inquire(size=3)) == ["colour=red, size=3"]


def assert_argument_error(error: BaseException, *fragments: str) -> None:
    assert isinstance(error, AgentArgumentError)
    assert isinstance(error, TypeError)
    assert isinstance(error, MiniAgentsError)
    for fragment in fragments:
        assert fragment in str(error), (fragment, str(error))


async def test_an_unknown_keyword_in_inquire_is_an_argument_error() -> None:
    async with MiniAgents():
        with pytest.raises(AgentArgumentError) as raised:
            loose(greeter).inquire(nmae="Bob")
    assert_argument_error(
        raised.value,
        "GREETER",
        "'nmae'",
        "inquire()",
        "greeting, name",
        "add a parameter 'nmae' to the agent function",
    )


async def test_an_unknown_keyword_in_initiate_inquiry_is_an_argument_error() -> None:
    async with MiniAgents():
        with pytest.raises(AgentArgumentError) as raised:
            loose(greeter).initiate_inquiry(nmae="Bob")
    assert_argument_error(raised.value, "GREETER", "'nmae'")


def test_an_unknown_keyword_in_fork_is_an_argument_error() -> None:
    with pytest.raises(AgentArgumentError) as raised:
        greeter.fork(colour="red")
    assert_argument_error(raised.value, "GREETER", "'colour'", "fork()", "Check the spelling")


async def test_bind_binds_arguments_by_keyword_or_position() -> None:
    async with MiniAgents():
        by_keyword = greeter.bind(name="Ada")
        by_position = greeter.bind("Hi", "Bob")
        anything = takes_anything.bind(colour="red", size=2)
        assert (by_keyword.alias, by_keyword.description) == ("GREETER", "Greets someone.")
        assert str(await by_keyword.inquire()) == "Hello, Ada!"
        assert str(await by_position.inquire()) == "Hi, Bob!"
        assert str(await by_position.inquire(name="Cy")) == "Hi, Cy!"  # inquire overrides
        assert str(await anything.inquire()) == str(
            await takes_anything.inquire(colour="red", size=2)
        )


def test_bind_rejects_arguments_the_agent_does_not_take() -> None:
    with pytest.raises(AgentArgumentError) as raised:
        loose(greeter).bind(colour="red")
    assert_argument_error(raised.value, "GREETER", "'colour'", "bind()", "Check the spelling")
    with pytest.raises(AgentArgumentError) as raised:
        loose(greeter).bind("a", "b", "c")
    assert_argument_error(raised.value, "GREETER", "too many positional arguments", "by keyword")


def test_an_unknown_keyword_in_the_decorator_is_an_argument_error() -> None:
    async def plain(ctx: InteractionContext, size: int = 1) -> None:
        pass

    with pytest.raises(AgentArgumentError) as raised:
        untyped_miniagent(plain, alias="PLAIN", colour="red")
    assert_argument_error(raised.value, "PLAIN", "'colour'", "size")


def test_an_agent_without_parameters_says_it_takes_no_arguments() -> None:
    with pytest.raises(AgentArgumentError) as raised:
        replying("x").fork(extra=1)
    assert_argument_error(raised.value, "REPLIER", "'extra'", "no arguments")


async def test_a_missing_required_argument_is_an_argument_error() -> None:
    async with MiniAgents():
        with pytest.raises(AgentArgumentError) as raised:
            loose(needs_name).inquire("hello")
    assert_argument_error(
        raised.value, "NEEDS_NAME", "'name'", "inquire(name=...)", "fork(name=...)"
    )


async def test_positional_arguments_follow_the_agent_function_parameters() -> None:
    async with MiniAgents():
        assert str(await greeter.inquire("messages", "Hi")) == "Hi, world!"
        assert str(await greeter.inquire(None, "Hey", "Ann")) == "Hey, Ann!"
        assert str(await greeter.initiate_inquiry("Yo").reply_sequence()) == "Yo, world!"


async def test_bad_positional_arguments_are_an_argument_error() -> None:
    async with MiniAgents():
        with pytest.raises(AgentArgumentError) as raised:
            loose(greeter).inquire("messages", "Hi", "Bob", "extra")
        assert_argument_error(raised.value, "GREETER", "too many", "by keyword")
        with pytest.raises(AgentArgumentError) as raised:
            loose(greeter).inquire("messages", "Hi", greeting="twice")
        assert_argument_error(raised.value, "GREETER", "multiple values", "by keyword")


async def test_argument_errors_start_nothing() -> None:
    runs: list[int] = []

    @miniagent
    async def counted(ctx: InteractionContext, name: str) -> None:
        runs.append(1)

    async with MiniAgents():
        with pytest.raises(AgentArgumentError):
            loose(counted).inquire()
        with pytest.raises(AgentArgumentError):
            loose(counted).inquire(name="a", other=1)
    assert runs == []


# -- outside of a context ------------------------------------------------------------------------


def assert_no_context(error: BaseException) -> None:
    assert isinstance(error, NoActiveContextError)
    assert isinstance(error, RuntimeError)
    assert "async with MiniAgents()" in str(error)


async def test_using_an_agent_outside_a_context_is_an_error() -> None:
    with pytest.raises(NoActiveContextError) as raised:
        greeter.inquire("hello")
    assert_no_context(raised.value)
    with pytest.raises(NoActiveContextError) as raised:
        greeter.initiate_inquiry()
    assert_no_context(raised.value)
    with pytest.raises(NoActiveContextError) as raised:
        MiniAgents.get_current()
    assert_no_context(raised.value)


def test_using_an_agent_outside_a_context_and_a_loop_is_the_same_error() -> None:
    with pytest.raises(NoActiveContextError) as raised:
        greeter.inquire()
    assert_no_context(raised.value)


async def test_an_agent_started_from_another_thread_is_told_contexts_do_not_cross_threads() -> None:
    # e.g. reactivex's ops.subscribe_on(NewThreadScheduler()) after an agent's operator
    async with MiniAgents():
        raised = await asyncio.to_thread(_error_of, greeter.inquire)
    assert isinstance(raised, NoActiveContextError)
    assert "active in this thread" in str(raised)
    assert "put subscribe_on before the agent's operator" in str(raised)


def _error_of(call: Callable[[], object]) -> BaseException | None:
    try:
        call()
    except BaseException as error:  # (handed back to the loop's thread)
        return error
    return None


async def test_an_agent_cannot_be_used_after_its_context_ended() -> None:
    async with MiniAgents():
        pass
    with pytest.raises(NoActiveContextError):
        greeter.inquire()


# -- ctx.reply, finish_early ---------------------------------------------------------------------


async def test_replying_with_an_unsupported_type_is_an_error_that_reaches_the_consumer() -> None:
    caught: list[BaseException] = []

    @miniagent
    async def bad_reply(ctx: InteractionContext) -> None:
        ctx.reply("fine")
        try:
            ctx.reply(cast(Any, 42))
        except MessageTypeError as error:
            caught.append(error)
            raise

    async with MiniAgents():
        seen, error = await within(texts_until_error(bad_reply.inquire()))
    assert seen == ["fine"]
    assert isinstance(error, MessageTypeError)
    assert isinstance(error, TypeError)
    assert error is caught[0]
    assert "BAD_REPLY" in str(error)
    assert "42" in str(error)


async def test_replying_after_the_agent_finished_is_an_agent_finished_error() -> None:
    kept: list[InteractionContext] = []

    @miniagent
    async def keeper(ctx: InteractionContext) -> None:
        kept.append(ctx)
        ctx.reply("only")

    async with MiniAgents():
        replies = keeper.inquire()
        assert texts_of(await replies) == ["only"]
        with pytest.raises(AgentFinishedError) as raised:
            kept[0].reply("late")
        assert texts_of(await replies) == ["only"]
    assert isinstance(raised.value, RuntimeError)
    assert "KEEPER" in str(raised.value)
    with pytest.raises(AgentFinishedError):
        kept[0].reply("after the context")


async def test_finish_early_ends_the_replies_while_the_function_goes_on() -> None:
    release = asyncio.Event()
    steps: list[str] = []

    @miniagent
    async def early(ctx: InteractionContext) -> None:
        ctx.reply("quick answer")
        ctx.finish_early()
        steps.append("finished early")
        await release.wait()
        try:
            ctx.reply("too late")
        except AgentFinishedError as error:
            steps.append(f"refused: {'EARLY' in str(error)}")
        steps.append("function ended")

    async with MiniAgents():
        replies = early.inquire()
        assert texts_of(await within(replies)) == ["quick answer"]
        assert replies.done
        assert steps == ["finished early"]
        release.set()
    assert steps == ["finished early", "refused: True", "function ended"]
    assert texts_of(await replies) == ["quick answer"]


async def test_an_error_after_finish_early_is_logged(
    virtual_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    @miniagent
    async def early_failure(ctx: InteractionContext) -> None:
        ctx.reply("answer")
        ctx.finish_early()
        await asyncio.sleep(0.01)
        raise Boom("after the answer")

    async with MiniAgents():
        assert texts_of(await within(early_failure.inquire())) == ["answer"]
    records = agent_error_logs(caplog)
    assert len(records) == 1
    assert "EARLY_FAILURE" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], Boom)
    caplog.clear()


# -- the interaction context ---------------------------------------------------------------------


async def test_ctx_messages_is_ctx_message_promises_and_this_agent_is_the_agent() -> None:
    seen: list[tuple[bool, MiniAgent[...]]] = []

    @miniagent
    async def introspective(ctx: InteractionContext) -> None:
        seen.append((ctx.messages is ctx.message_promises, ctx.this_agent))

    forked = introspective.fork(alias="FORKED")
    async with MiniAgents():
        await introspective.inquire()
        await forked.inquire()
    assert seen == [(True, introspective), (True, forked)]


@miniagent
async def echo(ctx: InteractionContext) -> None:
    """Replies with each input message, prefixed."""
    async for promise in ctx.message_promises:
        ctx.reply(f"You said: {await promise}")


async def test_input_messages_of_every_kind_arrive_in_order() -> None:
    async with MiniAgents():
        assert texts_of(await echo.inquire("Hello!")) == ["You said: Hello!"]
        assert texts_of(await echo.inquire()) == []
        source = replying("p1", "p2").inquire()
        replies = echo.inquire(["a", Message(text="b"), source, ("c", [{"text": "d"}])])
        assert texts_of(await within(replies)) == [
            "You said: a",
            "You said: b",
            "You said: p1",
            "You said: p2",
            "You said: c",
            "You said: d",
        ]


async def test_an_agent_reads_its_input_while_the_input_streams() -> None:
    release = asyncio.Event()
    read: list[str | None] = []

    @miniagent
    async def producer(ctx: InteractionContext) -> None:
        ctx.reply("early")
        await release.wait()
        ctx.reply("late")

    @miniagent
    async def reader(ctx: InteractionContext) -> None:
        async for promise in ctx.messages:
            read.append((await promise).text)
            ctx.reply(f"read {len(read)}")

    async with MiniAgents():
        replies = reader.inquire(producer.inquire())
        iterator = aiter(replies)
        assert (await within(anext(iterator))).message_now().text == "read 1"
        assert read == ["early"]
        release.set()
        assert texts_of(await within(replies)) == ["read 1", "read 2"]
    assert read == ["early", "late"]


async def test_chained_agents_pass_replies_as_input() -> None:
    async with MiniAgents():
        replies = echo.inquire(echo.inquire(greeter.inquire(name="chain")))
        assert texts_of(await within(replies)) == ["You said: You said: Hello, chain!"]


async def test_an_invalid_input_is_a_message_type_error_naming_the_agent() -> None:
    async with MiniAgents():
        with pytest.raises(MessageTypeError) as raised:
            echo.inquire(cast(Any, 42))
    assert "ECHO" in str(raised.value)


async def test_a_dict_with_a_field_of_a_wrong_type_as_input_or_reply_is_our_error() -> None:
    @miniagent
    async def replier(ctx: InteractionContext) -> None:
        ctx.reply({"text": 3})

    wrong = re.escape("'text': Input should be a valid string (got 3)")
    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=wrong):  # (was: pydantic's ValidationError)
            replier.inquire({"text": 3})
        with pytest.raises(MessageTypeError, match=wrong):
            await replier.inquire("hi")


async def test_a_coroutine_as_the_input_is_refused_saying_to_await_it_and_is_closed() -> None:
    async def make_input() -> str:
        return "hi"

    given = make_input()
    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"await it first, inquire\(await \.\.\.\)"):
            echo.inquire(cast(Any, given))
    # (was: left unclosed, so Python warned "coroutine 'make_input' was never awaited")
    assert inspect.getcoroutinestate(given) == inspect.CORO_CLOSED


async def test_a_coroutine_replied_is_refused_saying_to_await_it_and_is_closed() -> None:
    async def fetch() -> str:
        return "fetched"

    given = fetch()

    @miniagent
    async def forgetful(ctx: InteractionContext) -> None:
        ctx.reply(cast(Any, given))  # (a forgotten await)

    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"await it first, ctx\.reply\(await \.\.\.\)"):
            await forgetful.inquire()
    # (was: the error listed what a message may be, without the await; the coroutine was
    # left unclosed, so Python warned "coroutine 'fetch' was never awaited")
    assert inspect.getcoroutinestate(given) == inspect.CORO_CLOSED


@pytest.mark.parametrize("done", [False, True], ids=["pending", "done"])
async def test_a_task_replied_is_refused_saying_to_await_it(done: bool) -> None:
    async def fetch() -> str:
        return "fetched"

    @miniagent
    async def forgetful(ctx: InteractionContext) -> None:
        task = asyncio.ensure_future(fetch())
        if done:
            await task
        try:
            ctx.reply(cast(Any, task))  # (a forgotten await)
        finally:
            await task

    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"task or future .* await it first"):
            await forgetful.inquire()
    # (was: a future is iterable, for `yield from`: a pending one failed with a bare
    # RuntimeError, "await wasn't used with future", and a done one replied nothing)


# -- initiate_inquiry / AgentCall ----------------------------------------------------------------


def queue_agent(received: asyncio.Queue[str | None]) -> MiniAgent[[]]:
    """An agent that puts each input text in ``received`` and replies with them all at the end."""

    @miniagent
    async def collector(ctx: InteractionContext) -> None:
        collected: list[str] = []
        async for promise in ctx.messages:
            text = (await promise).text
            received.put_nowait(text)
            collected.append(str(text))
        ctx.reply(" | ".join(collected))

    return collector


async def test_initiate_inquiry_sends_messages_that_the_agent_sees_at_once() -> None:
    received: asyncio.Queue[str | None] = asyncio.Queue()
    collector = queue_agent(received)
    async with MiniAgents():
        call = collector.initiate_inquiry()
        assert isinstance(call, AgentCall)
        assert call.send_message("one") is call
        assert await within(received.get()) == "one"
        call.send_message(["two", Message(text="three")]).send_message("four")
        assert [await within(received.get()) for _ in range(3)] == ["two", "three", "four"]
        replies = call.reply_sequence()
        assert texts_of(await within(replies)) == ["one | two | three | four"]


async def test_initiate_inquiry_passes_keyword_arguments() -> None:
    async with MiniAgents():
        call = greeter.initiate_inquiry(greeting="Hiya", name="Max")
        assert texts_of(await within(call.reply_sequence())) == ["Hiya, Max!"]


async def test_sending_after_the_call_is_finished_is_an_agent_finished_error() -> None:
    received: asyncio.Queue[str | None] = asyncio.Queue()
    collector = queue_agent(received)
    async with MiniAgents():
        call = collector.initiate_inquiry().send_message("only")
        replies = call.reply_sequence()
        with pytest.raises(AgentFinishedError) as raised:
            call.send_message("more")
        assert "COLLECTOR" in str(raised.value)
        assert texts_of(await within(replies)) == ["only"]

        other = collector.initiate_inquiry()
        other.finish()
        other.finish()  # doing it again does nothing
        with pytest.raises(AgentFinishedError):
            other.send_message("more")
        assert texts_of(await within(other.reply_sequence())) == [""]


async def test_reply_sequence_without_finishing_keeps_the_call_open() -> None:
    received: asyncio.Queue[str | None] = asyncio.Queue()
    collector = queue_agent(received)
    async with MiniAgents():
        call = collector.initiate_inquiry().send_message("a")
        replies = call.reply_sequence(finish_call=False)
        call.send_message("b")
        assert await within(received.get()) == "a"
        assert await within(received.get()) == "b"
        assert not replies.done
        assert call.reply_sequence() is replies
        assert texts_of(await within(replies)) == ["a | b"]


async def test_a_call_never_finished_does_not_hang_the_context_exit() -> None:
    received: asyncio.Queue[str | None] = asyncio.Queue()
    collector = queue_agent(received)

    async def scenario() -> MessageSequencePromise:
        async with MiniAgents():
            call = collector.initiate_inquiry().send_message("dangling")
            return call.reply_sequence(finish_call=False)

    replies = await within(scenario())
    assert replies.done
    assert texts_of(await replies) == ["dangling"]


async def test_the_exit_after_an_error_ends_a_task_that_swallows_its_cancel_on_a_stream() -> None:
    appender = MessageTokenAppender()  # nobody finishes it: only the exit can end it
    waiting = asyncio.Event()
    released: list[BaseException] = []

    @miniagent
    async def stubborn(ctx: InteractionContext) -> None:
        ctx.reply(appender.promise)
        try:
            waiting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # swallows the exit's cancel
        try:
            await appender.promise  # then waits on a stream of the context
        except StreamCancelledError as error:
            released.append(error)
            raise

    async def failing_block() -> None:
        async with MiniAgents():
            stubborn.inquire()
            await waiting.wait()
            raise Boom  # the exit cancels the context's tasks

    (failure,) = await within(asyncio.gather(failing_block(), return_exceptions=True))
    assert isinstance(failure, Boom)  # the exit ended, with the block's error
    assert len(released) == 1  # the stream it waited on was cancelled


async def forever() -> None:
    """Wait until cancelled."""
    await asyncio.Event().wait()


@pytest.mark.parametrize("work", ["an agent", "a task"])
async def test_the_exit_after_an_error_cancels_work_started_during_it(work: str) -> None:
    # The exit cancels the context's tasks and streams in rounds; a task that swallows its
    # cancel and then starts new work (an agent, a task of the context) and awaits it must
    # not keep the exit waiting: what starts once the exit has begun is cancelled as it
    # starts (before its first step: its code never runs).
    waiting = asyncio.Event()
    ran: list[str] = []
    released: list[BaseException] = []

    async def endless_work() -> None:
        ran.append(work)
        await forever()

    @miniagent
    async def endless(ctx: InteractionContext) -> None:
        await endless_work()

    @miniagent
    async def stubborn(ctx: InteractionContext) -> None:
        try:
            waiting.set()
            await forever()
        except asyncio.CancelledError:
            pass  # swallows the exit's cancel
        try:
            if work == "an agent":
                await endless.inquire()
            else:
                await start_task(endless_work(), "endless")
        except (StreamCancelledError, asyncio.CancelledError) as error:
            released.append(error)
            raise

    async def failing_block() -> None:
        async with MiniAgents():
            stubborn.inquire()
            await waiting.wait()
            raise Boom  # the exit cancels the context's tasks

    (failure,) = await within(asyncio.gather(failing_block(), return_exceptions=True))
    assert isinstance(failure, Boom)  # the exit ended, with the block's error
    assert len(released) == 1  # the work it started during the exit was cancelled...
    assert ran == []  # ... as it started


# -- the MiniAgents context ------------------------------------------------------------------------


async def test_the_context_waits_on_exit_for_every_agent_started_inside(
    virtual_clock: VirtualClock,
) -> None:
    flags: list[str] = []

    @miniagent
    async def lingering(ctx: InteractionContext) -> None:
        await asyncio.sleep(0.05)
        flags.append("inner done")

    @miniagent
    async def starter(ctx: InteractionContext) -> None:
        await asyncio.sleep(0.05)
        lingering.inquire()  # started by an agent, late, and never consumed
        flags.append("starter done")

    async with MiniAgents():
        starter.inquire()
        assert flags == []
    assert flags == ["starter done", "inner done"]


async def test_get_current_is_the_innermost_active_context() -> None:
    outer = MiniAgents()
    async with outer as entered:
        assert entered is outer
        assert MiniAgents.get_current() is outer
        async with MiniAgents() as inner:
            assert MiniAgents.get_current() is inner
        assert MiniAgents.get_current() is outer


async def test_enclosing_contexts_are_the_active_ones_innermost_first() -> None:
    assert enclosing_contexts() == []
    async with MiniAgents() as outer:
        assert enclosing_contexts() == [outer]
        async with MiniAgents() as inner:
            assert enclosing_contexts() == [inner, outer]

            async def in_a_task() -> list[MiniAgents]:
                return enclosing_contexts()

            assert await asyncio.create_task(in_a_task()) == [inner, outer]
        assert enclosing_contexts() == [outer]
    assert enclosing_contexts() == []


async def test_arun_awaits_inside_the_context_and_returns_the_result() -> None:
    context = MiniAgents()

    async def main() -> str:
        assert MiniAgents.get_current() is context
        return str(await greeter.inquire(name="arun"))

    assert await within(context.arun(main())) == "Hello, arun!"
    with pytest.raises(NoActiveContextError):
        MiniAgents.get_current()


async def test_run_in_a_running_loop_names_arun_and_closes_the_coroutine_it_cannot_run() -> None:
    async def main() -> str:
        return "never run"

    coroutine = main()
    with pytest.raises(LoopAlreadyRunningError, match=r"await MiniAgents\(\)\.arun\(main\(\)\)"):
        MiniAgents().run(coroutine)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # no "never awaited"


def test_run_of_the_async_function_itself_says_to_call_it() -> None:
    async def main() -> None:
        pass

    with pytest.raises(ContextArgumentError) as raised:
        MiniAgents().run(main)  # type: ignore[arg-type]
    assert str(raised.value).startswith("MiniAgents().run() takes a coroutine, not <function ")
    assert str(raised.value).endswith(
        ": call the async function, MiniAgents().run(main()), with the parentheses."
    )


@pytest.mark.parametrize("in_a_loop", [False, True], ids=["plain code", "async code"])
def test_a_plain_with_says_to_write_async_with(in_a_loop: bool) -> None:
    context: Any = MiniAgents()  # (mypy refuses a plain `with MiniAgents()` as it is)

    def enter() -> None:
        with pytest.raises(ContextArgumentError) as raised, context:
            pass
        assert "`async with MiniAgents(): ...` inside an async function" in str(raised.value)
        assert "`MiniAgents().run(main())`" in str(raised.value)

    async def in_async_code() -> None:
        enter()

    # (was: a bare TypeError, "'MiniAgents' object does not support the context manager
    # protocol")
    if in_a_loop:
        asyncio.run(in_async_code())
    else:
        enter()


async def test_run_of_the_async_function_itself_in_a_running_loop_says_to_call_it() -> None:
    async def main() -> None:
        pass

    with pytest.raises(ContextArgumentError, match=r"MiniAgents\(\)\.run\(main\(\)\)"):
        MiniAgents().run(main)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"on_persist_message": 5}, "MiniAgents(on_persist_message=...) takes a handler, "),
        ({"on_promise_resolved": [HandlerLog(), 5]}, "MiniAgents(on_promise_resolved=...) takes"),
        ({"start_everything_asap_by_default": "no"}, "takes True, False or None (the outer "),
        ({"llm_logger_agent": "no"}, "MiniAgents(llm_logger_agent=...) takes True (write each"),
    ],
)
def test_a_context_refuses_an_option_it_cannot_use_when_it_is_made(
    options: dict[str, Any], says: str
) -> None:
    with pytest.raises(ContextArgumentError) as raised:
        MiniAgents(**options)
    assert says in str(raised.value)
    assert str(raised.value).endswith(
        (
            "not 5: pass the function itself.",
            "not 'no'.",
            "not 'no': pass the agent itself (a MiniAgent).",
        )
    )


def run_main_with_a_nested_context() -> tuple[str, list[str]]:
    """``MiniAgents().run(main())`` where ``main`` opens a context of its own."""
    outer = MiniAgents()
    log: list[str] = []

    @miniagent
    async def slow_logger(ctx: InteractionContext) -> None:
        await asyncio.sleep(0.05)
        log.append("slow agent done")

    async def main() -> str:
        assert MiniAgents.get_current() is outer
        async with MiniAgents() as inner:
            assert MiniAgents.get_current() is inner
            inner_reply = await greeter.inquire(name="inner")
        assert MiniAgents.get_current() is outer
        slow_logger.inquire()
        return f"{inner_reply} / {await echo.inquire('outer')}"

    return outer.run(main()), log


def test_run_returns_the_result_of_the_coroutine_in_a_sync_test() -> None:
    result, log = run_main_with_a_nested_context()
    assert result == "Hello, inner! / You said: outer"
    assert log == ["slow agent done"]  # run() waited for the agent before returning
    with pytest.raises(NoActiveContextError):
        MiniAgents.get_current()


def test_run_can_be_called_twice_in_a_row() -> None:
    assert run_main_with_a_nested_context()[0] == run_main_with_a_nested_context()[0]


async def enter_twice(context: MiniAgents) -> None:
    async with context:
        await context.__aenter__()


async def test_re_entering_an_active_context_is_an_error() -> None:
    context = MiniAgents()
    with pytest.raises(RuntimeError, match="active already"):
        await enter_twice(context)
    with pytest.raises(NoActiveContextError):
        MiniAgents.get_current()


async def test_a_context_entered_again_paces_its_streams_again(
    virtual_clock: VirtualClock,
) -> None:
    # Its first exit unpaced its streams (replies nobody reads must not keep their agent
    # waiting): the second use is a fresh one, where an agent ahead of its reader waits.
    produced: list[int] = []

    @miniagent
    async def counting(ctx: InteractionContext) -> None:
        for index in range(20):
            produced.append(index)
            await ctx.areply(str(index))

    context = MiniAgents(high_water_mark=2)
    async with context:
        counting.inquire()  # nobody reads it: the exit lets it run to its end
    assert len(produced) == 20
    produced.clear()
    async with context:
        replies = counting.inquire()
        await asyncio.sleep(1)  # (virtual: every task that could run has run)
        assert len(produced) <= 3  # held at the mark: its reader has read nothing yet
        assert await within(texts(replies)) == [str(index) for index in range(20)]


async def test_an_error_in_a_context_entered_again_spares_the_first_use_s_lazy_replies() -> None:
    @miniagent
    async def hello(ctx: InteractionContext) -> None:
        ctx.reply("hi")

    context = MiniAgents()
    async with context:
        lazy = hello.fork(start_asap=False).inquire()  # not read in the first use
    with pytest.raises(Boom):
        async with context:
            raise Boom  # cancels the second use's lazy replies, not the first use's
    async with context:  # (read in a use of the context: after its exit, it is refused)
        assert await within(texts(lazy)) == ["hi"]


async def test_leaving_the_context_with_an_error_cancels_its_agents(
    virtual_clock: VirtualClock,
) -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    @miniagent
    async def endless(ctx: InteractionContext) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def scenario() -> None:
        async with MiniAgents():
            endless.inquire()
            await started.wait()
            raise Boom("leave")

    with pytest.raises(Boom, match="leave"):
        await within(scenario())
    assert cancelled.is_set()


async def test_leaving_the_context_with_an_error_cancels_agents_not_started_yet() -> None:
    # Their tasks are cancelled before their first step, so the agent's code never runs
    # (nor the task's own last step, which forgets it): the context still waits for them
    # to leave its tasks, and it must not wait for ever.
    ran: list[int] = []

    @miniagent
    async def never(ctx: InteractionContext, index: int) -> None:
        ran.append(index)

    async def scenario() -> list[MessageSequencePromise]:
        async with MiniAgents():
            replies = [never.inquire(index=index) for index in range(3)]
            raise Boom(replies)  # before the loop runs any of them

    with pytest.raises(Boom) as raised:
        await within(scenario())
    assert ran == []
    assert not running_tasks()
    for replies in cast("list[MessageSequencePromise]", raised.value.args[0]):
        assert (await texts_until_error(replies))[1] is not None  # cancelled, not hanging


# -- message handlers ------------------------------------------------------------------------------


@pytest.mark.parametrize("as_list", [False, True])
async def test_on_persist_message_takes_one_handler_or_a_list(as_list: bool) -> None:
    first, second = HandlerLog(), HandlerLog()
    handlers: MessageHandler | list[MessageHandler] = [first, second] if as_list else first
    async with MiniAgents(on_persist_message=handlers):
        await replying("x", "y").inquire()
    assert first.texts == ["x", "y"]
    assert second.texts == (["x", "y"] if as_list else [])


async def test_a_message_awaited_many_times_is_persisted_once() -> None:
    persisted, resolved = HandlerLog(), HandlerLog()

    @miniagent
    async def single(ctx: InteractionContext) -> None:
        ctx.reply(Message(text="once", role="assistant"))

    async with MiniAgents(on_persist_message=persisted, on_promise_resolved=resolved):
        replies = single.inquire()
        for _ in range(3):
            await replies
            async for promise in replies:
                await promise
                await promise
        await echo.inquire(replies)  # consumed by another agent too
    assert persisted.messages == [
        Message(text="once", role="assistant"),
        Message(text="You said: once"),
    ]
    assert resolved.texts == ["once", "You said: once"]  # one promise each


async def test_equal_content_is_persisted_once_but_every_promise_is_resolved() -> None:
    persisted, resolved = HandlerLog(), HandlerLog()

    @miniagent
    async def repeating(ctx: InteractionContext) -> None:
        ctx.reply(["same", Message(text="same"), "same", {"text": "other"}])

    async with MiniAgents(on_persist_message=[persisted], on_promise_resolved=[resolved]):
        replies = repeating.inquire()
        promises = [promise async for promise in replies]
        await replies
    assert persisted.texts == ["same", "other"]
    assert [id(promise) for promise, _ in resolved.calls] == [id(p) for p in promises]
    assert resolved.texts == ["same", "same", "same", "other"]
    # the handler gets the promise of the first message with that content
    assert persisted.calls[0][0] is promises[0]


async def test_messages_nested_in_fields_are_persisted_too() -> None:
    persisted = HandlerLog()
    inner = Message(text="inner")
    listed = Message(text="in a tuple")
    outer = Message(text="outer", reply_to=inner, attachments=[listed, {"k": Message(text="deep")}])

    @miniagent
    async def nesting(ctx: InteractionContext) -> None:
        ctx.reply([outer, inner])  # inner again: already persisted as part of outer

    async with MiniAgents(on_persist_message=persisted):
        await nesting.inquire()
    assert persisted.texts == ["outer", "inner", "in a tuple", "deep"]
    assert persisted.messages[0] is outer


async def test_on_promise_resolved_is_called_for_every_completed_message_promise(
    virtual_clock: VirtualClock,
) -> None:
    resolved = HandlerLog()

    @miniagent
    async def mixed(ctx: InteractionContext) -> None:
        ctx.reply("plain")
        ctx.reply(MessagePromise.from_async_iterable(tokens("stre", "amed"), role="llm"))
        ctx.reply(Message(text="ready"))

    async with MiniAgents(on_promise_resolved=resolved):
        replies = mixed.inquire()
        promises = [promise async for promise in replies]
        assert texts_of(await within(replies)) == ["plain", "streamed", "ready"]
    assert sorted(id(promise) for promise, _ in resolved.calls) == sorted(map(id, promises))
    assert sorted(str(text) for text in resolved.texts) == ["plain", "ready", "streamed"]
    streamed = next(message for _, message in resolved.calls if message.text == "streamed")
    assert streamed == Message(text="streamed", role="llm")


async def test_handlers_run_even_if_nobody_awaits_the_messages(virtual_clock: VirtualClock) -> None:
    persisted, resolved = HandlerLog(), HandlerLog()

    @miniagent
    async def unheard(ctx: InteractionContext) -> None:
        await asyncio.sleep(0.01)
        ctx.reply(["nobody", "reads", "this"])

    async with MiniAgents(on_persist_message=persisted, on_promise_resolved=resolved):
        unheard.inquire()
    assert persisted.texts == ["nobody", "reads", "this"]
    assert resolved.texts == ["nobody", "reads", "this"]


async def test_handlers_run_for_a_streamed_reply_nobody_consumes(
    virtual_clock: VirtualClock,
) -> None:
    persisted = HandlerLog()

    @miniagent
    async def streaming(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(tokens("to", "kens")))

    async with MiniAgents(on_persist_message=persisted):
        streaming.inquire()
    assert persisted.texts == ["tokens"]


async def test_the_context_waits_for_an_async_generator_reply_nobody_consumes(
    virtual_clock: VirtualClock,
) -> None:
    persisted = HandlerLog()

    @miniagent
    async def generating(ctx: InteractionContext) -> None:
        ctx.reply(slow_strings("g1", "g2"))

    async with MiniAgents(on_persist_message=persisted):
        replies = generating.inquire()
    try:
        assert replies.done
        assert persisted.texts == ["g1", "g2"]
    finally:  # let the leftover task end, so that only the assertions above fail
        await within(replies)
        await asyncio.sleep(0.01)


async def test_the_context_waits_for_handlers_on_exit(virtual_clock: VirtualClock) -> None:
    slow = HandlerLog(delay=0.1)
    async with MiniAgents(on_persist_message=slow, on_promise_resolved=slow):
        await replying("a").inquire()
        assert slow.calls == []
    assert slow.texts == ["a", "a"]


def plain_handler(promise: MessagePromise, message: Message) -> None:
    """A message handler written without ``async``: a mistake the context refuses."""


class SyncCallHandler:
    """A handler object whose ``__call__`` is not async."""

    def __call__(self, promise: MessagePromise, message: Message) -> None:
        pass


def tagged_plain_handler(tag: str, promise: MessagePromise, message: Message) -> None:
    pass


@pytest.mark.parametrize("option", ["on_persist_message", "on_promise_resolved"])
@pytest.mark.parametrize(
    ("handler", "named"),
    [
        (plain_handler, "plain_handler"),
        (SyncCallHandler(), "handler"),
        (SyncCallHandler().__call__, "__call__"),
        (functools.partial(tagged_plain_handler, "tag"), "handler"),
    ],
    ids=["function", "object", "method", "partial"],
)
@pytest.mark.parametrize("in_a_list", [False, True])
def test_a_context_refuses_a_handler_that_is_not_async_when_it_is_given(
    option: str, handler: object, named: str, in_a_list: bool
) -> None:
    async def fine(promise: MessagePromise, message: Message) -> None:
        pass

    options: dict[str, Any] = {option: [fine, handler] if in_a_list else handler}
    with pytest.raises(ContextArgumentError) as raised:
        MiniAgents(**options)
    said = str(raised.value)
    assert said.startswith(
        f"MiniAgents({option}=...) takes async handlers (it awaits what each one returns), "
        f"but {handler!r:.60} is not async: "
    )
    assert said.endswith(f"make it `async def {named}(promise, message) -> None`.")


def awaiting_handler(log: HandlerLog) -> Callable[[MessagePromise, Message], Awaitable[None]]:
    """A plain function (no ``async``) that returns what ``log`` returns: an awaitable."""

    def handler(promise: MessagePromise, message: Message) -> Awaitable[None]:
        return log(promise, message)

    return handler


@pytest.mark.parametrize("option", ["on_persist_message", "on_promise_resolved"])
async def test_a_plain_function_that_returns_an_awaitable_is_a_handler_as_its_type_says(
    option: str,
) -> None:
    # issue 58, item 3: mypy took it (a MessageHandler returns an Awaitable), the context
    # refused it (ContextArgumentError)
    by_function, by_lambda = HandlerLog(), HandlerLog()
    handlers: list[MessageHandler] = [
        awaiting_handler(by_function),
        lambda promise, message: by_lambda(promise, message),
    ]
    options: dict[str, Any] = {option: handlers}
    async with MiniAgents(**options):
        await replying("m").inquire()
    assert by_function.texts == by_lambda.texts == ["m"]


@pytest.mark.parametrize("option", ["on_persist_message", "on_promise_resolved"])
async def test_a_handler_that_returns_no_awaitable_fails_at_its_call_and_is_logged(
    option: str, caplog: pytest.LogCaptureFixture
) -> None:
    # (what it returns cannot be told before the call: an unannotated lambda)
    healthy = HandlerLog()
    options: dict[str, Any] = {option: [lambda promise, message: None, healthy]}
    async with MiniAgents(**options):
        assert texts_of(await replying("m").inquire()) == ["m"]
    assert healthy.texts == ["m"]
    records = agent_error_logs(caplog)
    assert len(records) == 1
    assert records[0].exc_info is not None
    error = records[0].exc_info[1]
    assert isinstance(error, ContextArgumentError)
    assert str(error).startswith(
        "A MiniAgents message handler must return an awaitable (the context awaits it), but "
    )
    assert str(error).endswith(
        " returned NoneType: make it `async def handler(promise, message) -> None`."
    )
    caplog.clear()


async def test_async_callables_that_are_not_async_def_functions_are_handlers_too() -> None:
    calls: list[tuple[str, str | None]] = []

    class Keeper:
        def __init__(self, tag: str) -> None:
            self.tag = tag

        async def __call__(self, promise: MessagePromise, message: Message) -> None:
            calls.append((self.tag, message.text))

        async def keep(self, promise: MessagePromise, message: Message) -> None:
            calls.append((f"{self.tag}.keep", message.text))

    async def tagged(tag: str, promise: MessagePromise, message: Message) -> None:
        calls.append((tag, message.text))

    mock = AsyncMock()
    handlers: list[MessageHandler] = [
        Keeper("object"),
        Keeper("bound").keep,
        functools.partial(tagged, "partial"),
        functools.partial(Keeper("partial of an object")),
        mock,
    ]
    async with MiniAgents(on_persist_message=handlers, on_promise_resolved=Keeper("resolved")):
        await replying("m").inquire()
    assert sorted(calls) == [
        ("bound.keep", "m"),
        ("object", "m"),
        ("partial", "m"),
        ("partial of an object", "m"),
        ("resolved", "m"),
    ]
    assert [awaited.args[1].text for awaited in mock.await_args_list] == ["m"]


async def test_a_failing_handler_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    healthy = HandlerLog()

    async def broken(promise: MessagePromise, message: Message) -> None:
        raise Boom(f"cannot persist {message.text}")

    async with MiniAgents(on_persist_message=[broken, healthy]):
        assert texts_of(await replying("m").inquire()) == ["m"]
    assert healthy.texts == ["m"]
    records = agent_error_logs(caplog)
    assert len(records) == 1
    assert "handler" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], Boom)
    assert str(records[0].exc_info[1]) == "cannot persist m"
    caplog.clear()


async def test_a_nested_context_adds_its_handlers_to_the_outer_ones() -> None:
    outer_log, inner_log = HandlerLog(), HandlerLog()
    async with MiniAgents(on_persist_message=outer_log):
        await replying("before").inquire()
        async with MiniAgents(on_persist_message=inner_log):
            await replying("inside", "before").inquire()
        await replying("after").inquire()
    assert outer_log.texts == ["before", "inside", "after"]
    assert inner_log.texts == ["inside", "before"]  # "before" was passed to the outer one only


async def test_messages_made_outside_a_context_with_handlers_are_not_reported() -> None:
    resolved = HandlerLog()
    ready = MessageSequencePromise(["made outside"])
    async with MiniAgents(on_promise_resolved=resolved):
        assert texts_of(await echo.inquire(ready)) == ["You said: made outside"]
    assert resolved.texts == ["You said: made outside"]


# -- at_exit: work stopped as the exit begins ---------------------------------------------


async def test_at_exit_callbacks_run_as_the_exit_begins_before_it_waits_for_tasks() -> None:
    events: list[str] = []
    stop = asyncio.Event()

    async def work() -> None:
        await stop.wait()  # (ends only once told: the exit would wait for it forever)
        events.append("work ended")

    def exit_began() -> None:
        events.append("exit began")
        stop.set()

    async with MiniAgents():
        start_task(work(), "work")
        at_exit(exit_began)
        forget = at_exit(lambda: events.append("forgotten"))
        forget()
        events.append("block ended")
    assert events == ["block ended", "exit began", "work ended"]


async def test_an_at_exit_callback_given_while_exiting_runs_at_once() -> None:
    events: list[str] = []

    async def late() -> None:
        await asyncio.sleep(0)
        at_exit(lambda: events.append("late callback"))
        events.append("given")

    async with MiniAgents():
        start_task(late(), "late")
    assert events == ["late callback", "given"]


async def test_at_exit_callbacks_are_not_called_after_an_error_and_their_errors_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []

    def fails() -> None:
        raise Boom("the callback broke")

    async def fail_in_the_block() -> None:
        async with MiniAgents():
            at_exit(lambda: events.append("called"))
            raise Boom("the block failed")

    with pytest.raises(Boom, match="the block failed"):
        await fail_in_the_block()
    assert events == []
    async with MiniAgents():
        at_exit(fails)
        at_exit(lambda: events.append("the next one still called"))
    assert events == ["the next one still called"]
    records = agent_error_logs(caplog)
    assert [record.getMessage()[:45] for record in records] == [
        "A MiniAgents context's exit callback <functio"
    ]
    caplog.clear()


def test_at_exit_outside_a_context_is_a_clear_error() -> None:
    with pytest.raises(NoActiveContextError):
        at_exit(lambda: None)
