"""StreamedPromise and MessagePromise: replay, one producer, errors at their position."""

from __future__ import annotations

import asyncio
import copy
import inspect
import pickle
from collections.abc import AsyncIterator
from typing import Any

import pydantic
import pytest
from reactivex.subject import Subject

from miniagents import Message, MessagePromise, MessageSequencePromise, Promise, StreamedPromise
from miniagents.errors import (
    IncompleteStreamError,
    MiniAgentsError,
    NoRunningLoopError,
    StreamArgumentError,
    StreamCancelledError,
    StreamPicklingError,
    StreamSourceError,
)
from miniagents.messages import MessageTokenAppender
from miniagents.messages.sequence import MessageType
from miniagents.promising.lowlevel import ReplayObservable, core_of, running_tasks
from miniagents.testing import VirtualClock


class Boom(Exception):
    """A producer error with its own type."""


class Producer:
    """An async token producer that counts how often it is started."""

    def __init__(
        self, tokens: list[str], delay: float = 0.0, fail_after: int | None = None
    ) -> None:
        self.tokens = tokens
        self.delay = delay
        self.fail_after = fail_after
        self.starts = 0
        self.closed = False

    async def __call__(self) -> AsyncIterator[str]:
        self.starts += 1
        try:
            for index, token in enumerate(self.tokens):
                if index == self.fail_after:
                    raise Boom(f"failed after {index} tokens")
                yield token
                await asyncio.sleep(self.delay)
            if self.fail_after == len(self.tokens):
                raise Boom("failed at the end")
        finally:
            self.closed = True


async def collect_tokens(promise: MessagePromise) -> list[str]:
    return [token async for token in promise]


async def collect_until_error(promise: MessagePromise) -> tuple[list[str], BaseException | None]:
    seen: list[str] = []
    try:
        async for token in promise:
            seen.append(token)
    except Boom as error:
        return seen, error
    return seen, None


async def join(pieces: tuple[str, ...]) -> str:
    return "".join(pieces)


async def test_concurrent_consumers_see_every_token_and_the_producer_runs_once(
    virtual_clock: VirtualClock,
) -> None:
    producer = Producer(["a", "b", "c", "d"], delay=0.001)
    promise = MessagePromise.from_async_iterable(producer(), role="assistant")
    results = await asyncio.gather(*(collect_tokens(promise) for _ in range(5)))
    assert results == [["a", "b", "c", "d"]] * 5
    assert producer.starts == 1
    assert await promise == Message(text="abcd", role="assistant")


async def test_a_late_consumer_gets_the_replay_from_the_first_token(
    virtual_clock: VirtualClock,
) -> None:
    producer = Producer(["x", "y", "z"], delay=0.001)
    promise = MessagePromise.from_async_iterable(producer())
    iterator = aiter(promise)
    assert await anext(iterator) == "x"
    assert await anext(iterator) == "y"
    late = await collect_tokens(promise)  # starts after two tokens were streamed
    assert late == ["x", "y", "z"]
    after_the_end = await collect_tokens(promise)
    assert after_the_end == ["x", "y", "z"]
    assert producer.starts == 1


async def test_the_first_token_arrives_before_the_stream_ends() -> None:
    release = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        yield "first"
        await release.wait()
        yield "second"

    promise = MessagePromise.from_async_iterable(tokens())
    iterator = aiter(promise)
    assert await asyncio.wait_for(anext(iterator), timeout=1) == "first"
    assert not promise.done
    release.set()
    assert await anext(iterator) == "second"
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)


@pytest.mark.parametrize("fail_after", [0, 2, 4])
async def test_an_error_reaches_every_consumer_after_the_tokens_before_it(
    virtual_clock: VirtualClock, fail_after: int
) -> None:
    producer = Producer(["a", "b", "c", "d"], delay=0.001, fail_after=fail_after)
    promise = MessagePromise.from_async_iterable(producer())
    early, concurrent = await asyncio.gather(
        collect_until_error(promise), collect_until_error(promise)
    )
    late = await collect_until_error(promise)
    expected = ["a", "b", "c", "d"][:fail_after]
    for seen, error in (early, concurrent, late):
        assert seen == expected
        assert type(error) is Boom
    with pytest.raises(Boom, match="failed"):
        await promise
    assert producer.closed


