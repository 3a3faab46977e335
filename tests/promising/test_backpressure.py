"""Backpressure: pulled producers stay within the high-water mark of their slowest consumer.

Every test counts pulls against consumption. Between two reads the consumer yields to the
event loop many times (``settle``), which gives a producer every chance to run ahead: the
counts show where it stopped. No test depends on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.errors import ReplayWindowError, StreamOverflowError
from miniagents.messages import MessageSequencePromise
from miniagents.promising import StreamedPromise
from miniagents.promising.limits import Overflow, StreamLimits, stream_limits
from miniagents.promising.lowlevel import core_of, read_on_demand

HWM = 4


@contextmanager
def limits(window: int | None = None, high_water: int | None = HWM) -> Iterator[None]:
    token = stream_limits.set(StreamLimits(window, high_water))
    try:
        yield
    finally:
        stream_limits.reset(token)


async def settle() -> None:
    """Let every other task run as far as it can (a producer that may run, runs)."""
    for _ in range(50):
        await asyncio.sleep(0)


class Counter:
    """An async generator's pulls, counted."""

    def __init__(self, n: int, make: type[str] | type[Message] = str) -> None:
        self.n = n
        self.pulled = 0
        self.make = make

    async def items(self) -> AsyncIterator[str | Message]:
        for index in range(self.n):
            self.pulled += 1
            yield self.make(f"m{index}") if self.make is str else Message(text=f"m{index}")


async def total(pieces: tuple[object, ...]) -> int:
    return len(pieces)


async def test_a_generator_is_pulled_no_further_than_the_mark_ahead_of_a_slow_consumer() -> None:
    counter = Counter(100)
    with limits():
        stream = StreamedPromise(counter.items(), resolver=total)
        consumed = 0
        async for _piece in stream:
            consumed += 1
            await settle()
            assert counter.pulled - consumed <= HWM
        assert consumed == counter.pulled == 100


async def test_with_no_consumer_a_started_stream_pulls_up_to_the_mark() -> None:
    counter = Counter(100)
    with limits():
        stream = StreamedPromise(counter.items(), resolver=total)
        stream.start()
        await settle()
        assert counter.pulled == HWM
        assert await stream == 100  # an await of the whole reads at once: no more pressure


@pytest.mark.parametrize("prefilled", [0, 1, HWM - 1, HWM, HWM + 2])
async def test_pieces_known_from_the_start_count_in_the_mark(prefilled: int) -> None:
    # A new stream starts with the room its first check would find: the mark, less what
    # it holds already (a producer that would start with more runs further ahead).
    counter = Counter(100)
    with limits():
        stream = StreamedPromise(
            counter.items(), resolver=total, prefill_pieces=[f"p{i}" for i in range(prefilled)]
        )
        stream.start()
        await settle()
        assert counter.pulled == max(0, HWM - prefilled)
        assert len([piece async for piece in stream]) == prefilled + 100


async def test_the_slowest_of_two_iterators_paces_the_producer() -> None:
    counter = Counter(40)
    with limits():
        stream = StreamedPromise(counter.items(), resolver=total)
        slow = aiter(stream)
        fast: list[object] = []

        async def read_fast() -> None:
            fast.extend([piece async for piece in stream])

        reader = asyncio.ensure_future(read_fast())
        await settle()
        assert counter.pulled == HWM  # the slow one has read nothing
        for consumed in range(1, 41):
            await anext(slow)
            await settle()
            assert counter.pulled - consumed <= HWM
        await reader
        assert len(fast) == 40


async def test_a_nested_async_part_of_a_sequence_is_paced_too() -> None:
    counter = Counter(60)
    with limits():
        sequence = MessageSequencePromise(["first", [counter.items()], "last"])
        seen = []
        async for promise in sequence:
            seen.append(str(promise))
            await settle()
            assert counter.pulled - (len(seen) - 1) <= HWM + 1
        assert seen == ["first", *(f"m{index}" for index in range(60)), "last"]


@miniagent
async def upper(ctx: InteractionContext) -> None:
    async for promise in ctx.message_promises:
        ctx.reply(str(await promise).upper())


@miniagent
async def forward(ctx: InteractionContext) -> None:
    ctx.reply(ctx.message_promises)


