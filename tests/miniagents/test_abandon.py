"""A reply every consumer gave up on is cancelled: its agent stops, and so does what fed it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
    pipeline,
)
from miniagents.errors import ReplayWindowError, StreamCancelledError
from miniagents.ext.llm.offline import CallTool, create_offline_agent
from miniagents.operators import join_messages, resolve_messages
from miniagents.promising.lowlevel import (
    ReplayCore,
    core_of,
    running_tasks,
    set_deadlock_check_interval,
)
from miniagents.testing import VirtualClock, scripted_agent

pytestmark = pytest.mark.usefixtures("virtual_clock")  # the sleeps and timeouts: virtual


def slow_agent(events: list[str]) -> MiniAgent[[]]:
    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        events.append("started")
        try:
            ctx.reply("first")
            await asyncio.sleep(10)
            ctx.reply("never")
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    return slow


def slow_fact_agent(events: list[str]) -> MiniAgent[[]]:
    """An agent that replies "fact" after 10 s, noting "slow cancelled" if given up on."""

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        try:
            await asyncio.sleep(10)
            ctx.reply("fact")
        except asyncio.CancelledError:
            events.append("slow cancelled")
            raise

    return slow


async def test_giving_up_on_a_reply_cancels_its_agent(virtual_clock: VirtualClock) -> None:
    events: list[str] = []
    async with MiniAgents():
        reply = slow_agent(events).inquire()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0.01)
        assert events == ["started", "cancelled"]
        with pytest.raises(StreamCancelledError, match="every consumer of it gave up") as raised:
            await reply
    assert virtual_clock.elapsed == pytest.approx(0.11)  # not the agent's 10 s
    assert "asyncio.shield" in str(raised.value)  # the message names how to let it finish


async def test_a_reply_with_another_consumer_is_not_abandoned() -> None:
    events: list[str] = []
    async with MiniAgents():
        reply = slow_agent(events).inquire()
        patient = asyncio.create_task(reply.aresolve())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0.01)
        assert events == ["started"]
        patient.cancel()  # now the last consumer gives up too
        with pytest.raises(asyncio.CancelledError):
            await patient
        await asyncio.sleep(0.01)
        assert events == ["started", "cancelled"]


async def test_giving_up_propagates_through_agents_that_pass_replies_on() -> None:
    events: list[str] = []
    slow = slow_agent(events)

    @miniagent
    async def middle(ctx: InteractionContext) -> None:
        ctx.reply(["from middle", slow.inquire()])

    async with MiniAgents():
        reply = middle.inquire()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0.01)
        assert events == ["started", "cancelled"]


async def test_a_reply_read_to_its_end_is_never_cancelled() -> None:
    @miniagent
    async def quick(ctx: InteractionContext) -> None:
        ctx.reply("done")

    async with MiniAgents():
        reply = quick.inquire()
        assert str(await asyncio.wait_for(reply.aresolve(), 1)) == "done"
        assert str(await reply) == "done"


async def test_cancel_on_a_reply_cancels_its_agent_and_what_fed_it() -> None:
    events: list[str] = []
    fed: list[str] = []
    slow = slow_agent(fed)

    @miniagent
    async def relay(ctx: InteractionContext) -> None:
        events.append("relaying")
        try:
            async for message in slow.inquire():
                ctx.reply(await message)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    async with MiniAgents():
        reply = relay.inquire()
        first = await anext(aiter(reply))
        assert str(await first) == "first"
        reply.cancel()
        await asyncio.sleep(0.01)
        assert events == ["relaying", "cancelled"]
        assert fed == ["started", "cancelled"]
        with pytest.raises(StreamCancelledError):
            await reply


# -- giving up on a message an agent replied with (issue 9) --------------------------------


async def slow_tokens(events: list[str]) -> AsyncIterator[str]:
    try:
        yield "first token"
        await asyncio.sleep(10)
        yield "never"
    finally:
        events.append("tokens closed")


def streaming_agent(events: list[str]) -> MiniAgent[[]]:
    @miniagent
    async def streaming(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(slow_tokens(events)))
        try:
            await asyncio.sleep(10)  # more work after replying
        except asyncio.CancelledError:
            events.append("agent cancelled")
            raise

    return streaming


@pytest.mark.usefixtures("lazy_and_eager_tasks")
async def test_giving_up_on_a_message_of_a_plain_agent_cancels_the_agent(
    virtual_clock: VirtualClock,
) -> None:
    events: list[str] = []
    async with MiniAgents():
        message = await anext(aiter(streaming_agent(events).inquire()))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(message.aresolve(), 0.1)
    assert virtual_clock.elapsed == pytest.approx(0.1)  # the context did not wait 10 s
    assert sorted(events) == ["agent cancelled", "tokens closed"]


@pytest.mark.usefixtures("lazy_and_eager_tasks")
async def test_giving_up_on_the_whole_reply_stops_the_messages_it_replied_with() -> None:
    # eager tasks: a message replied in the agent's first step was not adopted, and nobody
    # cancelled it
    events: list[str] = []
    async with MiniAgents():
        reply = streaming_agent(events).inquire()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0)
        assert sorted(events) == ["agent cancelled", "tokens closed"]


async def test_a_message_another_consumer_reads_goes_on_when_one_gives_up() -> None:
    events: list[str] = []
    tokens: list[str] = []

    @miniagent
    async def one_message(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(slow_tokens(events)))

    async with MiniAgents():
        message = await anext(aiter(one_message.inquire()))

        async def patient() -> None:
            async for token in message:
                tokens.append(token)

        reader = asyncio.ensure_future(patient())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(message.aresolve(), 0.1)
        await asyncio.sleep(0)
        assert events == []  # the patient reader still reads it
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
    assert tokens == ["first token"]
    assert events == ["tokens closed"]


# -- giving up with other consumers, queued parts and inputs (stop 50) -----------------------


async def paced_tokens(count: int) -> AsyncIterator[str]:
    for number in range(count):
        await asyncio.sleep(1)
        yield f"t{number} "


async def preview(reply: MessageSequencePromise, seconds: float) -> None:
    """Read ``reply`` token by token for ``seconds`` (a ``TimeoutError`` then)."""
    async with asyncio.timeout(seconds):
        async for message in reply:
            async for _ in message:
                pass


async def test_a_reader_giving_up_leaves_the_reply_to_an_agent_that_reads_it_whole() -> None:
    stored: list[str] = []

    @miniagent
    async def streaming(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(paced_tokens(6)))
        await asyncio.sleep(10)  # the reply stays open while the message streams

    @miniagent
    async def keeper(ctx: InteractionContext) -> None:
        stored.append(str(await ctx.message_promises))

    async with MiniAgents():
        answer = streaming.inquire()
        keeper.inquire(answer)
        with pytest.raises(TimeoutError):
            await preview(answer, 3.5)  # the first tokens only
        assert str(await answer) == "t0 t1 t2 t3 t4 t5 "
    assert stored == ["t0 t1 t2 t3 t4 t5 "]


async def test_a_reader_giving_up_leaves_an_llm_reply_to_an_agent_that_reads_it_whole() -> None:
    llm = create_offline_agent(reply="one two three four five", token_delay=1.0)
    stored: list[str] = []

    @miniagent
    async def keeper(ctx: InteractionContext) -> None:
        stored.append(str(await ctx.message_promises))

    async with MiniAgents():
        answer = llm.inquire("Tell me something.")
        keeper.inquire(answer)
        with pytest.raises(TimeoutError):
            await preview(answer, 2.5)
        assert str(await answer).startswith("one two three four five")
    assert len(stored) == 1
    assert stored[0].startswith("one two three four five")


def fan_out(stopped: list[str]) -> MiniAgent[[]]:
    @miniagent
    async def worker(ctx: InteractionContext, n: int) -> None:
        try:
            await asyncio.sleep(100)
            ctx.reply(f"result {n}")
        except asyncio.CancelledError:
            stopped.append(f"worker {n}")
            raise

    @miniagent
    async def boss(ctx: InteractionContext) -> None:
        ctx.reply([worker.inquire(n=n) for n in range(3)])

    return boss


@pytest.mark.parametrize("how", ["cancel", "wait_for", "async for"])
async def test_giving_up_on_a_fan_out_stops_every_agent_it_waits_for(
    how: str, virtual_clock: VirtualClock
) -> None:
    stopped: list[str] = []
    async with MiniAgents():
        reply = fan_out(stopped).inquire()
        if how == "cancel":
            await asyncio.sleep(5)
            reply.cancel()
        elif how == "wait_for":
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reply.aresolve(), 5)
        else:
            with pytest.raises(TimeoutError):
                await preview(reply, 5)
    assert virtual_clock.elapsed == pytest.approx(5)  # the context did not wait 100 s
    assert sorted(stopped) == ["worker 0", "worker 1", "worker 2"]


async def test_a_fan_out_that_failed_stops_the_agents_after_the_failure(
    virtual_clock: VirtualClock,
) -> None:
    stopped: list[str] = []
    worker_of = fan_out(stopped)

    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        await asyncio.sleep(1)
        raise ValueError("no")

    @miniagent
    async def boss(ctx: InteractionContext) -> None:
        ctx.reply([failing.inquire(), worker_of.inquire()])

    async with MiniAgents():
        with pytest.raises(ValueError, match="no"):
            await boss.inquire()
    assert virtual_clock.elapsed == pytest.approx(1)
    assert sorted(stopped) == ["worker 0", "worker 1", "worker 2"]


def chain_agents(events: list[str]) -> tuple[MiniAgent[[]], MiniAgent[[]]]:
    @miniagent
    async def extract(ctx: InteractionContext) -> None:
        try:
            for number in range(10):
                await asyncio.sleep(10)
                ctx.reply(f"fact {number}")
        except asyncio.CancelledError:
            events.append("extract cancelled")
            raise

    @miniagent
    async def summarize(ctx: InteractionContext) -> None:
        try:
            async for fact in ctx.message_promises:
                await asyncio.sleep(30)
                ctx.reply(f"summary of {await fact}")
        except asyncio.CancelledError:
            events.append("summarize cancelled")
            raise

    return extract, summarize


@pytest.mark.parametrize("given", ["as it is", "in a list"])
async def test_giving_up_on_a_chain_stops_the_agent_that_feeds_its_input(
    virtual_clock: VirtualClock, given: str
) -> None:
    events: list[str] = []
    extract, summarize = chain_agents(events)
    async with MiniAgents():
        facts = extract.inquire()
        # (in a list of one, the input is a view of the reply: it keeps the reply's own
        # giving up, which cancels extract, not only its stream)
        reply = summarize.inquire(facts if given == "as it is" else [facts])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 15)
    assert virtual_clock.elapsed == pytest.approx(15)  # not extract's 100 s
    assert sorted(events) == ["extract cancelled", "summarize cancelled"]


async def test_a_chain_cancelled_before_its_agent_runs_stops_the_agent_that_feeds_it(
    virtual_clock: VirtualClock,
) -> None:
    events: list[str] = []
    extract, summarize = chain_agents(events)
    async with MiniAgents():
        facts = extract.inquire()
        await asyncio.sleep(0)  # extract runs (its first wait), summarize not yet
        summarize.inquire(facts).cancel()  # before summarize's task took its first step
    assert virtual_clock.elapsed == pytest.approx(0)  # not extract's 100 s
    assert events == ["extract cancelled"]


async def test_giving_up_stops_the_agents_in_an_input_made_of_several_replies(
    virtual_clock: VirtualClock,
) -> None:
    events: list[str] = []
    extract, summarize = chain_agents(events)
    async with MiniAgents():
        reply = summarize.inquire([extract.inquire(), extract.inquire()])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 15)
    assert virtual_clock.elapsed == pytest.approx(15)
    assert sorted(events) == ["extract cancelled"] * 2 + ["summarize cancelled"]


async def test_an_input_someone_else_reads_goes_on_when_its_agent_is_given_up(
    virtual_clock: VirtualClock,
) -> None:
    events: list[str] = []
    extract, summarize = chain_agents(events)
    async with MiniAgents():
        facts = extract.inquire()
        kept = asyncio.ensure_future(facts.aresolve())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(summarize.inquire(facts).aresolve(), 15)
        assert len(await kept) == 10  # its own reader got every fact
    assert events == ["summarize cancelled"]


async def test_a_pipeline_chain_that_times_out_keeps_to_max_concurrency() -> None:
    running = peak = 0

    @miniagent
    async def extract(ctx: InteractionContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            for number in range(10):
                await asyncio.sleep(10)
                ctx.reply(f"fact {number}")
        finally:
            running -= 1

    _, summarize = chain_agents([])
    async with MiniAgents():
        results = [
            result
            async for result in pipeline(
                [extract, summarize],
                [f"doc {number}" for number in range(10)],
                max_concurrency=2,
                timeout=15,
                retries=2,
                backoff=1,
                progress=False,
            )
        ]
    assert {type(result.error).__name__ for result in results} == {"PipelineTimeoutError"}
    assert peak == 2


def source_agent(tokens: AsyncIterator[str]) -> MiniAgent[[]]:
    @miniagent
    async def from_source(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(tokens))

    return from_source


async def test_an_error_a_source_given_up_on_raises_as_it_closes_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def tokens() -> AsyncIterator[str]:
        try:
            yield "a"
            await asyncio.sleep(100)
        finally:
            raise RuntimeError("closing the connection failed")

    async with MiniAgents():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(source_agent(tokens()).inquire().aresolve(), 0.2)
    assert not running_tasks()  # the exit waited for the source's cleanup (which raised)
    [record] = [record for record in caplog.records if record.levelname == "ERROR"]
    assert "stopped as it was given up on" in record.getMessage()
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "closing the connection failed"
    caplog.clear()  # (an expected error log: see conftest)


async def test_giving_up_on_one_agent_leaves_an_input_another_running_agent_reads() -> None:
    events: list[str] = []
    extract, summarize = chain_agents(events)

    @miniagent
    async def keeper(ctx: InteractionContext) -> None:
        async for fact in ctx.message_promises:  # reads each fact, then works on it
            text = str(await fact)
            await asyncio.sleep(15)  # busy, not waiting for its input, when the other gives up
            ctx.reply(f"stored {text}")

    async with MiniAgents():
        facts = extract.inquire()
        stored = keeper.inquire(facts)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(summarize.inquire(facts).aresolve(), 15)
        assert len(await stored) == 10  # the other reader of the input got every fact
    assert events == ["summarize cancelled"]


async def test_giving_up_inside_a_joined_message_stops_the_agent_that_replied_it() -> None:
    events: list[str] = []

    @miniagent
    async def summarizer(ctx: InteractionContext) -> None:
        try:
            ctx.reply(join_messages(source_agent(paced_tokens(100)).inquire()))
            await asyncio.sleep(30)  # more work after replying
            ctx.reply("more")
        except asyncio.CancelledError:
            events.append("summarizer cancelled")
            raise

    async with MiniAgents():
        with pytest.raises(TimeoutError):
            await preview(summarizer.inquire(), 3.5)
    assert events == ["summarizer cancelled"]


# -- a reader between two pieces reads on --------------------------------------------------


def stepped_agent(step: asyncio.Event, count: int, events: list[str]) -> MiniAgent[[]]:
    """An agent that replies ``fact 0`` .. ``fact <count - 1>``, each when ``step`` is set."""

    @miniagent
    async def stepped(ctx: InteractionContext) -> None:
        try:
            for number in range(count):
                await step.wait()
                step.clear()
                ctx.reply(f"fact {number}")
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    return stepped


@pytest.mark.parametrize("other", ["a reader", "an agent reading it", "an agent reading a list"])
async def test_a_reader_between_two_messages_keeps_the_reply_when_another_gives_up(
    other: str,
) -> None:
    """The user works on a message (not waiting for the reply) while another gives up."""
    step, busy, go = asyncio.Event(), asyncio.Event(), asyncio.Event()
    events: list[str] = []

    @miniagent
    async def slow_reader(ctx: InteractionContext) -> None:
        async for _ in ctx.message_promises:
            await asyncio.sleep(3600)  # it will be given up on

    async def impatient(reply: MessageSequencePromise) -> None:
        async for _ in reply:
            pass

    async with MiniAgents():
        facts = stepped_agent(step, 4, events).inquire()

        async def user() -> list[str]:
            got = []
            async for fact in facts:
                got.append(str(await fact))
                busy.set()
                await go.wait()  # works on the fact: between two messages of the reply
                go.clear()
            return got

        reading = asyncio.create_task(user())
        step.set()
        await busy.wait()
        if other == "a reader":
            given_up: Awaitable[object] = impatient(facts)
        else:
            inputs = facts if other == "an agent reading it" else [facts]
            given_up = slow_reader.inquire(inputs).aresolve()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(given_up, 1)
        for _ in range(3):
            busy.clear()
            go.set()
            step.set()
            await busy.wait()
        go.set()
        assert await reading == ["fact 0", "fact 1", "fact 2", "fact 3"]
    assert events == []


@pytest.mark.parametrize("how", ["goes", "is closed"])
async def test_a_reader_that_held_the_reply_gives_it_up_when_it_goes_or_is_closed(
    how: str,
) -> None:
    """Another consumer gave up while it held the reply: once it goes too, the agent stops."""
    step = asyncio.Event()
    events: list[str] = []
    async with MiniAgents():
        facts = stepped_agent(step, 4, events).inquire()
        holder = aiter(facts)
        step.set()
        await anext(holder)  # it holds the reply, between two messages
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(facts.aresolve(), 1)
        await asyncio.sleep(0.01)
        assert events == []  # held
        if how == "goes":
            del holder  # it goes without reading on (as after a break)
        else:
            await holder.aclose()
        await asyncio.sleep(0.01)
        assert events == ["cancelled"]


async def test_leaving_a_reply_unread_alone_is_not_giving_up() -> None:
    """A reader that goes (a break) without anyone giving up leaves the agent running."""
    step = asyncio.Event()
    events: list[str] = []
    async with MiniAgents():
        facts = stepped_agent(step, 2, events).inquire()
        step.set()
        async for _ in facts:
            break
        await asyncio.sleep(0.01)
        step.set()
        assert [str(fact) for fact in await facts] == ["fact 0", "fact 1"]
    assert events == []


async def test_a_timeout_on_one_tool_result_then_reading_on_keeps_the_tool_loop() -> None:
    """Skip a slow message (a timeout around it), read on: the agent goes on (not cancelled)."""
    gate = asyncio.Event()

    async def crawl(site: str) -> str:
        """Crawl a site."""
        await gate.wait()
        return f"crawled {site}"

    agent = scripted_agent(CallTool("crawl", {"site": "example.org"}), "Done.", tools=[crawl])
    seen: list[str] = []
    async with MiniAgents():
        async for message in agent.inquire("Crawl example.org"):
            try:
                async with asyncio.timeout(1):  # skip a message that is slow to stream
                    async for _ in message:
                        pass
                seen.append(str(await message))
            except TimeoutError:
                seen.append(f"(skipped {message.message_class.__name__})")
                gate.set()
    assert seen[1:] == ["(skipped LLMToolResultMessage)", "Done."]


async def test_a_reader_giving_up_on_a_message_leaves_it_to_an_agent_that_will_read_it() -> None:
    """Agent B, busy with the first message of A's reply, will read the second one next."""
    token_gate, b_busy, b_go, user_reading = (asyncio.Event() for _ in range(4))

    async def tokens() -> AsyncIterator[str]:
        yield "one "
        await token_gate.wait()
        yield "two"

    @miniagent
    async def agent_a(ctx: InteractionContext) -> None:
        ctx.reply("first")
        ctx.reply(MessagePromise.from_async_iterable(tokens()))

    @miniagent
    async def agent_b(ctx: InteractionContext) -> None:
        got: list[str] = []
        async for promise in ctx.message_promises:
            if not got:
                b_busy.set()
                await b_go.wait()  # busy with the first message, between its waits
            got.append(str(await promise))
        ctx.reply(" / ".join(got))

    async def user_reads_the_second_message(reply: MessageSequencePromise) -> None:
        async for promise in reply:
            if promise is not first:
                async for _ in promise:
                    user_reading.set()

    async with MiniAgents():
        a_replies = agent_a.inquire()
        b_replies = agent_b.inquire(a_replies)
        await b_busy.wait()
        first = await anext(aiter(a_replies))
        user = asyncio.create_task(user_reads_the_second_message(a_replies))
        await user_reading.wait()
        user.cancel()  # the user gives up while it waits for "two"
        with pytest.raises(asyncio.CancelledError):
            await user
        token_gate.set()
        b_go.set()
        assert str(await b_replies) == "first / one two"


