"""The low levels: ``miniagents.promising.lowlevel`` and ``miniagents.miniagents.lowlevel``.

What the layers above the streams use of the replay core (cores, views, piece types), and
what extensions use of the agents layer (tasks a context waits for, interaction scopes,
extension settings); and ``MiniAgents`` showing users only what they use.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import AsyncIterator, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, cast

import pytest

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    StreamedPromise,
    miniagent,
)
from miniagents.errors import NoActiveContextError, StreamCancelledError
from miniagents.ext.llm.settings import LLMSettings, llm_settings
from miniagents.messages import MessageSequenceAppender, MessageTokenAppender
from miniagents.miniagents.lowlevel import (
    InteractionScope,
    context_settings,
    extension_settings,
    start_task,
    with_settings,
)
from miniagents.promising import _tasks
from miniagents.promising._cursor import PieceIterator
from miniagents.promising.lowlevel import (
    Observer,
    ReplayCore,
    core_of,
    forget_task,
    keeps_monotonic_time,
    loop_runs,
    paced_core_of,
    pieces_are,
    running_tasks,
    spawn,
    stream_on,
)


async def join(pieces: tuple[str, ...]) -> str:
    return "".join(pieces)


async def words() -> AsyncIterator[str]:
    yield "a"
    yield "b"


# -- the replay core, as the layers above see it ---------------------------------------------


async def test_core_of_gives_the_core_a_stream_shows() -> None:
    stream = StreamedPromise(words(), resolver=join)
    core = core_of(stream)
    assert isinstance(core, ReplayCore)
    assert await stream == "ab"
    assert core.done
    assert core.pieces == ["a", "b"]


async def test_the_piece_types_of_message_streams_are_known() -> None:
    message = MessagePromise.from_async_iterable(words())
    sequence = MessageSequencePromise(["x", message])
    assert pieces_are(core_of(message), str)
    assert pieces_are(core_of(MessagePromise.of_text("ready")), str)
    assert pieces_are(core_of(sequence), MessagePromise)
    assert not pieces_are(core_of(sequence), str)
    assert not pieces_are(core_of(StreamedPromise(words(), resolver=join)), str)
    await sequence


async def test_paced_core_of_gives_the_core_of_a_stream_with_a_flow_or_none() -> None:
    appender = MessageSequenceAppender()
    sequence = appender.sequence  # a running sequence: it has a flow
    message = MessagePromise.from_async_iterable(words())
    assert paced_core_of(sequence) is core_of(sequence)
    assert paced_core_of(sequence.as_observable()) is core_of(sequence)
    assert paced_core_of(StreamedPromise(words(), resolver=join)) is not None
    assert paced_core_of(message) is None  # a message's tokens: kept whole, never held
    assert paced_core_of(MessagePromise.of_text("ready")) is None
    assert paced_core_of(MessageSequencePromise(["x", message])) is None  # finished: no flow
    assert paced_core_of("text") is None
    assert paced_core_of(ValueError("an error segment")) is None
    appender.complete()
    assert await sequence == ()
    assert (await message).text == "ab"


async def test_a_message_over_another_messages_tokens_shares_their_record() -> None:
    first = MessagePromise.from_async_iterable(words())
    second = MessagePromise.from_observable(first.as_observable(), role="x")
    assert core_of(second) is core_of(first)  # its tokens are known to be str: no copy
    assert (await second).text == "ab"


async def test_a_stream_on_a_core_owns_it_and_a_gated_one_is_a_view() -> None:
    appender = MessageSequenceAppender()
    owner = stream_on(MessageSequencePromise, core_of(appender.sequence))
    view = stream_on(MessageSequencePromise, core_of(appender.sequence), gate=core_of(owner))
    appender.append("one")
    view.cancel()  # a view stops only for its own consumers
    with pytest.raises(StreamCancelledError):
        await view
    appender.append("two")
    appender.complete()
    assert [str(message) for message in await owner] == ["one", "two"]
    owner.cancel()  # done already: nothing changes
    assert core_of(owner).error is None


# -- tasks the context waits for -------------------------------------------------------------


async def test_an_end_observer_gets_the_end_only_and_counts_as_a_consumer() -> None:
    core: ReplayCore[str] = ReplayCore(open_ended=True, piece_type=str)
    core.accept("a")
    ends: list[str] = []
    dispose = core.add_end_observer(
        lambda error: ends.append(f"error {error}"), lambda: ends.append("end")
    )
    core.accept("b")  # not given to it, nor was "a"
    assert (ends, core.observers, core.consumed()) == ([], (), True)
    core.complete()
    assert (ends, core.consumed()) == (["end"], False)
    dispose()  # after the end: nothing to undo

    failed: ReplayCore[str] = ReplayCore(open_ended=True)
    errors: list[BaseException] = []
    failed.add_end_observer(errors.append, lambda: None)
    failure = ValueError("broken")
    failed.fail(failure)
    assert errors == [failure]
    assert failed.handed_over  # it passes the error on: the core does not report it lost

    ended = ReplayCore.finished(["x"], str)
    late: list[str] = []
    ended.add_end_observer(lambda error: None, lambda: late.append("end"))
    assert late == ["end"]  # a finished core tells it at once


async def test_disposing_an_end_observer_of_an_agents_message_gives_it_up() -> None:
    abandoned: list[bool] = []
    core: ReplayCore[str] = ReplayCore(open_ended=True, piece_type=str)
    core.on_abandoned = lambda: abandoned.append(True)
    dispose = core.add_end_observer(lambda error: None, lambda: None)
    dispose()
    assert abandoned == [True]  # its last consumer gave up


async def test_an_interaction_reading_a_stream_is_counted_by_its_audience() -> None:
    # an agent's input: read by an interaction, it is consumed while that runs; a check at
    # release waits for the last such interaction
    abandoned: list[bool] = []
    core: ReplayCore[str] = ReplayCore(open_ended=True, piece_type=str)
    core.on_abandoned = lambda: abandoned.append(True)
    none_before = core.audience is None  # (made at the first of them)
    audience = core.get_audience()
    assert none_before
    assert core.get_audience() is audience
    audience.hold_reader()
    audience.hold_reader()
    assert core.consumed()
    audience.check_abandoned_at_release(core)
    audience.release_reader(core, gave_up=False)
    before_the_last = list(abandoned)  # (one interaction still reads it)
    audience.release_reader(core, gave_up=False)
    assert (before_the_last, abandoned) == ([], [True])  # checked as the last one stopped
    assert not core.consumed()


@pytest.mark.parametrize("how", ["goes", "is closed"])
async def test_a_reader_that_kept_a_stream_from_being_given_up_has_it_checked_after(
    how: str,
) -> None:
    # a reader made before the stream had a producer to give up (an iterator without a
    # finalizer then): between two pieces it keeps the stream, which it owns a check of
    abandoned: list[bool] = []
    core: ReplayCore[str] = ReplayCore(open_ended=True, piece_type=str)
    reader = PieceIterator(object(), core)
    core.on_abandoned = lambda: abandoned.append(True)
    core.accept("a")
    assert await reader.__anext__() == "a"  # between two pieces now: it reads on
    core.add_end_observer(lambda error: None, lambda: None)()  # another consumer gives up
    assert abandoned == []  # the reader keeps it
    if how == "goes":
        del reader
    else:
        await reader.aclose()
    await asyncio.sleep(0)  # (the check runs in a step of the stream's loop)
    assert abandoned == [True]


async def test_an_observer_without_a_disposer_is_stopped_with_stop_observing() -> None:
    core: ReplayCore[str] = ReplayCore(open_ended=True, piece_type=str)
    abandoned: list[bool] = []
    core.on_abandoned = lambda: abandoned.append(True)
    core.accept("a")
    seen: list[str] = []
    observer: Observer[str] = (
        seen.append,
        lambda error: None,
        lambda: seen.append("end"),
        False,
        None,
    )
    assert core.observe(observer)
    assert list(core.observers) == [observer]
    core.accept("b")  # replayed "a" first, then live
    assert seen == ["a", "b"]
    core.stop_observing(observer)
    assert list(core.observers) == []
    assert abandoned == [True]  # its last consumer gave up
    core.accept("c")
    assert seen == ["a", "b"]

    ended = ReplayCore.finished(["x"], str)
    late: list[str] = []
    assert not ended.observe(
        (late.append, lambda error: None, lambda: late.append("end"), False, None)
    )
    assert late == ["x", "end"]  # told everything at once: nothing to stop


@miniagent
async def _waiting_worker(ctx: InteractionContext, gate: asyncio.Event) -> None:
    await gate.wait()
    ctx.reply("late")


@miniagent
async def _relaying_worker(
    ctx: InteractionContext, gate: asyncio.Event, followed: list[ReplayCore[MessagePromise]]
) -> None:
    inner = _waiting_worker.inquire(gate=gate)
    followed.append(core_of(inner))
    ctx.reply(["first", inner])


async def test_giving_up_on_replies_that_follow_another_agents_stops_following_them() -> None:
    # The relaying agent's replies follow the waiting agent's (observed directly, with no
    # disposer): cancelling them stops that, and the waiting agent, abandoned, is cancelled.
    async with MiniAgents():
        gate = asyncio.Event()
        followed: list[ReplayCore[MessagePromise]] = []
        replies = _relaying_worker.inquire(gate=gate, followed=followed)
        iterator = aiter(replies)
        assert str(await anext(iterator)) == "first"
        [inner] = followed
        assert not inner.done
        assert len(list(inner.observers)) == 1  # followed
        replies.cancel()
        with pytest.raises(StreamCancelledError):
            await anext(iterator)
        assert list(inner.observers) == []  # no longer followed
        assert isinstance(inner.error, StreamCancelledError)  # its agent gave up


async def _hooked(ready_too: bool) -> list[bool]:
    """Whether each message the hook saw was complete, for two messages: ready, streaming."""
    seen: list[bool] = []
    appender = MessageSequenceAppender(
        lambda promise: seen.append(promise.done), ready_too=ready_too
    )
    producer = asyncio.ensure_future(asyncio.sleep(0))
    appender.cancel_when_abandoned(producer)
    streaming = MessageTokenAppender()
    appender.append(["ready", streaming.promise])
    streaming.complete()
    appender.complete()
    assert [str(message) for message in await appender.sequence] == ["ready", ""]
    await producer
    return seen


async def test_an_appender_may_skip_its_hook_for_ready_messages() -> None:
    assert await _hooked(ready_too=True) == [True, False]
    assert await _hooked(ready_too=False) == [False]  # only the message still streaming


async def test_an_appender_skips_its_hook_for_ready_messages_its_flattening_passes_on() -> None:
    # Its flattening is made before the hook is set for adoption, and passes on the ready
    # message after it: the hook, wanting streaming messages only by then, is not told.
    seen: list[MessagePromise] = []
    appender = MessageSequenceAppender(seen.append, ready_too=False)
    first = MessageTokenAppender()
    appender.append([first.promise])  # a part still streaming: a flattening is made
    producer = asyncio.ensure_future(asyncio.sleep(0))
    appender.cancel_when_abandoned(producer)
    second = MessageTokenAppender()
    appender.append(["ready", second.promise])  # they wait in the flattening behind first
    first.append("1")
    first.complete()
    second.append("2")
    second.complete()
    appender.complete()
    assert [str(message) for message in await appender.sequence] == ["1", "ready", "2"]
    await producer
    assert [id(promise) for promise in seen] == [id(first.promise), id(second.promise)]


async def test_start_task_runs_work_that_the_context_waits_for() -> None:
    done = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0)
        done.set()

    async with MiniAgents():
        task = start_task(work(), "work")
        assert task.get_name() == "miniagents:work"
    assert done.is_set()


async def test_start_task_outside_a_context_says_how_to_open_one_and_drops_the_work() -> None:
    async def work() -> None:
        raise AssertionError("never runs")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine never awaited would warn
        with pytest.raises(NoActiveContextError, match="async with MiniAgents"):
            start_task(work(), "work")


# -- tasks ---------------------------------------------------------------------------------


async def test_a_task_that_forgets_itself_leaves_its_owner_in_its_last_step() -> None:
    owner: set[asyncio.Task[None]] = set()
    seen: list[bool] = []

    async def work() -> None:
        await asyncio.sleep(0)
        me = cast("asyncio.Task[None]", asyncio.current_task())
        seen.append(me in owner and me in running_tasks())
        forget_task(me)
        seen.append(me in owner or me in running_tasks())

    task = spawn(work(), "work", owner)
    assert owner == {task}
    await task
    # gone in its last step: no done callback of spawn's is left to run
    assert seen == [True, False]
    assert not owner
    assert task not in running_tasks()


@pytest.mark.parametrize("kind", ["a pulled stream", "an agent"])
async def test_the_library_s_own_tasks_forget_themselves_in_their_last_step(kind: str) -> None:
    gate = asyncio.Event()
    seen: list[tuple[bool, bool]] = []

    async def pieces() -> AsyncIterator[str]:
        await gate.wait()
        yield "piece"

    @miniagent
    async def waiting(ctx: InteractionContext) -> None:
        await gate.wait()
        ctx.reply("piece")

    async with MiniAgents():
        stream: StreamedPromise[str, str] | MessageSequencePromise
        core: ReplayCore[str] | ReplayCore[MessagePromise]
        if kind == "a pulled stream":
            stream = StreamedPromise(pieces(), resolver=join)
            core = core_of(stream)
        else:
            stream = waiting.inquire()
            core = core_of(stream)
        core.start()
        await asyncio.sleep(0)
        (task,) = running_tasks()

        def look() -> None:  # the first callback after the task's last step
            seen.append((task.done(), task in _tasks._tasks))

        def soon() -> None:  # called in the task's last step: before its done callbacks
            asyncio.get_running_loop().call_soon(look)

        core.when_done(soon)
        gate.set()
        await stream
        await asyncio.wait([task])
    assert seen == [(True, False)]  # ended, and forgotten already: no done callback needed


async def test_a_task_cancelled_before_its_first_step_leaves_its_owner_all_the_same() -> None:
    owner: set[asyncio.Task[None]] = set()
    ran = False

    async def work() -> None:
        nonlocal ran
        ran = True  # never: the body of a task cancelled before its first step does not run
        forget_task(cast("asyncio.Task[None]", asyncio.current_task()))

    task = spawn(work(), "work", owner)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # its done callback runs a turn after it ended
    assert task.cancelled()
    assert not ran
    assert not owner
    assert task not in running_tasks()


_WAIT = 10.0  # (seconds: a bound on a wait for another thread, reached only by a defect)


def test_loops_in_two_threads_forget_their_tasks_at_the_same_moment() -> None:
    # (was: spawn gave every done callback one shared empty context, which one thread at a
    # time may enter: a thread forgetting a task while another did failed, its task left in
    # its owner for good, and the context waiting for it spun)
    inside = threading.Event()
    other_done = threading.Event()

    class HeldOwner(set[asyncio.Task[None]]):
        def discard(self, task: object) -> None:  # held in the done callback
            inside.set()
            other_done.wait(_WAIT)
            super().discard(task)

    async def nothing() -> None:
        pass

    async def forget(owner: set[asyncio.Task[None]]) -> None:
        await spawn(nothing(), "nothing", owner)
        for _ in range(3):  # (the done callback runs a turn after the task's end)
            await asyncio.sleep(0)

    held = HeldOwner()
    thread = threading.Thread(target=asyncio.run, args=(forget(held),))
    thread.start()
    try:
        assert inside.wait(_WAIT)  # that thread is in its done callback, and stays there
        owner: set[asyncio.Task[None]] = set()
        asyncio.run(forget(owner))  # this one forgets its task meanwhile
        assert not owner
    finally:
        other_done.set()
        thread.join(_WAIT)
    assert not held


# -- extension settings ---------------------------------------------------------------------


@dataclass(frozen=True)
class ColourSettings:
    """An extension's section: its fields are the names of its settings."""

    llm_stall_timeout: float | None = 1.0
    colour: str = "red"