async def test_an_agent_whose_replies_are_not_read_waits_at_its_next_input_pull() -> None:
    counter = Counter(100)
    async with MiniAgents(high_water_mark=HWM):
        reply = upper.inquire(counter.items())
        await settle()
        # the agent replied HWM messages and waits before taking the next input
        assert counter.pulled <= 2 * HWM + 1
        consumed = 0
        async for promise in reply:
            consumed += 1
            assert str(promise) == f"M{consumed - 1}"
            await settle()
            assert counter.pulled - consumed <= 2 * HWM + 2
        assert consumed == 100


async def test_pressure_goes_upstream_through_a_chain_of_agents() -> None:
    counter = Counter(200)
    async with MiniAgents(high_water_mark=HWM):
        stage = upper.inquire(counter.items())
        for _ in range(3):
            stage = forward.inquire(upper.inquire(stage))
        consumed = 0
        async for _promise in stage:
            consumed += 1
            await settle()
            # each stage may hold up to about a mark: the whole chain stays bounded
            assert counter.pulled - consumed <= 8 * (HWM + 1)
        assert consumed == 200


async def test_pressure_goes_upstream_through_piped_operators() -> None:
    counter = Counter(200, Message)
    async with MiniAgents(high_water_mark=HWM):
        source = MessageSequencePromise(counter.items()).as_message_observable()
        piped = source.pipe(upper.as_operator(), upper.as_operator())
        stage = MessageSequencePromise.from_observable(piped)
        consumed = 0
        async for promise in stage:
            consumed += 1
            assert str(promise) == f"M{consumed - 1}"
            await settle()
            assert counter.pulled - consumed <= 3 * (HWM + 1)
        assert consumed == 200


async def test_awaiting_the_whole_reply_reads_it_all_at_once() -> None:
    counter = Counter(300)
    async with MiniAgents(high_water_mark=HWM):
        replies = await upper.inquire(counter.items())
        assert len(replies) == 300


async def test_areply_waits_for_room_and_reply_never_waits() -> None:
    replied: list[int] = []

    @miniagent
    async def producer(ctx: InteractionContext, patient: bool) -> None:
        for index in range(50):
            replied.append(index)
            if patient:
                await ctx.areply(f"r{index}")
            else:
                ctx.reply(f"r{index}")

    async with MiniAgents(high_water_mark=HWM):
        impatient = producer.inquire(patient=False)
        await settle()
        assert len(replied) == 50  # plain reply never blocks
        replied.clear()
        patient = producer.inquire(patient=True)
        await settle()
        assert len(replied) == HWM
        consumed = 0
        async for _promise in patient:
            consumed += 1
            await settle()
            assert len(replied) - consumed <= HWM
        assert len(await impatient) == 50


async def test_replies_nobody_reads_stop_pressing_when_the_context_exits() -> None:
    counter = Counter(100)
    async with MiniAgents(high_water_mark=HWM):
        reply = upper.inquire(counter.items())
        await settle()
        assert counter.pulled < 100
    assert counter.pulled == 100  # the exit let the agent finish
    assert [str(message) for message in await reply][-1] == "M99"  # nothing was lost


@pytest.mark.usefixtures("lazy_and_eager_tasks")
async def test_replies_nobody_can_read_stop_pressing_at_once() -> None:
    # eager tasks: the agent waited for room before its replies were dropped, and was never
    # woken
    done = asyncio.Event()

    @miniagent
    async def busy(ctx: InteractionContext) -> None:
        async for promise in ctx.message_promises:
            ctx.reply(await promise)
        done.set()

    async with MiniAgents(high_water_mark=HWM):
        busy.inquire([f"m{index}" for index in range(100)])  # the reply is dropped
        await asyncio.wait_for(done.wait(), 5)