async def endless_tokens(events: list[str]) -> AsyncIterator[str]:
    """Tokens for ever (one each virtual 10 ms), until the stream is given up on."""
    try:
        while True:
            yield "t "
            await asyncio.sleep(0.01)
    finally:
        events.append("tokens stopped")


async def tokens_for(message: MessagePromise, seconds: float) -> None:
    """Read ``message``'s tokens for ``seconds`` (a ``TimeoutError`` then)."""
    async with asyncio.timeout(seconds):
        async for _ in message:
            pass


async def closing_read(reply: MessageSequencePromise) -> None:
    """The reply's messages, each read for 1 s at most, in ``contextlib.aclosing``."""
    async with contextlib.aclosing(aiter(reply)) as replies:
        async for message in replies:
            await tokens_for(message, 1)


async def test_a_reader_past_a_message_does_not_keep_it_when_its_reader_gives_up() -> None:
    """W took the endless message and the one after it; C times out on the message."""
    events: list[str] = []
    finish, w_busy, w_go = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @miniagent
    async def agent(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(endless_tokens(events)))
        ctx.reply("after")
        await finish.wait()
        ctx.reply("last")

    async with MiniAgents():
        reply = agent.inquire()
        taken: list[MessagePromise] = []

        async def w() -> int:
            async for message in reply:  # never reads the endless message's tokens
                taken.append(message)
                if len(taken) == 2:  # past it, busy with "after"
                    w_busy.set()
                    await w_go.wait()
            return len(taken)

        reading = asyncio.create_task(w())
        await w_busy.wait()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):  # C
                await taken[0]
        await asyncio.sleep(0.01)
        assert events == ["tokens stopped"]  # (held by W's position, it ran for ever)
        w_go.set()
        finish.set()
        assert await reading == 3