async def test_an_extension_reads_its_section_of_the_settings() -> None:
    assert extension_settings(ColourSettings) == ColourSettings()  # outside: the defaults
    async with MiniAgents(llm_stall_timeout=5.0):
        assert extension_settings(ColourSettings) == ColourSettings(llm_stall_timeout=5.0)
        assert llm_settings() == LLMSettings(llm_stall_timeout=5.0)
        async with MiniAgents(stream_llm_tokens_by_default=False, llm_stall_timeout=None):
            assert llm_settings() == LLMSettings(
                stream_llm_tokens_by_default=False, llm_stall_timeout=None
            )
        async with MiniAgents(llm_logger_agent=True):  # inherits what it does not set
            assert llm_settings() == LLMSettings(llm_logger_agent=True, llm_stall_timeout=5.0)
        assert llm_settings() == LLMSettings(llm_stall_timeout=5.0)


async def test_the_settings_travel_to_a_context_elsewhere() -> None:
    async with MiniAgents(stream_llm_tokens_by_default=False), MiniAgents(llm_stall_timeout=2.0):
        carried = context_settings()
    assert carried == {"stream_llm_tokens_by_default": False, "llm_stall_timeout": 2.0}
    assert context_settings() == {}
    async with with_settings(MiniAgents(llm_stall_timeout=9.0), carried):
        assert llm_settings() == LLMSettings(
            stream_llm_tokens_by_default=False, llm_stall_timeout=2.0
        )
        async with MiniAgents() as inner:
            with_settings(inner, {"colour": "blue"})  # from now on, in an active context
            assert extension_settings(ColourSettings) == ColourSettings(2.0, "blue")
        assert extension_settings(ColourSettings) == ColourSettings(2.0, "red")