async def test_replies_dropped_while_their_agent_waits_for_room_stop_pressing() -> None:
    # The agent waits for room before its replies are dropped: the drop must wake it (it
    # once stayed blocked until the context's exit, as nobody had started the replies' core).
    replied = 0
    done = asyncio.Event()

    @miniagent
    async def busy(ctx: InteractionContext) -> None:
        nonlocal replied
        async for promise in ctx.message_promises:
            ctx.reply(await promise)
            replied += 1
        done.set()

    async with MiniAgents(high_water_mark=HWM):
        reply = busy.inquire([f"m{index}" for index in range(100)])
        await settle()
        assert replied == HWM  # it waits for room now
        del reply  # nobody can read the replies any more
        await asyncio.wait_for(done.wait(), 5)
        assert replied == 100


async def hot_items(policy: Overflow) -> tuple[list[str], BaseException | None]:
    """Push 10 items into a stream while its one consumer reads one item per 3 pushed."""
    subject: Subject[str] = Subject()
    with limits(high_water=2):
        sequence = MessageSequencePromise.from_observable(subject, overflow=policy)
    sequence.start()  # a hot source: listen before it emits
    read: list[str] = []
    reader = aiter(sequence)
    error: BaseException | None = None
    for index in range(10):
        subject.on_next(f"h{index}")
        if index % 3 == 2:
            try:
                read.append(str(await anext(reader)))
            except StreamOverflowError as overflow:
                error = overflow
                break
    subject.on_completed()
    if error is None:
        try:
            read.extend([str(promise) async for promise in reader])
        except StreamOverflowError as overflow:
            error = overflow
    return read, error


async def test_a_hot_source_is_buffered_by_default() -> None:
    read, error = await hot_items("buffer")
    assert read == [f"h{index}" for index in range(10)]
    assert error is None


async def test_a_hot_source_may_drop_the_newest_pieces() -> None:
    read, error = await hot_items("drop_newest")
    assert read == ["h0", "h1", "h3", "h6", "h9"]  # room for 2: each later 3 keep 1
    assert error is None


async def test_a_hot_source_may_drop_the_oldest_unread_pieces() -> None:
    read, error = await hot_items("drop_oldest")
    assert read == ["h1", "h4", "h7", "h8", "h9"]  # the reader skips what it fell behind on
    assert error is None


async def test_drop_oldest_past_the_window_before_any_reader_starts_it_at_the_oldest_kept() -> None:
    # a hot source that outruns the window before its first reader comes (as one piped into
    # map_agent, read by a task that starts later): the reader starts where the slowest one
    # would be, not with a ReplayWindowError for the pieces the policy dropped
    subject: Subject[str] = Subject()
    with limits(window=10, high_water=2):
        sequence = MessageSequencePromise.from_observable(subject, overflow="drop_oldest")
    sequence.start()
    for index in range(30):
        subject.on_next(f"h{index}")
    subject.on_completed()
    assert [str(promise) async for promise in sequence] == ["h28", "h29"]


@pytest.mark.parametrize("window", [1024, None])
async def test_drop_oldest_before_any_reader_keeps_only_the_newest_pieces_from_the_start(
    window: int | None,
) -> None:
    # it kept every piece until the replay window was passed (or for ever, with none): 500
    # pushes before the first reader were all read, not the newest 8
    subject: Subject[str] = Subject()
    with limits(window=window, high_water=8):
        sequence = MessageSequencePromise.from_observable(subject, overflow="drop_oldest")
    sequence.start()
    core = core_of(sequence)
    most = 0
    for index in range(20_000):
        subject.on_next(f"h{index}")
        most = max(most, len(core.pieces))
    assert most <= 8 + 64  # the newest pieces, and a batch at most before they are dropped
    subject.on_completed()
    with pytest.raises(ReplayWindowError, match="'drop_oldest' dropped the first 19992 pieces"):
        await sequence  # the whole is gone: it says what dropped it
    assert [str(promise) async for promise in sequence] == [f"h{n}" for n in range(19_992, 20_000)]

    subject = Subject()
    with limits(window=window, high_water=8):
        sequence = MessageSequencePromise.from_observable(subject, overflow="drop_oldest")
    sequence.start()
    for index in range(500):
        subject.on_next(f"h{index}")
    subject.on_completed()
    assert [str(promise) async for promise in sequence] == [f"h{n}" for n in range(492, 500)]


async def test_a_hot_source_may_fail_the_stream() -> None:
    read, error = await hot_items("error")
    assert read == ["h0", "h1"]
    assert isinstance(error, StreamOverflowError)
    assert "overflow" in str(error)