async def test_a_reader_that_gives_up_on_a_message_while_another_waits_stops_the_message() -> None:
    """R times out on the endless message and reads no more; W waits for the next message."""
    events: list[str] = []
    finish = asyncio.Event()

    @miniagent
    async def agent(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(endless_tokens(events)))
        await finish.wait()
        ctx.reply("last")

    async with MiniAgents():
        reply = agent.inquire()
        first = await anext(aiter(reply))
        waiting = asyncio.create_task(reply.aresolve())  # W: the whole reply
        with pytest.raises(TimeoutError):
            await tokens_for(first, 1)  # R gives up on the message
        await asyncio.sleep(0.01)
        assert events == []  # W will read it (an await of the whole reply)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.01)
        assert events == ["tokens stopped"]
        finish.set()


async def test_closing_a_reader_after_a_timeout_on_one_message_gives_the_reply_up() -> None:
    """contextlib.aclosing around the loop: the reader is closed as the timeout leaves it."""
    events: list[str] = []

    @miniagent
    async def agent(ctx: InteractionContext) -> None:
        try:
            ctx.reply(MessagePromise.from_async_iterable(endless_tokens(events)))
            await asyncio.sleep(3600)  # then goes on working
        except asyncio.CancelledError:
            events.append("agent cancelled")
            raise

    async with MiniAgents():
        with pytest.raises(TimeoutError):
            await closing_read(agent.inquire())
        await asyncio.sleep(0.01)
        assert sorted(events) == ["agent cancelled", "tokens stopped"]