def test_miniagents_shows_users_only_what_they_use() -> None:
    public = {name for name in dir(MiniAgents(llm_stall_timeout=3)) if not name.startswith("_")}
    assert public == {
        "arun",
        "get_current",
        "resource",
        "run",
        "start_everything_asap_by_default",
        "stream_limits",
    }


# -- interaction scopes -----------------------------------------------------------------------


def recorder(events: list[str], name: str, gate: asyncio.Event | None = None) -> MiniAgent[[]]:
    @miniagent(alias=name)
    async def agent(ctx: InteractionContext) -> None:
        events.append(f"{name} started")
        try:
            if gate is not None:
                await gate.wait()
            ctx.reply(name)
        finally:
            events.append(f"{name} stopped")

    return agent


async def test_a_scope_waits_for_the_interactions_started_inside_it() -> None:
    events: list[str] = []
    gate = asyncio.Event()
    slow = recorder(events, "SLOW", gate)
    scope = InteractionScope()
    async with MiniAgents():
        with scope:
            slow.inquire()
        assert scope.running == 1
        waiting = asyncio.ensure_future(scope.astopped())
        await asyncio.sleep(0)
        assert not waiting.done()
        gate.set()
        await waiting
        assert events == ["SLOW started", "SLOW stopped"]
        assert scope.running == 0