async def test_awaiting_a_failed_stream_raises_the_same_error_each_time() -> None:
    producer = Producer(["a"], fail_after=1)
    promise = MessagePromise.from_async_iterable(producer())
    errors = []
    for _ in range(3):
        with pytest.raises(Boom) as caught:
            await promise
        errors.append(caught.value)
    assert errors[0] is errors[1] is errors[2]


async def test_the_resolved_message_is_built_once_and_shared() -> None:
    promise = MessagePromise.from_async_iterable(Producer(["to", "ken"])(), model="m1")
    first, second = await asyncio.gather(promise, promise)
    assert first is second
    assert first.text == "token"
    assert first.model_extra == {"model": "m1"}
    assert promise.metadata == {"model": "m1"}


async def test_metadata_is_known_before_the_text_and_frozen() -> None:
    release = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        await release.wait()
        yield "done"

    promise = MessagePromise.from_async_iterable(tokens(), role="assistant", tags=["a"])
    assert promise.metadata == {"role": "assistant", "tags": ("a",)}
    release.set()
    message = await promise
    assert message.model_extra == {"role": "assistant", "tags": ("a",)}


async def test_a_custom_message_class_is_used_for_the_resolved_message() -> None:
    class Reply(Message):
        model: str

    promise = MessagePromise.from_async_iterable(
        Producer(["hi"])(), message_class=Reply, model="m2"
    )
    message = await promise
    assert isinstance(message, Reply)
    assert message.model == "m2"
    assert promise.message_class is Reply


async def test_a_prefilled_message_resolves_to_itself_without_a_task() -> None:
    message = Message(text="ready", role="user")
    promise = MessagePromise(prefill_message=message)
    assert promise.done
    assert not running_tasks()
    assert await collect_tokens(promise) == ["ready"]
    assert await promise is message
    assert str(promise) == "ready"
    assert promise.metadata == {"role": "user"}


async def test_a_prefilled_message_without_text_streams_no_token() -> None:
    promise = MessagePromise(prefill_message=Message(kind="ping"))
    assert await collect_tokens(promise) == []
    assert (await promise).text is None


async def test_str_of_a_streaming_message_is_a_clear_error() -> None:
    release = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        yield "a"
        await release.wait()

    promise = MessagePromise.from_async_iterable(tokens())
    assert await anext(aiter(promise)) == "a"  # streaming, and waiting for more
    with pytest.raises(IncompleteStreamError, match="Await it first"):
        str(promise)
    release.set()
    await promise
    assert str(promise) == "a"


async def test_a_non_str_token_ends_the_stream_with_a_type_error() -> None:
    async def tokens() -> AsyncIterator[object]:
        yield "ok"
        yield 42

    promise = MessagePromise.from_async_iterable(tokens())  # type: ignore[arg-type]
    seen: list[str] = []
    iterator = aiter(promise)
    seen.append(await anext(iterator))
    with pytest.raises(TypeError, match=r"must be a str.*int"):
        await anext(iterator)
    assert seen == ["ok"]


async def test_text_in_metadata_is_rejected() -> None:
    with pytest.raises(TypeError, match="remove the text= keyword"):
        MessagePromise.from_async_iterable(Producer([])(), text="nope")


def test_a_message_class_that_is_no_message_class_is_rejected() -> None:
    class Row(pydantic.BaseModel):
        text: str | None = None

    with pytest.raises(TypeError, match="message_class must be Message or a subclass"):
        MessagePromise.from_async_iterable(Producer([])(), message_class=Row)  # type: ignore[type-var]


def test_bad_constructor_calls_are_clear_errors() -> None:
    with pytest.raises(TypeError, match="needs a token source"):
        MessagePromise()  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="takes no token source"):
        MessagePromise(Producer(["a"])(), prefill_message=Message(text="x"))  # type: ignore[call-overload]