async def test_a_cold_observable_into_an_agent_is_buffered_and_read_whole() -> None:
    async with MiniAgents(high_water_mark=HWM):
        source = reactivex.from_iterable([Message(text=f"m{index}") for index in range(50)])
        replies = await source.pipe(upper.as_operator(), upper.as_operator(), ops.to_list())
        assert [reply.text for reply in replies] == [f"M{index}" for index in range(50)]


@pytest.mark.parametrize("high_water", [1, 2, 64])
async def test_every_message_arrives_in_order_whatever_the_mark(high_water: int) -> None:
    counter = Counter(150)
    async with MiniAgents(high_water_mark=high_water, replay_window=10):
        stage = forward.inquire(upper.inquire(upper.inquire(counter.items())))
        assert [str(promise) async for promise in stage] == [f"M{i}" for i in range(150)]


async def test_an_error_reaches_the_consumer_at_its_position_through_a_paced_chain() -> None:
    class Broken(Exception):
        """The source fails after its messages."""

    async def failing() -> AsyncIterator[str]:
        for index in range(100):
            yield f"m{index}"
        raise Broken("the source broke")

    async with MiniAgents(high_water_mark=HWM, replay_window=10):
        stage = forward.inquire(upper.inquire(upper.inquire(failing())))
        seen: list[str] = []

        async def read() -> None:
            async for promise in stage:
                seen.append(str(promise))

        with pytest.raises(Broken, match="the source broke"):
            await read()
        assert seen == [f"M{index}" for index in range(100)]


# -- reading on demand (lowlevel.read_on_demand) -------------------------------------------


@pytest.mark.parametrize("high_water", [1, HWM, None])
async def test_an_iterator_reading_on_demand_pulls_only_what_it_asked_for(
    high_water: int | None,
) -> None:
    counter = Counter(20)
    with limits(high_water=high_water):
        stream = StreamedPromise(counter.items(), resolver=total)
        iterator = aiter(stream)
        for consumed in range(1, 6):
            read_on_demand(iterator, consumed)
            assert await anext(iterator) == f"m{consumed - 1}"
            await settle()
            assert counter.pulled == consumed  # not the high-water mark ahead
        read_on_demand(iterator, 8)  # three more, made without being read
        await settle()
        assert counter.pulled == (8 if high_water is None else min(8, 5 + high_water))
        read_on_demand(iterator, 21)  # one past the last: its end is asked for too
        assert [piece async for piece in iterator] == [f"m{n}" for n in range(5, 20)]


async def test_reading_on_demand_leaves_a_hot_sources_overflow_to_the_mark() -> None:
    subject: Subject[str] = Subject()
    with limits():
        stream: StreamedPromise[str, int] = StreamedPromise(
            subject, resolver=total, overflow="error"
        )
        iterator = aiter(stream)
        read_on_demand(iterator, 1)
        stream.start()
        for index in range(HWM):  # up to the mark: kept, though only one was asked for
            subject.on_next(f"h{index}")
        subject.on_completed()
        read_on_demand(iterator, HWM)
        assert [piece async for piece in iterator] == [f"h{index}" for index in range(HWM)]


async def test_a_blocked_producer_resumes_when_its_slowest_consumer_is_below_low_water() -> None:
    # the high-water mark 8 blocks the producer 8 pieces ahead; it resumes once the slowest
    # consumer is fewer than the low-water mark (4) behind, not a read later (the reads
    # that cannot make room skip their recheck: they must not skip the one that can)
    counter = Counter(60)
    with limits(high_water=8):
        stream = StreamedPromise(counter.items(), resolver=total)
        slow, fast = aiter(stream), aiter(stream)
        lags: list[int] = []
        read_fast = 0
        for consumed in range(1, 41):
            while read_fast < counter.pulled:  # all there is: these reads make no room
                await anext(fast)
                read_fast += 1
            await anext(slow)
            await settle()
            lags.append(counter.pulled - consumed)
        assert lags[:12] == [7, 6, 5, 4, 8, 7, 6, 5, 4, 8, 7, 6]
        assert all(4 <= lag <= 8 for lag in lags[:20])