async def test_a_lazy_interaction_joins_its_scope_when_it_starts_even_after_the_block() -> None:
    events: list[str] = []
    gate = asyncio.Event()
    lazy = recorder(events, "LAZY", gate).fork(start_asap=False)
    scope = InteractionScope()
    async with MiniAgents():
        with scope:
            replies = lazy.inquire()
        assert scope.running == 0  # not started yet: nothing to wait for
        replies.start()
        assert scope.running == 1
        gate.set()
        await scope.astopped()
        assert events == ["LAZY started", "LAZY stopped"]
        assert str(await replies) == "LAZY"


async def test_what_an_agent_starts_itself_is_not_in_its_callers_scope() -> None:
    events: list[str] = []
    gate = asyncio.Event()
    inner = recorder(events, "INNER", gate)

    @miniagent
    async def outer(ctx: InteractionContext) -> None:
        inner.inquire()
        ctx.reply("outer")

    scope = InteractionScope()
    async with MiniAgents():
        with scope:
            await outer.inquire()
        await scope.astopped()  # only OUTER: INNER still waits at its gate
        assert events == ["INNER started"]
        gate.set()
    assert events == ["INNER started", "INNER stopped"]


async def test_scopes_nest_and_a_task_made_inside_one_belongs_to_it() -> None:
    events: list[str] = []
    gate = asyncio.Event()
    first = recorder(events, "FIRST", gate)
    second = recorder(events, "SECOND", gate)
    outer, inner = InteractionScope(), InteractionScope()
    async with MiniAgents():
        with outer:
            first.inquire()
            with inner:
                await asyncio.create_task(_inquire(second))
            assert (outer.running, inner.running) == (1, 1)
        gate.set()
        await outer.astopped()
        await inner.astopped()
    assert sorted(events) == ["FIRST started", "FIRST stopped", "SECOND started", "SECOND stopped"]


