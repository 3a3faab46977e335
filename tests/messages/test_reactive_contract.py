"""The reactive contract: observables that replay, compose with ``pipe`` and bridge to asyncio.

The marble tests run on a ``reactivex.testing.TestScheduler`` (virtual time, no asyncio
loop); the others run on the asyncio loop of the test.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, Recorded, TestScheduler
from reactivex.testing.mockobserver import MockObserver

from miniagents import (
    Message,
    MessagePromise,
    MessageSequencePromise,
    MessageType,
    Promise,
    StreamedPromise,
)
from miniagents.messages.errors import MessageTypeError
from miniagents.promising.errors import StreamArgumentError
from miniagents.promising.limits import StreamLimits, stream_limits
from miniagents.testing import HANG_GUARD, VirtualClock

T = TypeVar("T")

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


# -- helpers -------------------------------------------------------------------------


def timeline(
    records: Sequence[Recorded[Any]], show: Callable[[Any], object] = lambda value: value
) -> list[tuple[object, ...]]:
    """Describe recorded notifications as plain tuples; errors by exact type and message."""
    described: list[tuple[object, ...]] = []
    for record in records:
        notification = record.value
        if isinstance(notification, OnNext):
            described.append((record.time, "next", show(notification.value)))
        elif isinstance(notification, OnError):
            error = notification.exception
            described.append((record.time, "error", type(error), str(error)))
        elif isinstance(notification, OnCompleted):
            described.append((record.time, "completed"))
        else:  # pragma: no cover - the recorders only record notifications
            raise AssertionError(f"unexpected record {record!r}")
    return described


def assert_marbles(
    observer: MockObserver[Any],
    expected: Sequence[Recorded[Any]],
    show: Callable[[Any], object] = lambda value: value,
) -> None:
    """Assert that ``observer`` got exactly ``expected`` (values, errors, ends, times)."""
    assert timeline(observer.messages, show) == timeline(expected)


def message_text(promise: MessagePromise) -> str:
    """The text of a message promise that has finished streaming."""
    return str(promise)


def subscribe_at(scheduler: TestScheduler, time: int, observable: Observable[T]) -> MockObserver[T]:
    """Subscribe a recording observer to ``observable`` at virtual ``time``."""
    observer: MockObserver[T] = scheduler.create_observer()

    def action(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
        observable.subscribe(observer)

    scheduler.schedule_absolute(time, action)
    return observer


async def produce(*tokens: str) -> AsyncIterator[str]:
    """Yield ``tokens`` one by one, giving the loop a turn before each."""
    for token in tokens:
        await asyncio.sleep(0)
        yield token


async def collect(stream: AsyncIterable[T]) -> list[T]:
    """Consume ``stream`` with ``async for``."""
    return [item async for item in stream]


class Recorder(abc.ObserverBase[object]):
    """An observer that records notifications as tuples, and the thread of each."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []
        self.threads: set[int] = set()

    def on_next(self, value: object) -> None:
        self.threads.add(threading.get_ident())
        self.events.append(("next", value))

    def on_error(self, error: Exception) -> None:
        self.threads.add(threading.get_ident())
        self.events.append(("error", type(error), str(error)))

    def on_completed(self) -> None:
        self.threads.add(threading.get_ident())
        self.events.append(("completed",))