def test_a_promise_given_a_coroutine_for_its_resolver_refuses_it_and_closes_it() -> None:
    async def fetch() -> int:
        return 42

    coroutine = fetch()
    with pytest.raises(
        StreamArgumentError, match=r"Promise\(fetch\) rather than Promise\(fetch\(\)\)"
    ):
        Promise(coroutine)  # type: ignore[call-overload]
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # no "never awaited"
    with pytest.raises(StreamArgumentError, match="not an int"):
        Promise(42)  # type: ignore[call-overload]


async def test_a_promise_whose_resolver_gives_no_awaitable_fails_with_one_of_our_errors() -> None:
    # `Promise(lambda: 5)`: callable, so taken at once; on main, awaiting it was a bare
    # TypeError ("object int can't be used in 'await' expression")
    def sync_value() -> int:
        return 5

    for resolver in (sync_value, lambda: 5):
        with pytest.raises(StreamArgumentError) as raised:
            await Promise(resolver)  # type: ignore[arg-type]
        assert str(raised.value) == (
            "The resolver of a Promise must return an awaitable (the promise awaits it), but "
            "it returned int: make it an `async def` function, or use Promise(prefill=value) "
            "for a ready value."
        )

    async def failing() -> int:
        raise TypeError("the resolver's own")

    with pytest.raises(TypeError, match="the resolver's own") as own:
        await Promise(failing)
    assert not isinstance(own.value, MiniAgentsError)  # (its own errors pass as they are)


async def test_a_streamed_promise_whose_resolver_gives_no_awaitable_fails_naming_it() -> None:
    # on main: a bare TypeError ("object int can't be used in 'await' expression")
    plain: Any = lambda pieces: len(pieces)  # noqa: E731  # (mypy would refuse it)
    stream: StreamedPromise[str, int] = StreamedPromise(Producer(["a", "b"])(), resolver=plain)
    with pytest.raises(StreamArgumentError) as raised:
        await stream
    assert str(raised.value) == (
        "The resolver of a StreamedPromise must return an awaitable (the stream awaits it), "
        "but it returned int: make it an `async def` function of the tuple of pieces."
    )
    assert [piece async for piece in stream] == ["a", "b"]  # (the pieces stand)


def test_consuming_a_task_backed_stream_outside_asyncio_is_a_clear_error() -> None:
    promise = MessagePromise.from_async_iterable(Producer(["a"])())
    with pytest.raises(NoRunningLoopError, match=r"asyncio\.run"):
        promise.start()
    assert isinstance(NoRunningLoopError("x"), MiniAgentsError)


async def test_the_producer_starts_at_the_first_consumer_or_at_start(
    virtual_clock: VirtualClock,
) -> None:
    lazy = Producer(["a"])
    promise = MessagePromise.from_async_iterable(lazy())
    await asyncio.sleep(0.01)
    assert lazy.starts == 0
    assert await collect_tokens(promise) == ["a"]
    assert lazy.starts == 1

    eager = Producer(["b"])
    started = MessagePromise.from_async_iterable(eager())
    started.start()
    await asyncio.sleep(0.01)
    assert eager.starts == 1
    assert started.done


async def test_cancel_stops_the_producer_and_consumers_get_a_clear_error(
    virtual_clock: VirtualClock,
) -> None:
    producer = Producer([str(i) for i in range(1000)], delay=0.001)
    promise = MessagePromise.from_async_iterable(producer())
    iterator = aiter(promise)
    assert await anext(iterator) == "0"
    promise.cancel()
    await asyncio.sleep(0.01)
    assert producer.closed
    assert not running_tasks()
    with pytest.raises(StreamCancelledError):
        async for _ in iterator:
            pass
    with pytest.raises(StreamCancelledError):
        await promise


async def test_a_cancelled_consumer_does_not_disturb_the_others(
    virtual_clock: VirtualClock,
) -> None:
    producer = Producer(["a", "b", "c"], delay=0.01)
    promise = MessagePromise.from_async_iterable(producer())
    impatient = asyncio.create_task(collect_tokens(promise))
    patient = asyncio.create_task(collect_tokens(promise))
    await asyncio.sleep(0.005)
    impatient.cancel()
    assert await patient == ["a", "b", "c"]
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def forever() -> None:
    await asyncio.Event().wait()