async def test_cancel_gives_up_on_the_scopes_interactions_one_not_run_yet_never_runs() -> None:
    events: list[str] = []
    gate = asyncio.Event()
    running = recorder(events, "RUNNING", gate)
    waiting = recorder(events, "WAITING", gate)
    scope = InteractionScope()
    async with MiniAgents():
        with scope:
            first = running.inquire()
        await asyncio.sleep(0)  # (its first turn: its code waits at the gate)
        with scope:
            second = waiting.inquire()  # (its code not run yet)
        assert (events, scope.running) == (["RUNNING started"], 2)
        scope.cancel()  # plain code: no await between the inquiry and this
        await scope.astopped()
        assert events == ["RUNNING started", "RUNNING stopped"]  # WAITING never ran
        for replies in (first, second):
            with pytest.raises(StreamCancelledError):
                await replies
        gate.set()


async def _inquire(agent: MiniAgent[[]]) -> None:
    agent.inquire()


async def test_a_scope_waits_once_while_its_tasks_hand_over_to_each_other() -> None:
    """``astopped()`` suspends once for a relay of tasks, not once per task that ends.

    It waited on the tasks it saw (``asyncio.wait``: a waiter and a callback on each task),
    woke when they ended, and waited anew on the ones started meanwhile: 34 suspensions
    here, each with new callbacks. Now one future is set when the last one ends.
    """
    scope = InteractionScope()
    ended: list[int] = []

    async def relay(left: int) -> None:
        if left:  # the next one starts before this one ends: the scope is never empty
            scope.add(asyncio.ensure_future(relay(left - 1)))
        ended.append(left)

    scope.add(asyncio.ensure_future(relay(100)))
    waiting = _Suspensions(scope.astopped())
    await waiting
    assert ended == list(range(100, -1, -1))
    assert scope.running == 0
    assert waiting.count == 1