async def test_an_input_two_agents_read_goes_on_when_one_is_given_up_before_it_runs() -> None:
    events: list[str] = []
    extract, summarize = chain_agents(events)

    @miniagent
    async def critic(ctx: InteractionContext) -> None:
        ctx.reply(f"critique of {len([m async for m in ctx.message_promises])} facts")

    async with MiniAgents():
        facts = extract.inquire()
        critique = critic.inquire(facts)
        summarize.inquire(facts).cancel()  # before summarize (and critic) ran
        assert str(await critique) == "critique of 10 facts"
    assert events == []


async def test_an_agent_cancelled_before_it_ran_leaves_nothing_of_its_input_behind() -> None:
    """A context failing cancels an agent before its first step: its input's hold goes.

    (The checks kept for the hold's release, its audience's ``at_release``, are the stream
    read's own, so they could not outlive it even if its hold were never released.)
    """
    read: list[weakref.ref[ReplayCore[Any]]] = []
    replied, gate = asyncio.Event(), asyncio.Event()
    messages: list[MessagePromise] = []

    async def tokens() -> AsyncIterator[str]:
        yield "one"
        await gate.wait()

    @miniagent
    async def agent_a(ctx: InteractionContext) -> None:
        messages.append(MessagePromise.from_async_iterable(tokens()))
        ctx.reply(messages[0])
        replied.set()
        await gate.wait()

    @miniagent
    async def agent_b(ctx: InteractionContext) -> None:
        async for _ in ctx.message_promises:
            pass

    async def failing_context() -> None:
        async with MiniAgents():
            a_replies = agent_a.inquire()
            await replied.wait()
            agent_b.inquire(a_replies)  # its task has not run yet: it holds A's replies
            messages[0].as_observable().subscribe(lambda _: None).dispose()  # given up on
            audience = core_of(a_replies).audience
            assert audience is not None
            assert audience.at_release is not None
            assert len(audience.at_release) == 1  # checked again at B's release
            read.append(weakref.ref(core_of(a_replies)))
            del audience
            raise RuntimeError("the context fails")  # B is cancelled before its first step

    with pytest.raises(RuntimeError, match="the context fails"):
        await failing_context()
    messages.clear()
    gc.collect()
    assert read[0]() is None  # (the stream went, and what it kept with it)