async def test_a_consumer_cancelled_while_another_is_woken_leaves_the_other_reading() -> None:
    # The interleaving seen once under load: a piece wakes both consumers, and the first
    # one's cancellation runs before the second one's turn. The second one, woken, not
    # waiting any more, must still count: the stream goes on for it (it once got
    # StreamCancelledError, even when cancelled itself later instead of CancelledError).
    appender = MessageTokenAppender()
    producer = asyncio.create_task(forever())
    appender.cancel_when_abandoned(producer)  # giving up cancels the producer and the stream
    cancelled = asyncio.create_task(collect_tokens(appender.promise))
    reading = asyncio.create_task(collect_tokens(appender.promise))
    await asyncio.sleep(0)  # one turn each: both wait for the first token
    appender.append("a")  # both are woken: their turns are queued, in this order
    cancelled.cancel()  # its turn comes first, and raises CancelledError in it
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not reading.done()
    assert not producer.done()  # the stream was not given up: one consumer is left
    appender.append("b")
    appender.complete()
    assert await reading == ["a", "b"]
    producer.cancel()


async def test_two_consumers_cancelled_at_once_both_get_cancelled_error() -> None:
    appender = MessageTokenAppender()
    producer = asyncio.create_task(forever())
    appender.cancel_when_abandoned(producer)
    first = asyncio.create_task(collect_tokens(appender.promise))
    second = asyncio.create_task(collect_tokens(appender.promise))
    await asyncio.sleep(0)
    appender.append("a")  # both woken; then both cancelled before either runs
    first.cancel()
    second.cancel()
    for consumer in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await consumer
    with pytest.raises(asyncio.CancelledError):
        await producer  # the last one's giving up stops the producer
    with pytest.raises(StreamCancelledError):
        await appender.promise


async def _pieces(pieces: tuple[int, ...]) -> tuple[int, ...]:
    return pieces


async def _read_into(
    stream: StreamedPromise[int, tuple[int, ...]], got: asyncio.Queue[int]
) -> None:
    async for piece in stream:
        got.put_nowait(piece)


