"""``miniagents.operators``: the one home of the message-stream operators.

``join_messages`` and ``split_messages`` are tested in tests/utils/test_utils.py (by their seed
import path, ``miniagents.utils``), and ``agent.as_operator`` there too; here: the operators
on observables, the marble diagrams, and that the old homes show the same functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

import miniagents.operators
import miniagents.utils
from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageType,
    MiniAgents,
    StreamedPromise,
    miniagent,
)
from miniagents.errors import (
    DeadlockError,
    OperatorArgumentError,
    PipelineArgumentError,
    StreamLimitError,
    StreamSourceError,
)
from miniagents.messages import MessageSequenceAppender, as_message_sequence
from miniagents.operators import (
    agent_operator,
    flatten_messages,
    join_messages,
    map_agent,
    resolve_messages,
    split_messages,
)
from miniagents.operators._split import _Splitter
from miniagents.promising.lowlevel import core_of
from miniagents.testing import VirtualClock


async def slow_tokens(gate: asyncio.Event) -> AsyncIterator[str]:
    yield "x"
    await gate.wait()
    yield "y"


T = TypeVar("T")


async def _whole(pieces: tuple[MessageType, ...]) -> int:
    return len(pieces)


async def collect(observable: Observable[T]) -> list[T]:
    return list(await observable.pipe(ops.to_list()))


async def test_flatten_messages_flattens_every_item_in_order() -> None:
    streamed = MessageSequencePromise(["s1", "s2"])
    source: Observable[MessageType] = reactivex.of("a", ["b", Message(text="c")], streamed)
    promises = await collect(source.pipe(flatten_messages()))
    assert all(isinstance(promise, MessagePromise) for promise in promises)
    assert [str(promise) for promise in promises] == ["a", "b", "c", "s1", "s2"]


async def test_flatten_messages_emits_a_promise_before_its_tokens_are_complete() -> None:
    gate = asyncio.Event()
    message = MessagePromise.from_async_iterable(slow_tokens(gate))
    seen: list[MessagePromise] = []
    done = asyncio.Event()
    source: Observable[MessageType] = reactivex.of(message)
    source.pipe(flatten_messages()).subscribe(seen.append, on_completed=done.set)
    await done.wait()
    assert seen == [message]
    assert not message.done
    gate.set()
    assert (await message).text == "xy"


async def test_flatten_messages_ends_with_the_error_of_a_bad_item() -> None:
    source = cast("Observable[MessageType]", reactivex.of("a", 42))
    with pytest.raises(TypeError, match="int"):
        await collect(source.pipe(flatten_messages()))


async def test_resolve_messages_keeps_the_order_while_messages_complete_out_of_it() -> None:
    gate = asyncio.Event()
    first = MessagePromise.from_async_iterable(slow_tokens(gate))
    source: Observable[MessageType] = reactivex.of(first, "second")
    messages: list[Message] = []
    done = asyncio.Event()
    source.pipe(resolve_messages()).subscribe(messages.append, on_completed=done.set)
    await asyncio.sleep(0)
    assert messages == []  # "second" is complete, but waits for the first one
    gate.set()
    await done.wait()
    assert [message.text for message in messages] == ["xy", "second"]


async def test_each_subscription_reads_the_source_anew() -> None:
    reads: list[int] = []

    def subscribe(observer: Any, scheduler: Any = None) -> Any:
        reads.append(1)
        return reactivex.of("a").subscribe(observer)

    source: Observable[MessageType] = Observable(subscribe)
    resolved = source.pipe(resolve_messages())
    assert [message.text for message in await collect(resolved)] == ["a"]
    assert [message.text for message in await collect(resolved)] == ["a"]
    assert len(reads) == 2


@pytest.mark.parametrize(
    "operator", [flatten_messages, resolve_messages], ids=lambda op: op.__name__
)
def test_a_subscription_disposed_downstream_unsubscribes_from_the_source(
    operator: Callable[[], Callable[[Observable[MessageType]], Observable[Any]]],
) -> None:
    # as a reactivex operator does: take(2) disposes its upstream at its second item
    scheduler = TestScheduler()
    ticks = [ReactiveTest.on_next(210 + 10 * index, f"m{index}") for index in range(10)]
    source = scheduler.create_hot_observable(*ticks)
    result = scheduler.start(lambda: source.pipe(operator(), ops.take(2), ops.map(str)))
    assert result.messages == [
        ReactiveTest.on_next(210, "m0"),
        ReactiveTest.on_next(220, "m1"),
        ReactiveTest.on_completed(220),
    ]
    assert source.subscriptions == [ReactiveTest.subscribe(200, 220)]


def test_an_unknown_overflow_policy_is_refused_where_it_is_given() -> None:
    hot: Observable[MessageType] = reactivex.never()
    refusals: list[Callable[[], object]] = [
        lambda: flatten_messages(overflow="drop"),  # type: ignore[arg-type]
        lambda: resolve_messages(overflow="drop"),  # type: ignore[arg-type]
        lambda: MessageSequencePromise.from_observable(hot, overflow="drop"),  # type: ignore[arg-type]
        lambda: StreamedPromise(hot, resolver=_whole, overflow="newest"),  # type: ignore[arg-type]
    ]
    for refused in refusals:
        with pytest.raises(StreamLimitError, match="overflow must be one of 'buffer'"):
            refused()
    with pytest.raises(PipelineArgumentError, match="map_agent\\(\\) got a bad overflow"):
        map_agent(shout, overflow="drop")  # type: ignore[arg-type]


def test_a_sequence_from_something_that_is_not_an_observable_is_refused_at_once() -> None:
    with pytest.raises(StreamSourceError, match=r"needs an Observable, but got an int \(42\)"):
        MessageSequencePromise.from_observable(42)  # type: ignore[arg-type]


@miniagent
async def count_to_three(ctx: InteractionContext) -> None:
    """Replies without ever suspending: a take(1) after it disposes inside its first reply."""
    for number in range(3):
        ctx.reply(str(number))


@pytest.mark.usefixtures("lazy_and_eager_tasks")
async def test_an_agent_operator_taken_from_gives_up_quietly_and_lets_go_of_its_source() -> None:
    # the agent's replies are given up at the take, inside a reply: no error is logged (the
    # conftest fails a test that logs one), and its input leaves the source. With eager tasks
    # the agent, which never waits, had replied and returned inside the subscription, so the
    # take(1) found its replies complete, and cancelling them (a no-op) stopped nothing; its
    # input kept the source's subscription
    subject: Subject[Message] = Subject()
    replies: list[str] = []
    done = asyncio.Event()
    async with MiniAgents():
        taken = subject.pipe(count_to_three.as_operator(), ops.take(1))
        taken.subscribe(lambda reply: replies.append(str(reply)), on_completed=done.set)
        subject.on_next(Message(text="go"))
        await done.wait()
        assert replies == ["0"]
        assert not subject.observers


@miniagent
async def answers_the_first(ctx: InteractionContext) -> None:
    """Replies to its first input message only, then returns."""
    async for message in ctx.message_promises:
        ctx.reply(f"got {await message}")
        return


@pytest.mark.usefixtures("lazy_and_eager_tasks")
async def test_an_agent_operator_lets_go_of_its_source_when_its_agent_has_returned() -> None:
    # the replies completed before the subscription was disposed (by their own end), and
    # only replies cancelled stopped the input: it kept the source for nobody, for good
    subject: Subject[Message] = Subject()
    replies: list[str] = []
    done = asyncio.Event()
    async with MiniAgents():
        subject.pipe(answers_the_first.as_operator()).subscribe(
            lambda reply: replies.append(str(reply)), on_completed=done.set
        )
        assert len(subject.observers) == 1
        subject.on_next(Message(text="a"))
        await done.wait()
        assert replies == ["got a"]
        assert not subject.observers


@pytest.mark.parametrize("taken", [False, True], ids=["returned", "taken from"])
async def test_agent_operators_piped_one_after_another_let_go_of_the_source(taken: bool) -> None:
    # the second agent's input is the first one's new interaction, its alone: it ran on
    # (reading the source) when the second had returned, or had failed replying after the
    # take gave it up (an AppenderClosedError, not its task's cancellation)
    subject: Subject[Message] = Subject()
    replies: list[str] = []
    done = asyncio.Event()
    second = shout.as_operator() if taken else answers_the_first.as_operator()
    async with MiniAgents():
        piped = subject.pipe(shout.as_operator(), second)
        if taken:
            piped = piped.pipe(ops.take(1))
        piped.subscribe(lambda reply: replies.append(str(reply)), on_completed=done.set)
        subject.on_next(Message(text="a"))
        subject.on_next(Message(text="b"))
        await done.wait()
        assert replies == ["A!!" if taken else "got A!"]
        assert not subject.observers


async def test_an_agent_operator_that_finished_early_keeps_its_source_until_it_stops() -> None:
    read_on: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @miniagent
    async def answers_then_reads_on(ctx: InteractionContext) -> None:
        messages = aiter(ctx.message_promises)
        ctx.reply(f"got {await anext(messages)}")
        ctx.finish_early()  # the replies end; the agent reads on
        read_on.set_result(str(await anext(messages)))

    subject: Subject[Message] = Subject()
    done = asyncio.Event()
    async with MiniAgents():
        subject.pipe(answers_then_reads_on.as_operator()).subscribe(on_completed=done.set)
        subject.on_next(Message(text="a"))
        await done.wait()  # the replies have ended (and the subscription is disposed)
        assert len(subject.observers) == 1  # the agent still reads its input
        subject.on_next(Message(text="b"))
        assert await read_on == "b"
        assert not subject.observers  # it has returned: nobody reads the input any more


async def test_an_agent_operator_taken_from_leaves_a_shared_sequence_to_its_other_readers() -> None:
    # the operator's input was a view of the sequence, and giving the operator up cancelled
    # the sequence itself (its agent too) under its other reader
    go_on = asyncio.Event()

    @miniagent
    async def numbers(ctx: InteractionContext) -> None:
        for number in range(5):
            if number == 2:
                await go_on.wait()  # (still running when the operator is given up)
            ctx.reply(str(number))

    done = asyncio.Event()
    async with MiniAgents():
        replies = numbers.inquire()
        whole = asyncio.ensure_future(replies.aresolve_messages())  # the other reader
        taken: list[str] = []
        replies.as_observable().pipe(shout.as_operator(), ops.take(1)).subscribe(
            lambda reply: taken.append(str(reply)), on_completed=done.set
        )
        await done.wait()
        assert taken == ["0!"]
        go_on.set()
        assert [str(message) for message in await whole] == ["0", "1", "2", "3", "4"]


async def test_an_agent_operator_taken_from_gives_up_a_sequence_nobody_else_reads() -> None:
    stopped: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @miniagent
    async def numbers(ctx: InteractionContext) -> None:
        try:
            for number in range(5):
                if number == 2:
                    await asyncio.Event().wait()  # (still running when the operator is given up)
                ctx.reply(str(number))
        except asyncio.CancelledError:
            stopped.set_result("cancelled")
            raise

    done = asyncio.Event()
    async with MiniAgents():
        taken = numbers.inquire().as_observable().pipe(shout.as_operator(), ops.take(1))
        taken.subscribe(on_completed=done.set)
        await done.wait()
        assert await stopped == "cancelled"


@miniagent
async def shout(ctx: InteractionContext, mark: str = "!") -> None:
    async for message in ctx.messages:
        ctx.reply(f"{str(await message).upper()}{mark}")


async def test_agent_operator_is_the_agent_as_an_operator() -> None:
    source = reactivex.of(Message(text="hi"), Message(text="there"))
    async with MiniAgents():
        replies = await collect(source.pipe(agent_operator(shout, mark="?")))
    assert [str(reply) for reply in replies] == ["HI?", "THERE?"]


def test_agent_operator_of_a_plain_function_says_to_decorate_it() -> None:
    async def shout_plain(ctx: InteractionContext) -> None:
        ctx.reply(ctx.message_promises)

    hint = r"got the function shout_plain, not an agent: decorate it with @miniagent"
    with pytest.raises(OperatorArgumentError, match=hint):
        agent_operator(shout_plain)  # type: ignore[arg-type]
    with pytest.raises(OperatorArgumentError, match=r"got a str \('shout'\), not an agent"):
        agent_operator("shout")  # type: ignore[arg-type]


async def test_an_agent_reads_a_resolved_stream_directly() -> None:
    source: Observable[MessageType] = reactivex.of("a", "b")
    async with MiniAgents():
        resolved = source.pipe(resolve_messages())
        replies = await shout.inquire(resolved)
    assert [str(reply) for reply in replies] == ["A!", "B!"]


async def test_join_and_split_are_operators_with_clear_errors() -> None:
    assert str(await join_messages(["a", "b"], delimiter="+")) == "a+b"
    assert [str(m) for m in await split_messages("a|b", delimiter="|")] == ["a", "b"]
    with pytest.raises(OperatorArgumentError, match="non-empty delimiter") as raised:
        split_messages("a", delimiter="")
    assert isinstance(raised.value, ValueError)
    with pytest.raises(
        OperatorArgumentError, match=r"join_messages\(\) needs its delimiter as a str"
    ):
        join_messages("a", delimiter=None)  # type: ignore[call-overload]
    with pytest.raises(OperatorArgumentError, match=r"got an int \(5\)"):
        split_messages("a", delimiter=5)  # type: ignore[call-overload]


async def test_splitting_a_text_of_many_parts_copies_it_once_not_once_per_part() -> None:
    # a document cut into lines, in one token: the splitter read on from each delimiter it
    # found by copying the rest of the text, quadratic in it (2,000 lines: 19 MB copied,
    # 80,000 lines: 7 s), instead of reading on in place
    copied = 0

    class Counted(_Splitter):
        @property
        def buffer(self) -> str:
            return self.kept

        @buffer.setter
        def buffer(self, text: str) -> None:
            nonlocal copied
            copied += len(text)
            self.kept = text

    text = "".join(f"line {number}\n" for number in range(2000))
    splitter = Counted("\n", Message, {})
    parts = splitter.feed(text) + splitter.close()
    assert [await part for part in parts] == [Message(text=f"line {n}") for n in range(2000)]
    assert copied <= len(text)  # (what is held back of each token at most, not the rest)


async def test_join_and_split_take_a_spread_of_plain_metadata_and_check_what_it_may_hold() -> None:
    meta: dict[str, str] = {"role": "assistant"}
    joined = await join_messages(["a", "b"], "+", **meta)
    assert (str(joined), joined.model_extra) == ("a+b", meta)
    parts = await split_messages("a|b", "|", **meta)
    assert [(str(part), part.model_extra) for part in parts] == [("a", meta), ("b", meta)]
    # what mypy lets such a spread hold is checked at once, with a message naming the fix
    strip: dict[str, str] = {"strip_leading_newlines": "yes"}
    with pytest.raises(
        OperatorArgumentError, match="needs strip_leading_newlines to be True or False"
    ):
        join_messages("a", **strip)
    named: dict[str, str] = {"message_class": "Row"}
    for operator in (join_messages, split_messages):
        with pytest.raises(
            OperatorArgumentError,
            match=r"message_class as Message or a subclass.*got a str \('Row'\)\.$",
        ):
            operator("a", **named)


async def test_as_message_sequence_keeps_a_sequence_and_flattens_anything_else() -> None:
    sequence = MessageSequencePromise(["a"])
    assert as_message_sequence(sequence) is sequence
    assert [str(m) for m in await as_message_sequence(["a", ["b"]])] == ["a", "b"]


def test_the_utils_show_the_same_operators() -> None:
    assert miniagents.utils.join_messages is join_messages
    assert miniagents.utils.split_messages is split_messages


OPERATORS = [
    name
    for name in miniagents.operators.__all__
    if name[0].islower() and name != "as_message_sequence"  # a conversion, not over time
]


@pytest.mark.parametrize("name", OPERATORS)
def test_every_operator_draws_its_marble_diagram(name: str) -> None:
    operator = getattr(miniagents.operators, name)
    doc = operator.__doc__ or ""
    assert ".. marble::" in doc, f"{name} has no marble diagram"
    assert "|" in doc.split(".. marble::")[1], f"{name}'s diagram shows no end of a stream"
    assert operator.__module__.startswith("miniagents.operators._"), "one operator per module"


@pytest.mark.parametrize("operator", [join_messages, split_messages])
async def test_giving_up_on_a_join_or_a_split_stops_the_agent_it_reads(
    operator: Callable[[MessageType], object], virtual_clock: VirtualClock
) -> None:
    events: list[str] = []

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        ctx.reply("first part")
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        ctx.reply("second part")

    async with MiniAgents():
        joined = cast("MessagePromise | MessageSequencePromise", operator(slow.inquire()))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(joined.aresolve(), 5)
    assert virtual_clock.elapsed == pytest.approx(5)  # not the agent's 100 s
    assert events == ["cancelled"]


async def test_join_messages_over_a_sequence_that_holds_the_joined_message_fails() -> None:
    # read, the joined message streamed its own tokens into itself without end, synchronously
    appender = MessageSequenceAppender()
    joined = join_messages(appender.sequence)
    with appender:
        appender.append("x")
        appender.append(joined)
    with pytest.raises(DeadlockError, match="holds the joined message itself"):
        await joined
    assert core_of(joined).pieces == ["x"]  # the tokens before it


@pytest.mark.parametrize("ring", [2, 3])
async def test_joined_messages_that_feed_each_other_fail_instead_of_growing(ring: int) -> None:
    # j1 = join(a), j2 = join(b), a holds j2 and b holds j1 (or a ring of three): the joins'
    # producers are tasks, so the cycle went unseen and each joined the other's tokens forever
    appenders = [MessageSequenceAppender() for _ in range(ring)]
    joined = [join_messages(appender.sequence) for appender in appenders]
    for number, appender in enumerate(appenders):
        with appender:
            appender.append(f"x{number}")
            appender.append(joined[(number + 1) % ring])
    tokens: list[str] = []

    async def read_some() -> None:
        async for token in joined[0]:
            tokens.append(token)
            assert len(tokens) < 100, "the joined messages grew into each other without end"

    with pytest.raises(DeadlockError, match=r"feeds itself.*Break the cycle"):
        await read_some()
    for message in joined:
        with pytest.raises(DeadlockError):
            await message
    assert tokens[0] == "x0"