async def test_a_timeout_around_the_loop_landing_in_its_body_gives_the_reply_up(
    virtual_clock: VirtualClock,
) -> None:
    """The timeout cancels the loop's own work, not its wait: the reader gave up all the same."""
    events: list[str] = []

    @miniagent
    async def long_agent(ctx: InteractionContext) -> None:
        try:
            for index in range(1000):  # 10 virtual seconds of replies
                ctx.reply(f"message {index}")
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    async def read_slowly(reply: MessageSequencePromise) -> None:
        async with asyncio.timeout(0.1):
            async for _ in reply:
                await asyncio.sleep(0.03)  # (the timeout lands here, between two waits)

    async with MiniAgents():
        reply = long_agent.inquire()
        with pytest.raises(TimeoutError):
            await read_slowly(reply)
        with pytest.raises(StreamCancelledError, match="every consumer of it gave up"):
            await reply
    assert events == ["cancelled"]
    assert virtual_clock.elapsed == pytest.approx(0.1)  # not the agent's 10 s


async def test_a_timeout_around_a_token_loop_landing_in_its_body_stops_the_message(
    virtual_clock: VirtualClock,
) -> None:
    """The same for a message's tokens: its agent (an LLM call, say) stops streaming it."""
    events: list[str] = []

    async def slow_tokens() -> AsyncIterator[str]:
        try:
            for index in range(1000):  # 10 virtual seconds of tokens
                yield f"t{index} "
                await asyncio.sleep(0.01)
        finally:
            events.append("tokens stopped")

    @miniagent
    async def streaming(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(slow_tokens()))

    async def send_slowly(message: MessagePromise) -> None:
        async with asyncio.timeout(0.1):
            async for _ in message:
                await asyncio.sleep(0.03)  # (sending the token on: the timeout lands here)

    async with MiniAgents():
        message = await anext(aiter(streaming.inquire()))
        with pytest.raises(TimeoutError):
            await send_slowly(message)
        with pytest.raises(StreamCancelledError, match="every consumer of it gave up"):
            await message
        await asyncio.sleep(0.01)
        assert events == ["tokens stopped"]
    assert virtual_clock.elapsed == pytest.approx(0.11)  # not the tokens' 10 s


# -- giving up, found by the topology fuzzer ------------------------------------------------