async def test_a_stream_over_a_hot_observable_unsubscribes_once_every_consumer_gave_up() -> None:
    # it kept its subscription for nobody, recording what the source emitted for good
    subject: Subject[int] = Subject()
    stream = StreamedPromise(subject, resolver=_pieces)
    got_first: asyncio.Queue[int] = asyncio.Queue()
    got_second: asyncio.Queue[int] = asyncio.Queue()
    first = asyncio.ensure_future(_read_into(stream, got_first))
    second = asyncio.ensure_future(_read_into(stream, got_second))
    await asyncio.sleep(0)  # (both wait for the first piece: the stream has subscribed)
    assert len(subject.observers) == 1
    subject.on_next(1)
    assert (await got_first.get(), await got_second.get()) == (1, 1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(subject.observers) == 1  # the other reader goes on
    subject.on_next(2)
    assert await got_second.get() == 2
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert not subject.observers  # the last one gave up: unsubscribed
    late: asyncio.Queue[int] = asyncio.Queue()
    with pytest.raises(StreamCancelledError):  # a later reader: the pieces, then the end
        await _read_into(stream, late)
    assert [late.get_nowait(), late.get_nowait()] == [1, 2]


async def test_a_stream_over_a_hot_observable_unsubscribes_when_its_subscriber_disposes() -> None:
    subject: Subject[int] = Subject()
    stream = StreamedPromise(subject, resolver=_pieces)
    got: list[int] = []
    subscription = stream.as_observable().subscribe(got.append)
    subject.on_next(1)
    assert got == [1]
    assert len(subject.observers) == 1
    subscription.dispose()
    assert not subject.observers
    assert stream.done


async def test_a_sequence_from_a_hot_observable_unsubscribes_once_every_consumer_gave_up() -> None:
    subject: Subject[MessageType] = Subject()
    sequence = MessageSequencePromise.from_observable(subject)
    whole = asyncio.ensure_future(sequence.aresolve_messages())
    await asyncio.sleep(0)  # (it waits: the sequence has subscribed)
    assert len(subject.observers) == 1
    whole.cancel()
    with pytest.raises(asyncio.CancelledError):
        await whole
    assert not subject.observers


async def test_leaving_a_hot_stream_with_break_keeps_it_for_a_later_reader() -> None:
    # not giving up (as with an agent's replies): the stream stays whole
    subject: Subject[int] = Subject()
    stream = StreamedPromise(subject, resolver=_pieces)
    stream.start()
    subject.on_next(1)
    async for piece in stream:
        assert piece == 1
        break
    assert len(subject.observers) == 1
    subject.on_next(2)
    subject.on_completed()
    assert await stream == (1, 2)


class Endless:
    """An endless async generator of tokens (one a virtual second) that notes its close."""

    def __init__(self) -> None:
        self.pulled = 0
        self.closed = asyncio.Event()

    async def __call__(self) -> AsyncIterator[str]:
        try:
            while True:
                yield f"t{self.pulled} "
                self.pulled += 1
                await asyncio.sleep(1)
        finally:
            self.closed.set()


async def _tokens(pieces: tuple[str, ...]) -> tuple[str, ...]:
    return pieces


def _over_async_iterable(kind: str, source: AsyncIterator[str]) -> StreamedPromise[str, Any]:
    if kind == "StreamedPromise":
        return StreamedPromise(source, resolver=_tokens)
    if kind == "MessagePromise.from_async_iterable":
        return MessagePromise.from_async_iterable(source)
    return MessagePromise(source)


OVER_ASYNC_ITERABLES = ["StreamedPromise", "MessagePromise.from_async_iterable", "MessagePromise"]


@pytest.mark.parametrize("kind", OVER_ASYNC_ITERABLES)
async def test_a_stream_over_an_async_iterable_closes_it_once_every_consumer_gave_up(
    virtual_clock: VirtualClock, kind: str
) -> None:
    # it pulled the generator on for nobody, recording its pieces for good (issue 58, item 2)
    endless = Endless()
    stream = _over_async_iterable(kind, endless())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stream.aresolve(), 2.5)
    await asyncio.wait_for(endless.closed.wait(), 10)  # (closed at once: aclose)
    pulled = endless.pulled
    await asyncio.sleep(10)
    assert endless.pulled == pulled  # pulled no more
    with pytest.raises(StreamCancelledError):  # a later reader: the pieces, then the end
        async for _ in stream:
            pass


@pytest.mark.parametrize("kind", OVER_ASYNC_ITERABLES)
async def test_a_stream_over_an_async_iterable_goes_on_while_someone_still_reads_it(
    virtual_clock: VirtualClock, kind: str
) -> None:
    endless = Endless()
    stream = _over_async_iterable(kind, endless())
    reader = aiter(stream)
    assert await anext(reader) == "t0 "
    with pytest.raises(TimeoutError):  # another consumer gives up, this one reads on
        await asyncio.wait_for(stream.aresolve(), 2.5)
    assert [await anext(reader) for _ in range(5)] == ["t1 ", "t2 ", "t3 ", "t4 ", "t5 "]
    assert not endless.closed.is_set()
    async for _ in reader:  # leaving with break is not giving up: it goes on
        break
    await asyncio.sleep(3)
    assert not endless.closed.is_set()
    stream.cancel()
    await asyncio.wait_for(endless.closed.wait(), 10)


async def test_a_generic_streamed_promise_resolves_with_its_resolver() -> None:
    async def numbers() -> AsyncIterator[int]:
        for number in range(5):
            yield number

    async def total(pieces: tuple[int, ...]) -> int:
        return sum(pieces)

    stream = StreamedPromise(numbers(), resolver=total, prefill_pieces=[100])
    assert [n async for n in stream] == [100, 0, 1, 2, 3, 4]
    assert await stream == 110


async def test_a_prefilled_generic_stream_needs_no_source() -> None:
    stream = StreamedPromise[str, str](resolver=join, prefill_pieces=["a", "b"])
    assert stream.done
    assert await stream == "ab"
    assert "complete, 2 pieces" in repr(stream)