def miniagents_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The ERROR records that the library logged."""
    return [
        record
        for record in caplog.records
        if record.name == "miniagents" and record.levelno >= logging.ERROR
    ]


def assert_no_lost_error_report_once_collected(caplog: pytest.LogCaptureFixture) -> None:
    """Collect the garbage of the calling test; assert the library reported no lost error.

    The caller must hold no reference to its streams any more: a test's locals live until
    it returns, so it deletes them first.
    """
    gc.collect()
    reports = [record.getMessage() for record in miniagents_errors(caplog)]
    caplog.clear()  # checked here, so that the autouse fixture does not fail the teardown
    assert reports == []


# -- marble tests: virtual time, no asyncio loop ----------------------------------------


def test_tokens_from_a_hot_observable_arrive_at_the_same_virtual_times() -> None:
    scheduler = TestScheduler()
    tokens = scheduler.create_hot_observable(
        on_next(210, "Hel"),
        on_next(220, "lo"),
        on_next(240, ", world"),
        on_completed(250),
    )
    promise = MessagePromise.from_observable(tokens, role="assistant")

    observer = scheduler.start(promise.as_observable)

    assert_marbles(
        observer,
        [on_next(210, "Hel"), on_next(220, "lo"), on_next(240, ", world"), on_completed(250)],
    )
    assert tokens.subscriptions == [subscribe(200, 250)]  # released when the stream ended
    assert str(promise) == "Hello, world"
    assert promise.metadata == {"role": "assistant"}


def test_the_source_is_subscribed_at_the_first_consumer_or_at_start() -> None:
    scheduler = TestScheduler()
    lazy_tokens = scheduler.create_hot_observable(
        on_next(150, "early"), on_next(210, "late"), on_completed(220)
    )
    started_tokens = scheduler.create_hot_observable(
        on_next(150, "early"), on_next(210, "late"), on_completed(220)
    )
    lazy = MessagePromise.from_observable(lazy_tokens)
    started = MessagePromise.from_observable(started_tokens)
    started.start()  # no loop is needed for a purely synchronous source

    lazy_observer = subscribe_at(scheduler, 200, lazy.as_observable())
    started_observer = subscribe_at(scheduler, 200, started.as_observable())
    scheduler.start()

    assert_marbles(lazy_observer, [on_next(210, "late"), on_completed(220)])
    assert_marbles(
        started_observer, [on_next(200, "early"), on_next(210, "late"), on_completed(220)]
    )
    assert lazy_tokens.subscriptions == [subscribe(200, 220)]
    assert started_tokens.subscriptions == [subscribe(0, 220)]


def test_a_late_subscriber_gets_the_replay_then_the_live_tokens() -> None:
    scheduler = TestScheduler()
    tokens = scheduler.create_hot_observable(
        on_next(210, "a"), on_next(220, "b"), on_next(300, "c"), on_completed(400)
    )
    observable = MessagePromise.from_observable(tokens).as_observable()

    early = subscribe_at(scheduler, 200, observable)
    late = subscribe_at(scheduler, 250, observable)
    after_the_end = subscribe_at(scheduler, 500, observable)
    scheduler.start()

    assert_marbles(
        early, [on_next(210, "a"), on_next(220, "b"), on_next(300, "c"), on_completed(400)]
    )
    assert_marbles(
        late, [on_next(250, "a"), on_next(250, "b"), on_next(300, "c"), on_completed(400)]
    )
    assert_marbles(
        after_the_end,
        [on_next(500, "a"), on_next(500, "b"), on_next(500, "c"), on_completed(500)],
    )


def test_the_source_is_subscribed_exactly_once_however_many_subscribers() -> None:
    scheduler = TestScheduler()
    tokens = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_completed(30))
    promise = MessagePromise.from_observable(tokens)
    observable = promise.as_observable()

    first = subscribe_at(scheduler, 200, observable)
    second = subscribe_at(scheduler, 215, observable)
    piped = subscribe_at(scheduler, 215, observable.pipe(ops.map(str.upper)))
    after_the_end = subscribe_at(scheduler, 260, promise.as_observable())
    scheduler.start()

    assert tokens.subscriptions == [subscribe(200, 230)]
    assert_marbles(first, [on_next(210, "a"), on_next(220, "b"), on_completed(230)])
    assert_marbles(second, [on_next(215, "a"), on_next(220, "b"), on_completed(230)])
    assert_marbles(piped, [on_next(215, "A"), on_next(220, "B"), on_completed(230)])
    assert_marbles(after_the_end, [on_next(260, "a"), on_next(260, "b"), on_completed(260)])


def test_an_error_arrives_after_the_earlier_tokens_for_early_and_late_subscribers() -> None:
    scheduler = TestScheduler()
    tokens = scheduler.create_hot_observable(
        on_next(210, "a"),
        on_next(220, "b"),
        on_error(230, ValueError("the model went away")),
        on_next(240, "never seen"),
    )
    observable = MessagePromise.from_observable(tokens).as_observable()

    early = subscribe_at(scheduler, 200, observable)
    late = subscribe_at(scheduler, 225, observable)
    after_the_end = subscribe_at(scheduler, 300, observable)
    scheduler.start()

    error = on_error(230, ValueError("the model went away"))
    assert_marbles(early, [on_next(210, "a"), on_next(220, "b"), error])
    assert_marbles(late, [on_next(225, "a"), on_next(225, "b"), error])
    assert_marbles(
        after_the_end,
        [on_next(300, "a"), on_next(300, "b"), on_error(300, ValueError("the model went away"))],
    )
    assert tokens.subscriptions == [subscribe(200, 230)]


def test_a_non_str_token_ends_the_stream_with_a_type_error_at_its_position() -> None:
    scheduler = TestScheduler()
    items: list[Recorded[object]] = [
        on_next(210, "a"),
        on_next(220, 42),
        on_next(230, "b"),
        on_completed(240),
    ]
    tokens = scheduler.create_hot_observable(items)
    observable = MessagePromise.from_observable(cast("Observable[str]", tokens)).as_observable()

    early = subscribe_at(scheduler, 200, observable)
    late = subscribe_at(scheduler, 300, observable)
    scheduler.start()

    message = (
        "A message token must be a str, but the token stream produced an int: 42. "
        "Convert tokens to str before streaming them."
    )
    # MessageTypeError, also a TypeError: the same error as for a non-str token appended
    assert_marbles(early, [on_next(210, "a"), on_error(220, MessageTypeError(message))])
    assert_marbles(late, [on_next(300, "a"), on_error(300, MessageTypeError(message))])
    assert tokens.subscriptions == [subscribe(200, 220)]  # the source is let go at once


def test_a_sequence_from_an_observable_keeps_the_order_and_flattens() -> None:
    scheduler = TestScheduler()
    nested_source = scheduler.create_hot_observable(
        on_next(245, "h"), on_next(255, ["i", "j"]), on_completed(260)
    )
    streaming_nested = MessageSequencePromise.from_observable(nested_source)
    finished_nested = MessageSequencePromise(["f", Message(text="g")])
    tokens = scheduler.create_hot_observable(
        on_next(276, "l"), on_next(285, "m"), on_completed(290)
    )
    streaming_message = MessagePromise.from_observable(tokens)
    streaming_message.start()
    items: list[Recorded[MessageType]] = [
        on_next(210, "a"),
        on_next(220, Message(text="b", role="user")),
        on_next(230, ["c", Message(text="d"), ["e"]]),
        on_next(240, finished_nested),
        on_next(241, streaming_nested),
        on_next(270, {"text": "k"}),
        on_next(275, streaming_message),  # passed on at once, its tokens stream on
        on_completed(280),
    ]
    source = scheduler.create_hot_observable(items)
    sequence = MessageSequencePromise.from_observable(source)

    observer = scheduler.start(sequence.as_observable)

    assert_marbles(
        observer,
        [
            on_next(210, "a"),
            on_next(220, "b"),
            on_next(230, "c"),
            on_next(230, "d"),
            on_next(230, "e"),
            on_next(240, "f"),
            on_next(240, "g"),
            on_next(245, "h"),
            on_next(255, "i"),
            on_next(255, "j"),
            on_next(270, "k"),
            on_next(275, "lm"),  # its text, complete after the run
            on_completed(280),
        ],
        show=message_text,
    )
    assert source.subscriptions == [subscribe(200, 280)]
    assert nested_source.subscriptions == [subscribe(241, 260)]
    assert str(sequence) == "\n\n".join([*"abcdefghijk", "lm"])
    second = observer.messages[1].value
    assert isinstance(second, OnNext)
    assert second.value.metadata == {"role": "user"}


def test_a_slow_nested_stream_holds_back_later_items_but_not_earlier_ones() -> None:
    scheduler = TestScheduler()
    slow_source = scheduler.create_hot_observable(
        on_next(205, "x"), on_next(300, "y"), on_completed(350)
    )
    slow = MessageSequencePromise.from_observable(slow_source)
    slow.start()  # it is already streaming (from time 0) when the outer source emits it
    items: list[Recorded[MessageType]] = [
        on_next(210, "a"),
        on_next(220, slow),
        on_next(230, "b"),
        on_next(240, "c"),
        on_completed(250),
    ]
    source = scheduler.create_hot_observable(items)
    observable = MessageSequencePromise.from_observable(source).as_observable()

    observer = subscribe_at(scheduler, 200, observable)
    late = subscribe_at(scheduler, 260, observable)
    scheduler.start()

    assert_marbles(
        observer,
        [
            on_next(210, "a"),  # not delayed by the slow stream after it
            on_next(220, "x"),  # what the slow stream had already produced
            on_next(300, "y"),
            on_next(350, "b"),  # held until the slow stream completed
            on_next(350, "c"),
            on_completed(350),
        ],
        show=message_text,
    )
    assert_marbles(
        late,
        [
            on_next(260, "a"),
            on_next(260, "x"),
            on_next(300, "y"),
            on_next(350, "b"),
            on_next(350, "c"),
            on_completed(350),
        ],
        show=message_text,
    )
    assert slow_source.subscriptions == [subscribe(0, 350)]


@pytest.mark.parametrize(
    ("make_item_at_220", "expected_at_220"),
    [
        pytest.param(lambda: ValueError("bad input"), [], id="an exception item"),
        pytest.param(lambda: ["b", ValueError("bad input"), "c"], ["b"], id="inside a list"),
        pytest.param(
            lambda: MessageSequencePromise(["b", ValueError("bad input"), "c"]),
            ["b"],
            id="inside a finished nested sequence",
        ),
    ],
)
def test_an_exception_item_ends_the_sequence_at_its_position(
    make_item_at_220: Callable[[], MessageType],
    expected_at_220: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = TestScheduler()
    items: list[Recorded[MessageType]] = [
        on_next(210, "a"),
        on_next(220, make_item_at_220()),
        on_next(230, "never seen"),
        on_completed(240),
    ]
    source = scheduler.create_hot_observable(items)
    observable = MessageSequencePromise.from_observable(source).as_observable()

    early = subscribe_at(scheduler, 200, observable)
    late = subscribe_at(scheduler, 300, observable)
    scheduler.start()

    assert_marbles(
        early,
        [
            on_next(210, "a"),
            *(on_next(220, text) for text in expected_at_220),
            on_error(220, ValueError("bad input")),
        ],
        show=message_text,
    )
    assert_marbles(
        late,
        [
            on_next(300, "a"),
            *(on_next(300, text) for text in expected_at_220),
            on_error(300, ValueError("bad input")),
        ],
        show=message_text,
    )
    assert source.subscriptions == [subscribe(200, 220)]
    del scheduler, items, source, observable  # every reference to the item at 220
    assert_no_lost_error_report_once_collected(caplog)


def test_an_error_of_a_nested_stream_ends_the_sequence_after_its_items() -> None:
    scheduler = TestScheduler()
    nested_source = scheduler.create_hot_observable(
        on_next(215, "x"), on_error(225, RuntimeError("inner failure"))
    )
    items: list[Recorded[MessageType]] = [
        on_next(210, MessageSequencePromise.from_observable(nested_source)),
        on_next(220, "b"),
        on_completed(230),
    ]
    source = scheduler.create_hot_observable(items)

    observer = scheduler.start(MessageSequencePromise.from_observable(source).as_observable)

    assert_marbles(
        observer,
        [on_next(215, "x"), on_error(225, RuntimeError("inner failure"))],
        show=message_text,
    )
    assert source.subscriptions == [subscribe(200, 225)]
    assert nested_source.subscriptions == [subscribe(210, 225)]


def test_an_item_that_is_not_a_message_type_ends_the_sequence_at_its_position() -> None:
    scheduler = TestScheduler()
    items: list[Recorded[object]] = [on_next(210, "a"), on_next(220, 3.5), on_completed(230)]
    source = scheduler.create_hot_observable(items)

    observer = scheduler.start(
        MessageSequencePromise.from_observable(
            cast("Observable[MessageType]", source)
        ).as_observable
    )

    message = (
        "Got a float (3.5) where messages were expected. Pass str, dict, "
        "Message, a pydantic model, MessagePromise, MessageSequencePromise, an exception, "
        "or an (async) iterable or Observable of these."
    )
    assert_marbles(
        observer,
        [on_next(210, "a"), on_error(220, MessageTypeError(message))],
        show=message_text,
    )
    assert source.subscriptions == [subscribe(200, 220)]


def test_an_item_that_raises_while_it_is_flattened_ends_the_sequence_there() -> None:
    def broken_generator() -> Iterator[str]:
        yield "b"
        raise ValueError("generator broke")

    scheduler = TestScheduler()
    items: list[Recorded[MessageType]] = [
        on_next(210, "a"),
        on_next(220, broken_generator()),
        on_next(230, "c"),
        on_completed(240),
    ]
    source = scheduler.create_hot_observable(items)

    observer = scheduler.start(MessageSequencePromise.from_observable(source).as_observable)

    assert_marbles(
        observer,
        [on_next(210, "a"), on_next(220, "b"), on_error(220, ValueError("generator broke"))],
        show=message_text,
    )


def test_disposing_a_subscription_stops_its_items_but_not_the_producer() -> None:
    scheduler = TestScheduler()
    tokens = scheduler.create_cold_observable(
        on_next(10, "a"), on_next(20, "b"), on_next(30, "c"), on_completed(40)
    )
    observable = MessagePromise.from_observable(tokens).as_observable()

    only_consumer = scheduler.start(lambda: observable, disposed=215)
    assert_marbles(only_consumer, [on_next(210, "a")])
    assert tokens.subscriptions == [subscribe(200, 240)]  # it ran to its end, once

    later = subscribe_at(scheduler, 300, observable)
    scheduler.start()
    assert_marbles(
        later, [on_next(300, "a"), on_next(300, "b"), on_next(300, "c"), on_completed(300)]
    )
    assert tokens.subscriptions == [subscribe(200, 240)]


# -- asyncio tests -------------------------------------------------------------------


async def test_operators_compose_over_the_tokens_of_a_message_promise() -> None:
    def is_not_blank(token: str) -> bool:
        return token.strip() != ""

    promise = MessagePromise.from_async_iterable(produce("Hel", "lo", " ", "world"))

    shouted = await promise.as_observable().pipe(
        ops.map(str.upper), ops.filter(is_not_blank), ops.to_list()
    )
    last_token = await promise.as_observable()
    lengths = await promise.as_observable().pipe(ops.map(len), ops.to_list())

    assert shouted == ["HEL", "LO", "WORLD"]
    assert last_token == "world"
    assert lengths == [3, 2, 1, 5]
    assert await promise == Message(text="Hello world")


class Alert(Message):
    """A message class that declares a field named ``overflow``."""

    overflow: bool = False


def from_observable(tokens: Observable[str], policy: str) -> object:
    return MessagePromise.from_observable(tokens, overflow=policy)


def constructed(tokens: Observable[str], policy: str) -> object:
    return MessagePromise(tokens, overflow=policy)


@pytest.mark.parametrize("policy", ["buffer", "drop_oldest", "drop_newest", "error"])
@pytest.mark.parametrize(
    ("make", "made_by"),
    [
        (from_observable, "MessagePromise.from_observable(...)"),
        (constructed, "MessagePromise(source, ...)"),
    ],
)
def test_a_message_refuses_an_overflow_policy_that_would_only_become_its_metadata(
    policy: str, make: Callable[[Observable[str], str], object], made_by: str
) -> None:
    # MessageSequencePromise.from_observable and StreamedPromise take overflow= as their
    # policy; a message keeps every token, and overflow= was silently a field of the message
    tokens: Subject[str] = Subject()
    with pytest.raises(StreamArgumentError) as raised:
        make(tokens, policy)
    assert str(raised.value) == (
        f"{made_by} takes no overflow policy: a message keeps every token of its source, "
        f"however fast a hot one emits them, so overflow={policy!r} would only become a "
        "field of the message. Remove overflow=, or, for a field of that name, declare it in "
        "a Message subclass and pass message_class=."
    )
    assert tokens.observers == []  # refused before anything subscribed


async def test_a_message_class_that_declares_an_overflow_field_gets_it_as_metadata() -> None:
    promise = MessagePromise.from_observable(
        reactivex.of("Full"), message_class=Alert, overflow=True
    )
    assert await promise == Alert(text="Full", overflow=True)
    made = MessagePromise(reactivex.of("Full"), message_class=Alert, overflow=True)
    assert await made == Alert(text="Full", overflow=True)


async def test_a_message_keeps_every_token_of_a_hot_source_that_outruns_its_reader() -> None:
    # what a sequence does with overflow="buffer": the reader reads late, nothing is dropped
    tokens: Subject[str] = Subject()
    limits = stream_limits.set(StreamLimits(replay_window=2, high_water_mark=2))
    try:
        promise = MessagePromise.from_observable(tokens)
    finally:
        stream_limits.reset(limits)
    promise.start()  # a hot source: listen before it emits
    reader = aiter(promise)
    read: list[str] = []
    for index in range(10):
        tokens.on_next(f"t{index} ")
        if index % 3 == 2:  # one token read per three emitted
            read.append(await anext(reader))
    tokens.on_completed()
    read.extend([token async for token in reader])
    assert read == [f"t{index} " for index in range(10)]
    assert (await promise).text == "".join(read)


async def test_a_sequence_stage_maps_message_promises_into_a_new_sequence() -> None:
    async def conversation() -> AsyncIterator[MessageType]:
        yield "first"
        await asyncio.sleep(0)
        yield MessagePromise.from_async_iterable(produce("sec", "ond"), role="assistant")
        yield ["third", Message(text="fourth")]

    def shout(message: MessagePromise) -> MessagePromise:
        tokens = message.as_observable().pipe(ops.map(str.upper))
        metadata: dict[str, Any] = {**message.metadata, "stage": "shout"}
        return MessagePromise.from_observable(tokens, **metadata)

    upstream = MessageSequencePromise(conversation())
    stage = MessageSequencePromise.from_observable(upstream.as_observable().pipe(ops.map(shout)))

    streamed = [await promise for promise in await collect(stage)]
    resolved = await stage

    expected = (
        Message(text="FIRST", stage="shout"),
        Message(text="SECOND", stage="shout", role="assistant"),
        Message(text="THIRD", stage="shout"),
        Message(text="FOURTH", stage="shout"),
    )
    assert tuple(streamed) == expected
    assert tuple(resolved) == expected
    assert [message.text for message in await upstream] == ["first", "second", "third", "fourth"]


async def test_a_chain_of_pass_through_stages_keeps_every_token_in_order(
    virtual_clock: VirtualClock,
) -> None:
    words = [f"w{index} " for index in range(30)]
    log: list[tuple[str, str]] = []

    async def source_tokens() -> AsyncIterator[str]:
        for word in words:
            await asyncio.sleep(0.001)
            log.append(("produced", word))
            yield word

    async def consume(name: str, stream: MessagePromise) -> list[str]:
        received = []
        async for token in stream:
            log.append((name, token))
            received.append(token)
        return received

    source = MessagePromise.from_async_iterable(source_tokens())
    stages = [source]
    for _ in range(5):
        stages.append(MessagePromise.from_observable(stages[-1].as_observable()))

    at_source, at_end = await asyncio.gather(consume("source", source), consume("end", stages[-1]))

    assert at_source == words
    assert at_end == words
    assert await stages[-1] == Message(text="".join(words))
    for stage in stages[1:-1]:
        assert await stage.as_observable().pipe(ops.to_list()) == words
    for word, next_word in itertools.pairwise(words):  # the tokens stream through, one by one
        assert log.index(("end", word)) < log.index(("produced", next_word))


async def test_subscribing_after_completion_replays_everything() -> None:
    async def total(pieces: tuple[int, ...]) -> int:
        return sum(pieces)

    async def numbers() -> AsyncIterator[int]:
        for number in (1, 2, 3):
            await asyncio.sleep(0)
            yield number

    streamed: StreamedPromise[int, int] = StreamedPromise(numbers(), resolver=total)
    message = MessagePromise.from_async_iterable(produce("a", "b"))
    sequence = MessageSequencePromise.from_observable(reactivex.from_iterable(["x", "y"]))
    assert await streamed == 6
    await message
    await sequence

    late_numbers, late_tokens, late_messages = Recorder(), Recorder(), Recorder()
    streamed.as_observable().subscribe(late_numbers)
    message.as_observable().subscribe(late_tokens)
    sequence.as_observable().pipe(ops.map(message_text)).subscribe(late_messages)

    # replayed synchronously, at subscription
    assert late_numbers.events == [("next", 1), ("next", 2), ("next", 3), ("completed",)]
    assert late_tokens.events == [("next", "a"), ("next", "b"), ("completed",)]
    assert late_messages.events == [("next", "x"), ("next", "y"), ("completed",)]
    assert await streamed.as_observable().pipe(ops.to_list()) == [1, 2, 3]


async def test_the_observable_of_a_promise_emits_one_item_then_completes() -> None:
    calls = 0

    async def answer() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return 42

    promise = Promise(answer)
    early, late = Recorder(), Recorder()
    promise.as_observable().subscribe(early)
    assert early.events == []  # the resolver runs in a task

    assert await promise == 42
    promise.as_observable().subscribe(late)

    assert early.events == [("next", 42), ("completed",)]
    assert late.events == [("next", 42), ("completed",)]
    assert await promise.as_observable().pipe(ops.to_list()) == [42]
    assert calls == 1
    prefilled = Recorder()
    Promise(prefill="ready").as_observable().subscribe(prefilled)
    assert prefilled.events == [("next", "ready"), ("completed",)]


async def test_the_observable_of_a_failing_promise_emits_only_the_error() -> None:
    async def fail() -> int:
        raise LookupError("no such answer")

    promise = Promise(fail)
    recorder = Recorder()
    promise.as_observable().subscribe(recorder)

    with pytest.raises(LookupError, match="no such answer"):
        await promise

    assert recorder.events == [("error", LookupError, "no such answer")]


async def test_an_observer_that_raises_is_unsubscribed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    promise = MessagePromise.from_async_iterable(produce("a", "b", "c", "d"))
    seen_by_broken: list[str] = []
    bug = RuntimeError("observer bug")

    def broken(token: str) -> None:
        seen_by_broken.append(token)
        if token == "b":
            raise bug

    healthy = Recorder()
    promise.as_observable().subscribe(broken)
    promise.as_observable().subscribe(healthy)

    tokens = await collect(promise)

    assert seen_by_broken == ["a", "b"]
    assert tokens == ["a", "b", "c", "d"]
    assert healthy.events == [
        ("next", "a"),
        ("next", "b"),
        ("next", "c"),
        ("next", "d"),
        ("completed",),
    ]
    assert await promise == Message(text="abcd")
    [record] = miniagents_errors(caplog)
    assert record.getMessage() == (
        "An observer of a MiniAgents stream raised an error and was unsubscribed; "
        "the stream goes on for its other consumers."
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is bug
    caplog.clear()


async def test_an_observer_that_raises_during_the_replay_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    promise = MessagePromise.from_async_iterable(produce("a", "b", "c"))
    await promise
    seen_by_broken: list[str] = []

    def broken(token: str) -> None:
        seen_by_broken.append(token)
        raise RuntimeError(f"cannot take {token}")

    promise.as_observable().subscribe(broken)  # does not raise
    after = await promise.as_observable().pipe(ops.to_list())

    assert seen_by_broken == ["a"]
    assert after == ["a", "b", "c"]
    [record] = miniagents_errors(caplog)
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "cannot take a"
    caplog.clear()


async def test_tokens_pushed_from_another_thread_reach_an_async_consumer_in_order() -> None:
    tokens = [f"t{index}" for index in range(200)]
    subject: Subject[str] = Subject()
    promise = MessagePromise.from_observable(subject)
    promise.start()  # subscribe now: the subject is hot
    recorder = Recorder()
    promise.as_observable().subscribe(recorder)
    stop = threading.Event()

    def push() -> None:
        for token in tokens:
            if stop.is_set():  # (the collection failed: the rest is not wanted)
                return
            subject.on_next(token)
        subject.on_completed()

    thread = threading.Thread(target=push)
    thread.start()
    try:
        received = await asyncio.wait_for(collect(promise), timeout=HANG_GUARD)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)  # (the loop runs on meanwhile, never blocked)

    assert received == tokens
    assert recorder.events == [*(("next", token) for token in tokens), ("completed",)]
    assert recorder.threads == {threading.get_ident()}  # observers are called on the loop
    assert await promise == Message(text="".join(tokens))


async def test_messages_pushed_from_an_executor_reach_an_async_consumer_in_order() -> None:
    texts = [f"message {index}" for index in range(50)]
    subject: Subject[MessageType] = Subject()
    sequence = MessageSequencePromise.from_observable(subject)
    sequence.start()

    def push() -> None:
        for index, text in enumerate(texts):
            subject.on_next(text if index % 2 else [Message(text=text)])
        subject.on_completed()

    consumer = asyncio.ensure_future(collect(sequence))
    await asyncio.get_running_loop().run_in_executor(None, push)
    promises = await asyncio.wait_for(consumer, timeout=HANG_GUARD)

    assert [str(promise) for promise in promises] == texts
    assert [message.text for message in await sequence] == texts


async def test_a_sequence_fed_from_a_thread_wakes_its_reader_at_each_message() -> None:
    # the thread pushes a message only once the reader on the loop has read the one before
    # it: the messages hop onto the loop one by one, not all at the source's end
    subject: Subject[MessageType] = Subject()
    sequence = MessageSequencePromise.from_observable(subject)
    sequence.start()
    recorder = Recorder()
    sequence.as_observable().subscribe(recorder)
    read = [threading.Event() for _ in range(3)]
    late: list[int] = []

    def push() -> None:
        for index, event in enumerate(read):
            subject.on_next(f"message {index}")
            if not event.wait(timeout=HANG_GUARD):
                late.append(index)
        subject.on_completed()

    thread = threading.Thread(target=push)
    thread.start()
    texts = []
    try:
        async for promise in sequence:
            texts.append(str(await promise))
            read[len(texts) - 1].set()
    finally:
        await asyncio.to_thread(thread.join)

    assert late == []
    assert texts == ["message 0", "message 1", "message 2"]
    assert recorder.threads == {threading.get_ident()}  # observers are called on the loop


# -- re-entrancy, misbehaving observers at the end, synchronous sources ---------------------


def test_every_subscriber_sees_the_pieces_in_the_order_of_the_record() -> None:
    subject: Subject[str] = Subject()
    promise = MessagePromise.from_observable(subject)
    echoing: list[str] = []
    other: list[str] = []

    def echo(token: str) -> None:
        echoing.append(token)
        if token == "ping":
            subject.on_next("pong")  # a feedback loop: the source emits again at once

    promise.as_observable().subscribe(echo)
    promise.as_observable().subscribe(other.append)
    subject.on_next("ping")
    subject.on_completed()
    late: list[str] = []
    promise.as_observable().subscribe(late.append)

    assert echoing == ["ping", "pong"]
    assert other == ["ping", "pong"]
    assert late == ["ping", "pong"]


async def test_an_observer_whose_on_completed_raises_is_logged_before_and_after_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_end() -> None:
        raise RuntimeError("broken on_completed")

    live = MessagePromise.from_async_iterable(produce("a"))
    live_recorder = Recorder()
    live.as_observable().subscribe(on_completed=broken_end)
    live.as_observable().subscribe(live_recorder)
    await live
    finished = MessagePromise(prefill_message=Message(text="a"))
    finished.as_observable().subscribe(on_completed=broken_end)  # does not raise here

    assert live_recorder.events == [("next", "a"), ("completed",)]
    logged = miniagents_errors(caplog)
    assert len(logged) == 2
    for record in logged:
        assert record.exc_info is not None
        assert str(record.exc_info[1]) == "broken on_completed"
    caplog.clear()


@pytest.mark.parametrize(
    ("make", "text"),
    [
        pytest.param(
            lambda: MessagePromise.from_observable(reactivex.of("a", "b")), "ab", id="message"
        ),
        pytest.param(
            lambda: MessageSequencePromise.from_observable(reactivex.of("a", ["b"])),
            "a\n\nb",
            id="sequence",
        ),
    ],
)
async def test_awaiting_a_stream_of_a_synchronous_observable_completes(
    make: Callable[[], MessagePromise | MessageSequencePromise], text: str
) -> None:
    stream = make()

    resolved = await asyncio.wait_for(stream.aresolve(), timeout=HANG_GUARD)

    assert str(resolved) == text
    assert stream.done