@pytest.mark.parametrize("how", ["given up on", "the context fails"])
async def test_the_context_exits_once_the_messages_it_stopped_have_closed_their_sources(
    how: str,
) -> None:
    """A stopped message's source cleans up in its own task: the exit waits for it."""
    events: list[str] = []

    async def tokens() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.1)  # (e.g. closing a connection)
            events.append("source closed")

    with contextlib.suppress(RuntimeError):
        async with MiniAgents():
            reply = source_agent(tokens()).inquire()
            if how == "given up on":
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(reply.aresolve(), 1)
            else:
                await anext(aiter(reply))
                raise RuntimeError("the caller fails")
    assert events == ["source closed"]
    assert not running_tasks()


async def ten_second_tokens(name: str, events: list[str]) -> AsyncIterator[str]:
    """A message's tokens: its name, then the rest 10 virtual seconds later (or it stops)."""
    yield f"{name} "
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        events.append(f"{name} stopped")
        raise
    yield "(the rest)"


def two_streaming_messages(events: list[str]) -> MiniAgent[[]]:
    """An agent whose reply ends at once, with two messages of two agents still streaming."""

    @miniagent
    async def one(ctx: InteractionContext, name: str) -> None:
        ctx.reply(MessagePromise.from_async_iterable(ten_second_tokens(name, events)))

    @miniagent
    async def both(ctx: InteractionContext) -> None:
        ctx.reply([one.inquire(name="a"), one.inquire(name="b")])

    return both


@pytest.mark.parametrize(
    "how",
    ["in the loop's body", "in the wait for a message", "as an agent's input", "queued"],
)
async def test_giving_up_on_a_reply_that_has_ended_stops_its_messages_still_streaming(
    how: str, virtual_clock: VirtualClock
) -> None:
    """Its every message has entered (it ended), so only its messages are left to give up."""
    events: list[str] = []
    both = two_streaming_messages(events)

    @miniagent
    async def reader(ctx: InteractionContext) -> None:
        async for message in ctx.message_promises:
            await message

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        await asyncio.sleep(5)
        ctx.reply("slow")

    @miniagent
    async def queue(ctx: InteractionContext) -> None:
        ctx.reply([slow.inquire(), both.inquire()])  # both's reply waits behind slow's

    async def give_up() -> None:
        if how == "in the loop's body":
            async with asyncio.timeout(1):
                async for _ in both.inquire():
                    await asyncio.sleep(5)  # (the timeout lands here)
        elif how == "in the wait for a message":
            async with asyncio.timeout(1):
                async for message in both.inquire():
                    await message  # (the timeout lands here, in the first message)
        elif how == "as an agent's input":
            await asyncio.wait_for(reader.inquire(both.inquire()).aresolve(), 1)
        else:
            await asyncio.wait_for(queue.inquire().aresolve(), 1)

    async with MiniAgents():
        with pytest.raises(TimeoutError):
            await give_up()
    assert sorted(events) == ["a stopped", "b stopped"]
    assert virtual_clock.elapsed == pytest.approx(1)  # not the messages' 10 s


async def test_an_agent_given_up_while_it_waits_for_room_at_its_input_gives_its_input_up(
    virtual_clock: VirtualClock,
) -> None:
    """RELAY waits at its next input pull (its replies are the high-water mark ahead)."""
    events: list[str] = []

    @miniagent
    async def producer(ctx: InteractionContext) -> None:
        try:
            for number in range(100):  # a fact each tenth of a virtual second
                ctx.reply(f"fact {number}")
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            events.append("producer cancelled")
            raise

    @miniagent
    async def relay(ctx: InteractionContext) -> None:
        async for fact in ctx.message_promises:
            ctx.reply(f"relayed {await fact}")

    async def read_slowly(reply: MessageSequencePromise) -> None:
        async with asyncio.timeout(1.5):
            async for _ in reply:
                await asyncio.sleep(5)  # the caller is slow: RELAY waits for room

    async with MiniAgents(high_water_mark=1):
        with pytest.raises(TimeoutError):
            await read_slowly(relay.inquire(producer.inquire()))
    assert events == ["producer cancelled"]
    assert virtual_clock.elapsed == pytest.approx(1.5)  # not the producer's 10 s


async def test_a_reader_that_came_past_the_replay_window_keeps_nothing_from_being_given_up(
    virtual_clock: VirtualClock,
) -> None:
    """LATE starts after the reply released its first messages: it reads nothing of it."""
    events: list[str] = []

    @miniagent
    async def producer(ctx: InteractionContext) -> None:
        ctx.reply(["one", "two"])
        ctx.reply(MessagePromise.from_async_iterable(ten_second_tokens("slow", events)))

    @miniagent
    async def echo(ctx: InteractionContext) -> None:
        async for message in ctx.message_promises:
            ctx.reply(f"echo: {await message}")

    async with MiniAgents(replay_window=2):
        reply = producer.inquire()
        echoed = echo.inquire(reply)
        for _ in range(5):
            await asyncio.sleep(0)  # ECHO took every message, and waits for the slow one
        late = aiter(reply)
        with pytest.raises(ReplayWindowError):
            await anext(late)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(echoed.aresolve(), 1)
    assert events == ["slow stopped"]
    assert virtual_clock.elapsed == pytest.approx(1)  # not the slow message's 10 s


async def test_giving_up_on_an_agent_reading_an_operators_output_stops_what_it_follows(
    virtual_clock: VirtualClock,
) -> None:
    """An agent piped after an operator reads the operator's own sequence as its input."""
    events: list[str] = []

    slow = slow_fact_agent(events)

    @miniagent
    async def echo(ctx: InteractionContext) -> None:
        for message in await ctx.messages:
            ctx.reply(f"echo: {message}")

    @miniagent
    async def piped(ctx: InteractionContext) -> None:
        ctx.reply(reactivex.of(ctx.message_promises).pipe(resolve_messages(), echo.as_operator()))

    async with MiniAgents():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(piped.inquire(slow.inquire()).aresolve(), 1)
    assert events == ["slow cancelled"]
    assert virtual_clock.elapsed == pytest.approx(1)  # not slow's 10 s