async def test_an_unconsumed_error_is_logged_not_lost(
    virtual_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    import gc

    promise = MessagePromise.from_async_iterable(Producer(["a"], fail_after=0)())
    promise.start()
    await asyncio.sleep(0.01)
    assert promise.done
    del promise
    gc.collect()
    lost = [r for r in caplog.records if "no consumer ever received" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].exc_info is not None
    assert lost[0].exc_info[0] is Boom
    caplog.clear()


# -- sources that are not async iterables (issue 9) ------------------------------------


async def test_a_source_of_a_known_wrong_type_fails_at_construction() -> None:
    with pytest.raises(StreamSourceError, match="needs an async iterable") as raised:
        MessagePromise.from_async_iterable(["a"])  # type: ignore[call-overload]
    assert isinstance(raised.value, TypeError)
    assert isinstance(raised.value, MiniAgentsError)
    with pytest.raises(StreamSourceError, match="got a list_iterator"):
        StreamedPromise(iter([1, 2]), resolver=join)  # type: ignore[arg-type]


class BrokenAsyncIterable:
    """Claims to be an async iterable, but its __aiter__ fails."""

    def __aiter__(self) -> AsyncIterator[str]:
        raise RuntimeError("cannot iterate")


class NotAnIterator:
    """Its __aiter__ returns something without __anext__."""

    def __aiter__(self) -> object:
        return object()


@pytest.mark.parametrize("source", [BrokenAsyncIterable(), NotAnIterator()])
async def test_every_consumer_gets_a_clear_error_from_a_broken_source(source: object) -> None:
    promise = MessagePromise.from_async_iterable(source)  # type: ignore[call-overload]
    for _ in range(2):  # a first consumer, then a late one: both get it, nothing hangs
        with pytest.raises(StreamSourceError, match="is not an async iterable"):
            await asyncio.wait_for(promise.aresolve(), 5)
    with pytest.raises(StreamSourceError):
        await asyncio.wait_for(anext(aiter(promise)), 5)


class EchoStream(StreamedPromise[str, str]):
    """A stream whose class is named with a vowel (the errors put "an" before it)."""


class GivesAnInt:
    """Its __aiter__ returns an int."""

    def __aiter__(self) -> object:
        return 42


async def test_errors_put_the_right_article_before_a_class_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # on main: "The resolver of a EchoStream", "got a int", "returned a int", "of a EchoStream"
    plain: Any = lambda pieces: len(pieces)  # noqa: E731  # (mypy would refuse it)
    with pytest.raises(StreamArgumentError, match=r"^The resolver of an EchoStream must"):
        await EchoStream(Producer(["a"])(), resolver=plain)
    with pytest.raises(StreamSourceError, match=r"but got an int \(42\)"):
        EchoStream(42, resolver=join)  # type: ignore[arg-type]
    with pytest.raises(StreamSourceError, match="returned an int, which has no __anext__"):
        await EchoStream(GivesAnInt(), resolver=join)  # type: ignore[arg-type]

    async def pieces() -> AsyncIterator[str]:
        try:
            yield "a"
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("closing failed")

    stream = EchoStream(pieces(), resolver=join)
    assert await anext(aiter(stream)) == "a"
    [pump] = running_tasks()
    pump.cancel()  # given up on while it waits for its next piece
    await asyncio.gather(pump, return_exceptions=True)
    [record] = [record for record in caplog.records if record.levelname == "ERROR"]
    assert record.getMessage().startswith("The source of an EchoStream, stopped as it was")
    caplog.clear()  # (an expected error log: see conftest)


# -- lost errors (issue 9) ---------------------------------------------------------------


async def test_an_error_passed_on_to_a_stream_that_delivers_it_is_not_reported_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import gc

    from miniagents import MessageSequencePromise

    failed = MessageSequencePromise(["a", Boom("passed on")])
    outer = MessageSequencePromise(["x", failed])
    del failed
    gc.collect()  # the first stream goes before anyone reads the error from the second
    with pytest.raises(Boom):
        await outer
    gc.collect()
    assert not [r for r in caplog.records if "no consumer ever received" in r.getMessage()]


async def test_an_error_passed_on_to_a_stream_nobody_reads_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import gc

    from miniagents import MessageSequencePromise

    failed = MessageSequencePromise(["a", Boom("nobody reads it")])
    outer = MessageSequencePromise(["x", failed])
    del failed, outer
    gc.collect()
    lost = [r for r in caplog.records if "no consumer ever received" in r.getMessage()]
    assert len(lost) == 1
    caplog.clear()


def _promises() -> list[tuple[object, str]]:
    """Promises of each kind, with the public class their errors name."""

    async def fetch() -> int:
        return 1

    return [
        (MessagePromise.of_message(Message(text="ready")), "MessagePromise"),  # a light one
        (MessagePromise(prefill_message=Message(text="x")), "MessagePromise"),
        (MessageSequencePromise(["a", "b"]), "MessageSequencePromise"),
        (Promise(fetch), "Promise"),
        (Promise(prefill=2), "Promise"),
        (StreamedPromise(prefill_pieces=[1], resolver=_sum), "StreamedPromise"),
    ]


async def _sum(pieces: tuple[int, ...]) -> int:
    return sum(pieces)


def test_a_copy_of_a_promise_is_the_promise_itself_one_stream_shared() -> None:
    for promise, _ in _promises():
        assert copy.copy(promise) is promise
        held = {"replies": [promise]}
        assert copy.deepcopy(held)["replies"][0] is promise


@pytest.mark.parametrize("index", range(6))
def test_pickling_a_promise_is_refused_with_the_fix(index: int) -> None:
    promise, name = _promises()[index]
    with pytest.raises(StreamPicklingError, match=r"pickle.dumps\(await promise\)") as raised:
        pickle.dumps(promise)
    assert isinstance(raised.value, TypeError)
    assert str(raised.value).startswith(f"A {name} cannot be pickled: it is a live stream")


def test_an_observable_of_a_stream_is_one_live_face_of_it() -> None:
    stream = StreamedPromise(prefill_pieces=[1, 2], resolver=_sum)
    observable = stream.as_observable()
    assert copy.copy(observable) is observable  # (a copy was counted as no handle, yet went)
    assert copy.deepcopy({"o": observable})["o"] is observable
    with pytest.raises(StreamPicklingError, match=r"A ReplayObservable cannot be pickled"):
        pickle.dumps(observable)
    assert isinstance(observable, ReplayObservable)  # (the face of its core, as the stream)
    assert core_of(observable) is core_of(stream)


async def test_a_cancelled_view_moves_its_own_readers_and_leaves_the_others() -> None:
    gate = asyncio.Event()

    async def pieces() -> AsyncIterator[int]:
        yield 1
        yield 2
        await gate.wait()
        yield 3

    original = StreamedPromise(pieces(), resolver=_sum)
    view = StreamedPromise(original.as_observable(), resolver=_sum)
    of_view, of_original = aiter(view), aiter(original)
    assert [await anext(of_view), await anext(of_original)] == [1, 1]  # (between pieces)
    view.cancel()
    assert await anext(of_view) == 2  # the view's reader reads the copy: the pieces so far...
    with pytest.raises(StreamCancelledError) as caught:
        await anext(of_view)  # ...then its error, which says how to read on
    assert "read it through a view that was not cancelled" in str(caught.value)
    gate.set()
    assert [piece async for piece in of_original] == [2, 3]  # the other reader reads on
    assert await original == 6


async def test_a_stream_nobody_waits_on_makes_no_waits_and_no_audience() -> None:
    ready = StreamedPromise(prefill_pieces=[1, 2], resolver=_sum)
    assert await ready == 3  # (awaited once it has ended: no wait)
    message = MessagePromise.of_text("done")
    assert [token async for token in message] == ["done"]  # (an ended message's reader)
    for core in (core_of(ready), core_of(message)):
        assert (core.waits, core.audience) == (None, None)

    gate = asyncio.Event()

    async def slow() -> AsyncIterator[int]:
        await gate.wait()
        yield 1

    streaming = StreamedPromise(slow(), resolver=_sum)
    reading = asyncio.ensure_future(anext(aiter(streaming)))
    await asyncio.sleep(0)
    core = core_of(streaming)
    assert core.waits is not None  # made at its first wait
    assert core.waits.waiting == 1
    assert core.audience is not None  # and at its reader
    assert core.audience.readers is not None
    gate.set()
    assert await reading == 1
    assert core.waits.waiting == 0