class _Suspensions:
    """Await a coroutine, counting how many times it suspends (hands a future to the loop)."""

    def __init__(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._steps = coroutine.__await__()
        self.count = 0

    def __await__(self) -> Generator[Any, Any, None]:
        yield from self

    def __iter__(self) -> _Suspensions:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        suspended = self._steps.send(value)
        self.count += 1
        return suspended

    def throw(self, error: BaseException) -> Any:
        suspended = self._steps.throw(error)
        self.count += 1
        return suspended


async def test_token_appenders_still_stream_inside_a_scope() -> None:
    with InteractionScope():
        appender = MessageTokenAppender()
        appender.append("x")
        appender.complete()
    assert await appender.promise == Message(text="x")


def test_keeps_monotonic_time_tells_asyncios_own_clock_from_a_loop_of_its_own() -> None:
    class OwnClock(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return 42.0

    plain, own = asyncio.new_event_loop(), OwnClock()
    try:
        assert keeps_monotonic_time(plain)
        assert not keeps_monotonic_time(own)
    finally:
        plain.close()
        own.close()


def test_loop_runs_tells_a_loops_thread_from_one_where_none_runs() -> None:
    async def inside() -> tuple[bool, bool]:
        return loop_runs(), await asyncio.to_thread(loop_runs)

    assert not loop_runs()
    assert asyncio.run(inside()) == (True, False)