@pytest.mark.parametrize("how", ["as_message_observable()", "as_operator()"])
async def test_giving_up_on_an_agent_replying_complete_messages_stops_those_still_streaming(
    how: str, virtual_clock: VirtualClock
) -> None:
    """The complete messages of a reply, in order: those queued behind the first stop too."""
    events: list[str] = []
    both = two_streaming_messages(events)

    @miniagent
    async def complete_ones(ctx: InteractionContext) -> None:
        if how == "as_message_observable()":
            ctx.reply(both.inquire().as_message_observable())
        else:
            ctx.reply(reactivex.of("go").pipe(both.as_operator()))

    async with MiniAgents():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(complete_ones.inquire().aresolve(), 1)
    assert sorted(events) == ["a stopped", "b stopped"]
    assert virtual_clock.elapsed == pytest.approx(1)  # not the messages' 10 s


@pytest.mark.parametrize("given", ["through an operator", "in a list of replies"])
async def test_a_timeout_around_one_input_message_of_a_reply_that_has_ended_reads_on(
    given: str,
) -> None:
    """SKIM's input holds the message of a reply that has ended (its agent replied it, then
    ended): SKIM times out on the message's tokens, then reads it whole."""

    async def tokens() -> AsyncIterator[str]:
        yield "slow "
        await asyncio.sleep(1)
        yield "message"

    @miniagent
    async def slow_message(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(tokens()))

    @miniagent
    async def skim(ctx: InteractionContext) -> None:
        async for message in ctx.message_promises:
            with contextlib.suppress(TimeoutError):
                await tokens_for(message, 0.5)  # (a timeout around one message)
            ctx.reply(f"read: {await message}")

    @miniagent
    async def piped(ctx: InteractionContext) -> None:
        ctx.reply(reactivex.of(ctx.message_promises).pipe(skim.as_operator()))

    async with MiniAgents():
        if given == "through an operator":
            replies = piped.inquire(slow_message.inquire())
        else:
            replies = skim.inquire([slow_message.inquire(), "fast message"])
        texts = [str(message) for message in await replies]
    assert texts[0] == "read: slow message"


async def test_giving_up_on_an_agent_that_has_ended_gives_up_the_input_its_reply_holds(
    virtual_clock: VirtualClock,
) -> None:
    """PIPED has ended: its reply is an operator's output over its input (which WAITING,
    never started reading, holds in an observable), and that reply is given up on."""
    events: list[str] = []
    never = asyncio.Event()

    slow = slow_fact_agent(events)

    @miniagent
    async def waiting(ctx: InteractionContext) -> None:
        await never.wait()  # (as an agent waiting for its concurrency slot)
        ctx.reply(await ctx.messages)

    @miniagent
    async def piped(ctx: InteractionContext) -> None:
        ctx.reply(
            reactivex.of(ctx.message_promises).pipe(resolve_messages(), waiting.as_operator())
        )

    async with MiniAgents():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(piped.inquire(slow.inquire()).aresolve(), 1)
    assert events == ["slow cancelled"]
    assert virtual_clock.elapsed == pytest.approx(1)  # not slow's 10 s


async def test_an_agent_given_up_before_it_read_an_input_that_has_ended_gives_it_up(
    virtual_clock: VirtualClock,
) -> None:
    """PRODUCER has ended, its message still streams; BUSY is given up before it reads it."""
    events: list[str] = []
    never = asyncio.Event()

    @miniagent
    async def producer(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(ten_second_tokens("slow", events)))

    @miniagent
    async def busy(ctx: InteractionContext) -> None:
        await never.wait()  # (as an agent waiting for its concurrency slot)
        ctx.reply(await ctx.messages)

    async with MiniAgents():
        facts = producer.inquire()
        await asyncio.sleep(0)  # PRODUCER replied its message and ended
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(busy.inquire(facts).aresolve(), 1)
    assert events == ["slow stopped"]
    assert virtual_clock.elapsed == pytest.approx(1)  # not the message's 10 s


async def test_an_input_that_has_ended_keeps_its_messages_for_the_agent_that_will_read_it() -> None:
    """A reader gives up on a message of SLOW's ended reply; LATER, busy first, reads it."""
    go = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        yield "slow "
        await asyncio.sleep(1)
        yield "message"

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(tokens()))

    @miniagent
    async def later(ctx: InteractionContext) -> None:
        await go.wait()
        ctx.reply(f"read: {await ctx.messages}")

    async with MiniAgents():
        reply = slow.inquire()
        await asyncio.sleep(0)  # SLOW replied its message and ended
        read = later.inquire(reply)
        message = await anext(aiter(reply))
        with pytest.raises(TimeoutError):
            await tokens_for(message, 0.5)  # a reader gives up on the message
        go.set()
        assert str(await read) == "read: slow message"


# -- found by the topology fuzzer (issue 58) -------------------------------------------------


async def tokens_then_done(name: str, seconds: float) -> AsyncIterator[str]:
    """A message's tokens: its name, then "done" ``seconds`` later."""
    yield f"{name} "
    await asyncio.sleep(seconds)
    yield "done"


async def texts_of(observable: reactivex.Observable[Message]) -> list[str]:
    texts: list[str] = await observable.pipe(ops.map(str), ops.to_list())
    return texts


@pytest.mark.parametrize("how", ["as_message_observable()", "as_operator()"])
async def test_complete_messages_lose_none_when_another_reader_gives_up_on_a_queued_one(
    how: str, virtual_clock: VirtualClock
) -> None:
    """Issue 58, item 6. BOTH's reply ends at once, its two messages still streaming (10 s
    and 20 s): the subscriber of its complete messages waits for the first, the second
    queued behind it, when another reader gives up on the second (a timeout of 1 s). The
    second is still the subscriber's to read: it must stream on (it was stopped, and the
    subscriber failed with a StreamCancelledError)."""
    async with MiniAgents():
        first = MessagePromise.from_async_iterable(tokens_then_done("a", 10))
        second = MessagePromise.from_async_iterable(tokens_then_done("b", 20))

        @miniagent
        async def both(ctx: InteractionContext) -> None:
            ctx.reply([first, second])

        complete: reactivex.Observable[Message]
        if how == "as_message_observable()":
            complete = both.inquire().as_message_observable()
        else:
            complete = reactivex.of("go").pipe(both.as_operator())
        texts = asyncio.ensure_future(texts_of(complete))
        await asyncio.sleep(0.5)  # the subscriber has both messages, waits for the first
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await second  # another reader gives up on the second
        assert await texts == ["a done", "b done"]
    assert virtual_clock.elapsed == pytest.approx(20)


async def two_tokens(first: str, second: str) -> AsyncIterator[str]:
    yield first
    yield second


@pytest.mark.parametrize("how", ["reply(r) twice", "[r, r]"])
async def test_a_failed_reply_passed_on_twice_fails_with_its_error_not_a_cancelled_message(
    how: str,
) -> None:
    """BOTH replies a streamed message, then a branch that fails; TWICE passes BOTH's reply
    on twice. The caller must get the branch's ValueError (it got a StreamCancelledError on
    the streamed message, and the ValueError was logged as an error nobody received)."""

    @miniagent
    async def streamed(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(two_tokens("streamed ", "message")))

    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        raise ValueError("the second branch fails")

    @miniagent
    async def both(ctx: InteractionContext) -> None:
        ctx.reply(streamed.inquire())
        ctx.reply(failing.inquire())

    @miniagent
    async def twice(ctx: InteractionContext) -> None:
        reply = both.inquire()
        if how == "[r, r]":
            ctx.reply([reply, reply])
        else:
            ctx.reply(reply)
            ctx.reply(reply)

    read: list[str] = []

    async def read_all() -> None:
        async for promise in twice.inquire():
            read.append(str(await promise))

    async with MiniAgents():
        with pytest.raises(ValueError, match="the second branch fails"):
            await read_all()
    assert read == ["streamed message"]  # (and no error logged as lost: see conftest)


async def test_a_reader_giving_up_in_its_body_makes_room_at_once_without_the_watch(
    virtual_clock: VirtualClock,
) -> None:
    """A reply that reaches its caller through a flattening (the agent's own record, fed by
    its appender, not started by a consumer of its own) held its producer back: when the
    slower of two readers gave up in its loop's body, the room it made woke nobody (its
    finalizer scheduled no recheck for a stream without a loop), and the producer waited
    for the deadlock watch. With the watch off, it waited for ever."""

    @miniagent
    async def streams(ctx: InteractionContext) -> None:
        for index in range(3):
            await ctx.areply(MessagePromise.from_async_iterable(two_tokens("s:", f"{index}")))

    @miniagent
    async def echoes(ctx: InteractionContext) -> None:
        async for promise in ctx.message_promises:
            await ctx.areply("".join([token async for token in promise]))
        for index in range(3):
            await ctx.areply(f"own:{index}")

    @miniagent
    async def chain(ctx: InteractionContext) -> None:
        ctx.reply(echoes.inquire(streams.inquire()))

    async def gives_up(replies: MessageSequencePromise[Message]) -> list[str]:
        read: list[str] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None) as timeout:
                async for promise in replies:
                    if read:
                        timeout.reschedule(asyncio.get_running_loop().time() + 0.5)
                        await asyncio.sleep(1)  # (its loop's own work: the timeout lands here)
                    read.append(str(await promise))
        return read

    former = set_deadlock_check_interval(None)
    try:
        async with MiniAgents(high_water_mark=1):
            replies = chain.inquire()
            loop = asyncio.get_running_loop()
            start = loop.time()
            async with asyncio.timeout(60):  # (on the virtual clock: a hang fails at once)
                everything, given_up = await asyncio.gather(
                    asyncio.ensure_future(_all_texts(replies)), gives_up(replies)
                )
            took = loop.time() - start
    finally:
        set_deadlock_check_interval(former)
    assert everything == ["s:0", "s:1", "s:2", "own:0", "own:1", "own:2"]
    assert given_up == ["s:0"]
    assert took == 0.5  # at the timeout, not at a watch's check (nor never)


async def _all_texts(replies: MessageSequencePromise[Message]) -> list[str]:
    return [str(await promise) async for promise in replies]


async def test_complete_messages_of_a_reply_passed_on_twice_are_given_up_with_their_reader(
    virtual_clock: VirtualClock,
) -> None:
    """The complete messages' reader holds each streaming message queued behind the one it
    waits for; a reply passed on twice queues its messages twice, and the second hold
    replaced the first, which nothing let go of: the message streamed on after its reader
    gave up, and the context's exit waited for it (found by the deep fuzzer run)."""

    async def slow(text: str) -> AsyncIterator[str]:
        yield text
        await asyncio.sleep(1)
        yield "."

    @miniagent
    async def two_streamed(ctx: InteractionContext) -> None:
        for index in range(2):
            ctx.reply(MessagePromise.from_async_iterable(slow(f"m{index}")))

    @miniagent
    async def passed_twice(ctx: InteractionContext) -> None:
        reply = two_streamed.inquire()
        ctx.reply(reply)
        ctx.reply(reply)

    loop = asyncio.get_running_loop()
    start = loop.time()
    async with MiniAgents():
        replies = passed_twice.inquire()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await replies.as_message_observable().pipe(ops.to_list())
    assert loop.time() - start == 0.5  # the exit waited for nothing given up on
